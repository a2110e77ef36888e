use super::*;
use proptest::prelude::*;

fn dsn(s: &str) -> Dsn {
    s.parse().unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn envelope_urls() {
    let cases = [
        ("http://public@127.0.0.1:9000/42", "http://127.0.0.1:9000/api/42/envelope/"),
        ("https://k@o1.ingest.sentry.io/42", "https://o1.ingest.sentry.io/api/42/envelope/"),
        ("https://k@host/sub/42", "https://host/sub/api/42/envelope/"),
        ("https://k@host/a/b/42/", "https://host/a/b/api/42/envelope/"),
        ("https://k:s@host:443/42", "https://host/api/42/envelope/"),
        ("http://k@host:80/42", "http://host/api/42/envelope/"),
        ("http://k@host:443/42", "http://host:443/api/42/envelope/"),
        ("https://k@host:80/42", "https://host:80/api/42/envelope/"),
        ("http://k@[::1]:9000/1", "http://[::1]:9000/api/1/envelope/"),
        ("http://k@[2001:DB8::1]/1", "http://[2001:db8::1]/api/1/envelope/"),
        ("HTTPS://k@Sentry.Example.COM/7", "https://sentry.example.com/api/7/envelope/"),
        ("  https://k@host/7\n", "https://host/api/7/envelope/"),
    ];
    for (input, url) in cases {
        assert_eq!(dsn(input).envelope_url(), url, "{input}");
    }
}

#[test]
fn accessors() {
    let d = dsn("https://abc:def@o123.ingest.us.sentry.io:8443/sub/99");
    assert_eq!(d.scheme(), "https");
    assert_eq!(d.host(), "o123.ingest.us.sentry.io");
    assert_eq!(d.port(), Some(8443));
    assert_eq!(d.project_id(), "99");
    assert_eq!(d.public_key(), "abc");
    assert_eq!(d.org_id(), Some(123));
    let d = dsn("http://k@[::1]:9000/1");
    assert_eq!(d.host(), "[::1]");
    assert_eq!(d.port(), Some(9000));
    assert_eq!(d.org_id(), None);
}

#[test]
fn org_ids() {
    let cases = [
        ("https://k@o123.ingest.sentry.io/1", Some(123)),
        ("https://k@o0.example.com/1", Some(0)),
        ("https://k@o123/1", None),
        ("https://k@o.ingest.sentry.io/1", None),
        ("https://k@o12a.ingest.sentry.io/1", None),
        ("https://k@sentry.io/1", None),
        ("https://k@xo1.sentry.io/1", None),
        ("https://k@o99999999999999999999999.sentry.io/1", None),
    ];
    for (input, org) in cases {
        assert_eq!(dsn(input).org_id(), org, "{input}");
    }
}

#[test]
fn auth_headers() {
    assert_eq!(
        dsn("https://public@host/1").auth_header("tracing-tally/0.1.0"),
        "Sentry sentry_key=public, sentry_version=7, sentry_client=tracing-tally/0.1.0"
    );
    assert_eq!(
        dsn("https://public:secret@host/1").auth_header("c/1"),
        "Sentry sentry_key=public, sentry_version=7, sentry_client=c/1, sentry_secret=secret"
    );
    assert_eq!(
        dsn("https://public:@host/1").auth_header("c/1"),
        "Sentry sentry_key=public, sentry_version=7, sentry_client=c/1"
    );
}

#[test]
fn errors() {
    use DsnError::*;
    let cases: &[(&str, DsnError)] = &[
        ("", Empty),
        (" \t\n", Empty),
        ("public@host/1", MissingScheme),
        ("://k@host/1", MissingScheme),
        ("key@https://host/1", MissingScheme),
        ("ftp://k@host/1", UnsupportedScheme("ftp".into())),
        ("HTTPX://k@host/1", UnsupportedScheme("httpx".into())),
        ("https://host/1", MissingPublicKey),
        ("https://@host/1", MissingPublicKey),
        ("https://:secret@host/1", MissingPublicKey),
        ("https://ke y@host/1", InvalidPublicKey),
        ("https://a@b@host/1", InvalidPublicKey),
        ("https://k:s,x@host/1", InvalidSecretKey),
        ("https://k:a:b@host/1", InvalidSecretKey),
        ("https://k@/1", MissingHost),
        ("https://k@:9000/1", MissingHost),
        ("https://k@ho st/1", InvalidHost("ho st".into())),
        ("https://k@hôst/1", InvalidHost("hôst".into())),
        ("https://k@[::1/1", InvalidHost("[::1".into())),
        ("https://k@[nope]/1", InvalidHost("[nope]".into())),
        ("https://k@[::1]x/1", InvalidHost("[::1]x".into())),
        ("https://k@host:/1", InvalidPort("".into())),
        ("https://k@host:abc/1", InvalidPort("abc".into())),
        ("https://k@host:0/1", InvalidPort("0".into())),
        ("https://k@host:65536/1", InvalidPort("65536".into())),
        ("https://k@host:1:2/1", InvalidPort("1:2".into())),
        ("https://k@[::1]:x/1", InvalidPort("x".into())),
        ("https://k@host/1?x=1", InvalidPath("?x=1".into())),
        ("https://k@host/1#frag", InvalidPath("#frag".into())),
        ("https://k@host?x/1", InvalidPath("?x/1".into())),
        ("https://k@host/a b/1", InvalidPath("/a b/1".into())),
        ("https://k@host", MissingProjectId),
        ("https://k@host/", MissingProjectId),
        ("https://k@host//", MissingProjectId),
        ("https://k@host/abc", InvalidProjectId("abc".into())),
        ("https://k@host/42/x", InvalidProjectId("x".into())),
        ("https://k@host/-1", InvalidProjectId("-1".into())),
    ];
    for (input, expected) in cases {
        assert_eq!(input.parse::<Dsn>().as_ref(), Err(expected), "{input:?}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn redacted_output() {
    let d = dsn("https://pubkey123:secretkey456@o1.ingest.sentry.io/42");
    assert_eq!(d.to_string(), "https://***@o1.ingest.sentry.io/42");
    assert_eq!(format!("{d:?}"), "Dsn(https://***@o1.ingest.sentry.io/42)");
    assert_eq!(dsn("http://k@[::1]:9000/sub/1").to_string(), "http://***@[::1]:9000/sub/1");
}

#[test]
fn keys_never_leak() {
    let valid = [
        "https://pubkey123:secretkey456@o1.ingest.sentry.io/42",
        "http://pubkey123:secretkey456@[::1]:9000/a/b/1/",
    ];
    for input in valid {
        let d = dsn(input);
        for text in [d.to_string(), format!("{d:?}"), format!("{d:#?}"), d.envelope_url()] {
            assert!(!text.contains("pubkey123") && !text.contains("secretkey456"), "{text}");
        }
    }
    let invalid = [
        "pubkey123:secretkey456@host/1",
        "pubkey123@https://host/1",
        "https://pubkey123:secretkey456",
        "https://pubkey123:secretkey456/1",
        "https://pubkey123:secretkey456@",
        "https://pubkey123:secretkey456@host",
        "https://pubkey123:secretkey456@host:x/1",
        "https://pubkey123:secretkey456@host/1?q",
        "https://pubkey123:secretkey456@ho st/1",
        "https://pubkey123:secretkey456 @host/1",
        "https://pubkey123 :secretkey456@host/1",
        "https://pubkey123:secretkey456?@host/1",
        "https://pubkey123:secretkey456#@host/1",
        "https://pubkey123:secretkey456@host/x",
        "ftp://pubkey123:secretkey456@host/1",
    ];
    for input in invalid {
        let err = input.parse::<Dsn>().expect_err(input);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("pubkey123") && !text.contains("secretkey456"), "{text}");
        }
    }
}

proptest! {
    #[test]
    fn parsing_never_panics(s in "\\PC*") {
        let _ = s.parse::<Dsn>();
    }

    #[test]
    fn parsing_url_like_strings_never_panics(
        s in "(https?|ftp)?(:|://)?[a-z0-9:@\\[\\]/?#. -]{0,40}",
    ) {
        if let Ok(d) = s.parse::<Dsn>() {
            let url = d.envelope_url();
            prop_assert!(url.ends_with("/envelope/"));
            let _ = (d.to_string(), d.auth_header("c"), d.org_id());
        }
    }

    #[test]
    fn valid_dsns_round_trip(
        https in any::<bool>(),
        key in "[a-f0-9]{1,32}",
        host in "[a-z0-9][a-z0-9-]{0,8}(\\.[a-z0-9-]{1,8}){0,2}",
        port in proptest::option::of(1u16..),
        prefix in proptest::collection::vec("[a-z0-9]{1,5}", 0..3),
        project in "[0-9]{1,10}",
    ) {
        let scheme = if https { "https" } else { "http" };
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        let prefix: String = prefix.iter().map(|p| format!("{p}/")).collect();
        let input = format!("{scheme}://{key}@{host}{port_text}/{prefix}{project}");
        let d: Dsn = input.parse().map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        prop_assert_eq!(d.to_string(), format!("{scheme}://***@{host}{port_text}/{prefix}{project}"));
        prop_assert_eq!(d.project_id(), project.as_str());
        prop_assert_eq!(d.public_key(), key.as_str());
    }
}
