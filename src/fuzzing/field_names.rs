//! The `fields` target: field names, metric names, tag keys and values, sink names.

#[cfg(feature = "statsd")]
use super::statsd_encode::{check_statsd_name, statsd_encoding};
use crate::aggregate::tag::Tag;
use crate::fields::{self, FieldName};

/// Parses `field` as a field name, sanitizes it as a metric name and a tag key, cuts it as a tag
/// value, and checks every result against the rules of [`crate::fields`].
pub fn fields(field: &str) {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let is_unit_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match fields::parse(field) {
        FieldName::Message => assert_eq!(field, fields::MESSAGE),
        FieldName::Error => assert_eq!(field, fields::ERROR),
        FieldName::InvalidMetric => {}
        FieldName::Metric(metric) => {
            assert!(!metric.name.is_empty(), "empty metric name from {field:?}");
            assert!(metric.name.len() <= fields::MAX_NAME_LEN, "{field:?}");
            assert!(metric.name.chars().all(is_name_char), "{:?} from {field:?}", metric.name);
            if let Some(unit) = &metric.unit {
                assert!(!unit.is_empty() && unit.len() <= fields::MAX_UNIT_LEN, "{field:?}");
                assert!(unit.chars().all(is_unit_char), "{unit:?} from {field:?}");
            }
            if !metric.sanitized {
                assert!(field.contains(metric.name.as_str()), "{field:?}");
            }
        }
        FieldName::Tag(key) => {
            assert!(key.len() <= fields::MAX_TAG_KEY_LEN, "{field:?}");
            assert!(key.chars().all(is_name_char), "{key:?} from {field:?}");
        }
    }
    let (name, changed) = fields::sanitize_name(field);
    assert!(name.len() <= fields::MAX_NAME_LEN && name.chars().all(is_name_char));
    assert_eq!(changed, name != field, "{field:?}");
    let (value, truncated) = fields::truncate_tag_value(field);
    assert!(value.len() <= fields::MAX_TAG_VALUE_LEN);
    assert!(field.starts_with(value));
    assert_eq!(truncated, value.len() < field.len());
    if truncated {
        // Cut at the last boundary: the next character would not have fitted.
        let next = field[value.len()..].chars().next().map_or(0, char::len_utf8);
        assert!(value.len() + next > fields::MAX_TAG_VALUE_LEN, "{field:?}");
    }
    let tag = Tag::new(&name, field);
    assert_eq!((tag.key(), tag.value()), (name.as_str(), field));
    #[cfg(feature = "statsd")]
    statsd_names(field);
}

#[cfg(feature = "statsd")]
fn statsd_names(field: &str) {
    use crate::sink::statsd::encode::{Dialect, TagStyle};
    for dialect in [Dialect::DogStatsd, Dialect::Plain(TagStyle::Graphite)] {
        let encoding = statsd_encoding(dialect, field.get(..8).unwrap_or_default(), "d");
        let name = encoding.name(field);
        assert!(!name.is_empty() || dialect != Dialect::DogStatsd, "{field:?}");
        check_statsd_name(&name, dialect);
    }
}
