use super::*;
use proptest::prelude::*;
use std::time::UNIX_EPOCH;

const S: Duration = Duration::from_secs(1);

fn wall() -> SystemTime {
    // Wed, 21 Oct 2015 07:28:00 GMT
    UNIX_EPOCH + Duration::from_secs(1_445_412_480)
}

fn limits(status: u16, header: Option<&str>, retry_after: Option<&str>) -> (RateLimits, Instant) {
    let now = Instant::now();
    let mut limits = RateLimits::new();
    limits.update(now, status, header, retry_after, wall());
    (limits, now)
}

fn until(limits: &RateLimits, now: Instant, category: Category) -> Option<Duration> {
    limits.limited_until(category, now).map(|d| d - now)
}

#[test]
fn categories_round_trip() {
    assert_eq!(Category::ALL.len(), N_CATEGORIES);
    for (i, c) in Category::ALL.into_iter().enumerate() {
        assert_eq!(c.index(), i);
        assert_eq!(Category::from_name(c.as_str()), Some(c));
    }
    assert_eq!(Category::from_name("metric_bucket"), None);
    assert_eq!(Category::from_name("Error"), None);
    assert_eq!(Category::from_name(""), None);
}

#[test]
fn sentry_header_rules() {
    use Category::*;
    // (header, status, [(category, expected limit in seconds)])
    type Case = (&'static str, u16, &'static [(Category, Option<u64>)]);
    let cases: &[Case] = &[
        ("60:error:project", 200, &[(Error, Some(60)), (Transaction, None), (Internal, None)]),
        ("60::organization", 200, &[(Error, Some(60)), (Span, Some(60)), (Internal, Some(60))]),
        ("2.1:error:key", 200, &[(Error, Some(3))]),
        ("2.0:error:key", 200, &[(Error, Some(2))]),
        ("00000000000042:error:key", 200, &[(Error, Some(42))]),
        ("000.000:error:key", 200, &[(Error, None)]),
        ("0.001:error:key", 200, &[(Error, Some(1))]),
        ("10:error;transaction:project", 200, &[(Error, Some(10)), (Transaction, Some(10))]),
        (" 10 : error ; span :project", 200, &[(Error, Some(10)), (Span, Some(10))]),
        ("10:error:org, 20:span:org", 200, &[(Error, Some(10)), (Span, Some(20))]),
        ("10:error:org,20:span:org,", 200, &[(Error, Some(10)), (Span, Some(20))]),
        ("10:error", 200, &[(Error, Some(10))]),
        ("10:error:org:reason:ns:extra", 200, &[(Error, Some(10))]),
        ("10:error;metric_bucket:org", 200, &[(Error, Some(10)), (Default, None)]),
        ("10:metric_bucket;foo:org", 429, &[(Error, None), (Internal, None)]),
        ("10:internal:org", 200, &[(Internal, None), (Error, None)]),
        ("0:error:org", 200, &[(Error, None)]),
        ("999999:error:org", 200, &[(Error, Some(86_400))]),
        ("99999999999999999999999:error:org", 200, &[(Error, Some(86_400))]),
        ("10:error:org", 500, &[(Error, Some(10)), (Span, None)]),
        ("10:error:org", 429, &[(Error, Some(10)), (Span, None)]),
    ];
    for &(header, status, expected) in cases {
        let (limits, now) = limits(status, Some(header), Some("5"));
        for &(category, secs) in expected {
            assert_eq!(
                until(&limits, now, category),
                secs.map(Duration::from_secs),
                "{header:?} {category:?}"
            );
        }
    }
}

#[test]
fn malformed_groups_are_skipped() {
    for header in ["error:60", "abc:error:org", "-1:error:org", "1e3:error:org", ":error:org", "60"]
    {
        let (l, now) = limits(200, Some(&format!("{header}, 7:span:org")), None);
        assert_eq!(until(&l, now, Category::Error), None, "{header}");
        assert_eq!(until(&l, now, Category::Span), Some(7 * S), "{header}");
        // Only malformed groups on a 429: fall back to Retry-After.
        let (l, now) = limits(429, Some(header), Some("5"));
        assert_eq!(until(&l, now, Category::Error), Some(5 * S), "{header}");
    }
}

#[test]
fn max_merge() {
    let now = Instant::now();
    let mut l = RateLimits::new();
    l.update(now, 200, Some("30:error:org, 10:error:org"), None, wall());
    assert_eq!(until(&l, now, Category::Error), Some(30 * S));
    l.update(now, 200, Some("5:error:org"), None, wall());
    assert_eq!(until(&l, now, Category::Error), Some(30 * S));
    l.update(now, 200, Some("40:error:org"), None, wall());
    assert_eq!(until(&l, now, Category::Error), Some(40 * S));
    // The "all" deadline wins when later than the category's.
    l.update(now, 429, None, Some("100"), wall());
    assert_eq!(until(&l, now, Category::Error), Some(100 * S));
    l.update(now, 429, None, Some("1"), wall());
    assert_eq!(until(&l, now, Category::Internal), Some(100 * S));
}

#[test]
fn fallbacks_on_429() {
    // (status, X-Sentry-Rate-Limits, Retry-After, expected limit of every category)
    type Case = (u16, Option<&'static str>, Option<&'static str>, Option<u64>);
    let cases: &[Case] = &[
        (429, None, Some("120"), Some(120)),
        (429, None, Some(" 1.5 "), Some(2)),
        (429, Some(""), Some("7"), Some(7)),
        (429, Some("  "), None, Some(60)),
        (429, None, None, Some(60)),
        (429, None, Some("soon"), Some(60)),
        (429, None, Some("Wed, 21 Oct 2015 07:29:00 GMT"), Some(60)),
        (429, None, Some("Wed, 21 Oct 2015 07:28:30 GMT"), Some(30)),
        (429, None, Some("Wed, 21 Oct 2015 07:27:00 GMT"), None),
        (429, None, Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
        (429, None, Some("Thu, 22 Oct 2015 07:28:00 GMT"), Some(86_400)),
        (429, None, Some("Fri, 01 Jan 2016 00:00:00 GMT"), Some(86_400)),
        (429, None, Some("Wed, 32 Oct 2015 07:28:00 GMT"), Some(60)),
        (429, None, Some("1000000"), Some(86_400)),
        (503, None, Some("120"), None),
        (200, None, None, None),
    ];
    for &(status, header, retry_after, secs) in cases {
        let (l, now) = limits(status, header, retry_after);
        for category in Category::ALL {
            assert_eq!(
                until(&l, now, category),
                secs.map(Duration::from_secs),
                "{status} {retry_after:?} {category:?}"
            );
        }
    }
}

#[test]
fn expiry() {
    let now = Instant::now();
    let mut l = RateLimits::new();
    l.update(now, 200, Some("10:error:org"), None, wall());
    assert!(l.is_limited(Category::Error, now));
    assert!(l.is_limited(Category::Error, now + 9 * S));
    assert!(!l.is_limited(Category::Error, now + 10 * S));
    assert!(!l.is_limited(Category::Transaction, now));
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(
        status in prop_oneof![Just(200u16), Just(429u16), any::<u16>()],
        header in proptest::option::of("\\PC*"),
        retry_after in proptest::option::of("\\PC*"),
        wall_secs in any::<u32>(),
    ) {
        let now = Instant::now();
        let mut l = RateLimits::new();
        l.update(now, status, header.as_deref(), retry_after.as_deref(), UNIX_EPOCH + Duration::from_secs(wall_secs.into()));
        for c in Category::ALL {
            if let Some(deadline) = l.limited_until(c, now) {
                prop_assert!(deadline - now <= MAX_LIMIT);
            }
        }
    }

    #[test]
    fn header_like_strings_never_panic(
        header in "[0-9.: ,;a-z_-]{0,60}",
        retry_after in "[A-Za-z0-9 ,:.]{0,32}",
    ) {
        let now = Instant::now();
        let mut l = RateLimits::new();
        l.update(now, 429, Some(&header), Some(&retry_after), wall());
        for c in Category::ALL {
            if let Some(deadline) = l.limited_until(c, now) {
                prop_assert!(deadline - now <= MAX_LIMIT);
            }
        }
    }

    #[test]
    fn max_merge_is_order_independent(a in 0u64..200_000, b in 0u64..200_000) {
        let now = Instant::now();
        let mut one = RateLimits::new();
        one.update(now, 200, Some(&format!("{a}:error:org, {b}:error:org")), None, wall());
        let mut two = RateLimits::new();
        two.update(now, 200, Some(&format!("{b}:error:org")), None, wall());
        two.update(now, 200, Some(&format!("{a}:error:org")), None, wall());
        let expected = Some(Duration::from_secs(a.max(b).min(86_400))).filter(|d| !d.is_zero());
        prop_assert_eq!(until(&one, now, Category::Error), expected);
        prop_assert_eq!(until(&two, now, Category::Error), expected);
    }
}
