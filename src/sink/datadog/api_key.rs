//! The Datadog API key: checked once when the options are made, never printed.
//!
//! Datadog API keys are 32 lower-case hexadecimal digits (application keys, which this sink
//! does not use, have 40). Surrounding ASCII whitespace is ignored, so a key read from a file or
//! an environment variable with a trailing newline still works. Nothing else is repaired: an
//! upper-case digit is rejected rather than lowered, because it means the text is not a key
//! copied from Datadog.
//!
//! Neither [`ApiKey`]'s `Debug` nor any [`ApiKeyError`] message contains the key or any of its
//! characters; errors say only what is wrong and where.

use std::fmt;

/// Length of a Datadog API key, in hexadecimal digits.
const KEY_LEN: usize = 32;

/// Length of a Datadog application key, named in the error when one is passed by mistake.
const APPLICATION_KEY_LEN: usize = 40;

/// A validated API key. `Debug` prints `ApiKey(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    /// Validates `key` (see the module docs).
    pub(crate) fn parse(key: &str) -> Result<ApiKey, ApiKeyError> {
        let key = key.trim_matches(|c: char| c.is_ascii_whitespace());
        if key.is_empty() {
            return Err(ApiKeyError::Empty);
        }
        // Check the characters first: a length error on text that is not a key at all would
        // send the user looking in the wrong place.
        if let Some(position) = key.chars().position(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(ApiKeyError::NotLowercaseHex { position: position + 1 });
        }
        if key.len() != KEY_LEN {
            return Err(ApiKeyError::WrongLength { found: key.len() });
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The key, for the `DD-API-KEY` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Why a string is not a Datadog API key.
///
/// Messages say what is wrong (and, for a bad character, its position) but never repeat the
/// key or any part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The key is empty (or only whitespace).
    Empty,
    /// The key has a character other than `0-9` and `a-f`; `position` counts characters from 1.
    NotLowercaseHex {
        /// Where the first offending character is (1 for the first character).
        position: usize,
    },
    /// The key is made of hexadecimal digits but does not have 32 of them.
    WrongLength {
        /// How many digits it has.
        found: usize,
    },
}

impl fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKeyError::Empty => f.write_str("invalid Datadog API key: the key is empty"),
            ApiKeyError::NotLowercaseHex { position } => write!(
                f,
                "invalid Datadog API key: character {position} is not a lower-case hexadecimal digit (0-9, a-f)"
            ),
            ApiKeyError::WrongLength { found } if *found == APPLICATION_KEY_LEN => write!(
                f,
                "invalid Datadog API key: it has {found} digits instead of {KEY_LEN} (this looks like an application key; an API key is needed)"
            ),
            ApiKeyError::WrongLength { found } => write!(
                f,
                "invalid Datadog API key: it has {found} digits instead of {KEY_LEN}"
            ),
        }
    }
}

impl std::error::Error for ApiKeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_32_lowercase_hex_digits_and_trims_whitespace() {
        assert_eq!(ApiKey::parse(KEY).unwrap().expose(), KEY);
        assert_eq!(ApiKey::parse(&format!("  {KEY}\n")).unwrap().expose(), KEY);
    }

    #[test]
    fn names_the_problem() {
        assert_eq!(ApiKey::parse(""), Err(ApiKeyError::Empty));
        assert_eq!(ApiKey::parse(" \t\n"), Err(ApiKeyError::Empty));
        assert_eq!(ApiKey::parse("abc"), Err(ApiKeyError::WrongLength { found: 3 }));
        assert_eq!(ApiKey::parse(&format!("{KEY}0")), Err(ApiKeyError::WrongLength { found: 33 }));
        assert_eq!(
            ApiKey::parse(&KEY.to_uppercase()),
            Err(ApiKeyError::NotLowercaseHex { position: 11 })
        );
        assert_eq!(ApiKey::parse("ab-cd"), Err(ApiKeyError::NotLowercaseHex { position: 3 }));
        assert_eq!(ApiKey::parse("é"), Err(ApiKeyError::NotLowercaseHex { position: 1 }));
        let application_key = "0123456789abcdef0123456789abcdef01234567";
        let message = ApiKey::parse(application_key).unwrap_err().to_string();
        assert!(message.contains("application key"), "{message}");
    }

    #[test]
    fn never_shows_the_key() {
        let key = ApiKey::parse(KEY).unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        let wrong = "0123456789abcdef0123456789abcdeX";
        let error = ApiKey::parse(wrong).unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("0123456789abcdef"), "{text}");
        }
    }
}
