use super::*;

fn dogstatsd() -> Encoding {
    Encoding {
        dialect: Dialect::DogStatsd,
        prefix: String::new(),
        distribution_type: "d",
        origin_suffix: String::new(),
        max_plain_values: 1000,
    }
}

#[test]
fn numbers_read_back_exactly_and_never_use_exponents() {
    assert_eq!(number(5.0), "5");
    assert_eq!(number(-2.0), "-2");
    assert_eq!(number(1.5), "1.5");
    assert_eq!(number(0.1 + 0.2), "0.30000000000000004");
    assert_eq!(number(1e-7), "0.0000001");
    assert_eq!(number(1e20), "100000000000000000000");
    assert_eq!(number(1.0 / 3.0).parse::<f64>().unwrap(), 1.0 / 3.0);
}

#[test]
fn midpoints_are_shortened_to_what_they_know() {
    assert_eq!(number(significant(0.0191650390625, 6)), "0.019165");
    assert_eq!(number(significant(708.123456, 6)), "708.123");
    assert_eq!(number(significant(-1234567.0, 6)), "-1234570");
    assert_eq!(significant(0.0, 6), 0.0);
}

#[test]
fn names_follow_each_dialect() {
    let mut dog = dogstatsd();
    dog.prefix = "app.".into();
    assert_eq!(dog.name("http-requests"), "app.http_requests");
    dog.prefix.clear();
    assert_eq!(dog.name("2xx"), "m_2xx");
    let plain = Encoding { dialect: Dialect::Plain(TagStyle::Graphite), ..dogstatsd() };
    assert_eq!(plain.name("http-requests"), "http-requests");
}

#[test]
fn tags_follow_each_style() {
    let tags = [("route", "/users|x"), ("status", "200"), ("bare", "")];
    let (name, suffix) = dogstatsd().tags(&tags);
    assert_eq!((name.as_str(), suffix.as_str()), ("", "|#route:/users_x,status:200,bare"));
    let graphite = Encoding { dialect: Dialect::Plain(TagStyle::Graphite), ..dogstatsd() };
    assert_eq!(graphite.tags(&tags).0, ";route=_users_x;status=200;bare=");
    let drop = Encoding { dialect: Dialect::Plain(TagStyle::Drop), ..dogstatsd() };
    assert_eq!(drop.tags(&tags), (String::new(), String::new()));
    let mut origin = dogstatsd();
    origin.origin_suffix = "|c:ci-1".into();
    assert_eq!(origin.tags(&[]).1, "|c:ci-1");
}

#[test]
fn events_stay_within_8_kib_or_are_not_made() {
    // Found by fuzzing: large tags made events of 12 KiB.
    let error = ErrorEvent {
        message: Some("failed".repeat(2000)),
        error_chain: vec!["cause\n".repeat(3000)],
        ..ErrorEvent::new(&crate::panic_hook::PANIC_METADATA, std::time::UNIX_EPOCH)
    };
    let small = [("k", "v")];
    let event = dogstatsd().event(&error, &small).unwrap();
    assert!(event.len() <= MAX_EVENT_BYTES && event.len() > MAX_EVENT_BYTES - 64);
    let value = "v".repeat(300);
    let large: Vec<(&str, &str)> = (0..40).map(|_| ("key", value.as_str())).collect();
    assert_eq!(dogstatsd().event(&error, &large), None);
}

#[test]
fn tags_without_a_key_are_left_out() {
    // Found by fuzzing: a `"tags."` field made `|#:v` (or an empty tag `|#`).
    let tags = [("", "v"), ("", ""), ("route", "/a")];
    assert_eq!(dogstatsd().tags(&tags).1, "|#route:/a");
    assert_eq!(dogstatsd().tags(&tags[..2]).1, "");
    let graphite = Encoding { dialect: Dialect::Plain(TagStyle::Graphite), ..dogstatsd() };
    assert_eq!(graphite.tags(&tags).0, ";route=_a");
}

#[test]
fn a_counter_sum_that_overflowed_is_counted_not_sent() {
    // Found by fuzzing: two increments of 1e308 made `c:inf|c`.
    let record = crate::batch::testing::counter("c", None, &[], f64::INFINITY);
    let mut packer = Packer::new(1432);
    let produced = dogstatsd().record(&record, &[], &mut packer);
    assert_eq!((produced.messages, produced.dropped), (0, 1));
    assert!(packer.finish().0.is_empty());
}

#[test]
fn packed_values_share_a_rate_and_respect_the_limit() {
    let pairs = [(1.0, 1), (2.5, 3), (4.0, 1), (8.0, 3)];
    let lines = dogstatsd().packed_values("lat", &pairs, "|#a:b", 1432);
    assert_eq!(
        lines,
        [("lat:1:4|d|#a:b".to_owned(), 2), ("lat:2.5:8|d|@0.3333333333333333|#a:b".to_owned(), 6)]
    );
    // A tight limit: every line fits it, every value is kept once.
    let many: Vec<(f64, u64)> = (0..200).map(|i| (f64::from(i) + 0.5, 1)).collect();
    let lines = dogstatsd().packed_values("lat", &many, "|#a:b", 64);
    assert!(lines.iter().all(|(l, _)| l.len() <= 64), "{lines:?}");
    let values: usize =
        lines.iter().map(|(l, _)| l.split('|').next().unwrap().split(':').count() - 1).sum();
    assert_eq!(values, 200);
    assert_eq!(lines.iter().map(|(_, n)| n).sum::<u64>(), 200);
}

#[test]
fn plain_timers_repeat_values_or_use_rates() {
    let lines = |pairs: &[(f64, u64)], repeat, suffix, max| -> Vec<(String, u64)> {
        plain_timer_values("t", pairs, repeat, suffix, max)
    };
    let owned = |expected: &[(&str, u64)]| -> Vec<(String, u64)> {
        expected.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
    };
    let pairs = [(1.0, 1), (2.0, 2)];
    assert_eq!(lines(&pairs, true, "", 1432), owned(&[("t:1|ms:2|ms:2|ms", 3)]));
    assert_eq!(lines(&pairs, false, "", 1432), owned(&[("t:1|ms:2|ms|@0.5", 3)]));
    assert_eq!(
        lines(&pairs, false, "|#a:b", 1432),
        owned(&[("t:1|ms|#a:b", 1), ("t:2|ms|@0.5|#a:b", 2)]),
        "a tag suffix belongs to a whole line: one value per line"
    );
    assert_eq!(lines(&[(1.0, 10)], true, "", 12), owned(&[("t:1|ms:1|ms", 2); 5]));
}

#[test]
fn global_tags_use_unified_service_tagging_names() {
    let global = [
        Tag::new("service", "api"),
        Tag::new("environment", "prod"),
        Tag::new("release", "1.2"),
        Tag::new("host", "h1"),
        Tag::new("team", "core"),
    ];
    let mapped = dogstatsd_global_tags(&global);
    let keys: Vec<&str> = mapped.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["service", "env", "version", "team"]);
}

#[test]
fn text_is_cut_at_byte_and_char_boundaries() {
    assert_eq!(truncate_bytes("héllo", 2), "h");
    assert_eq!(truncate_chars("héllo", 2), "hé");
    assert_eq!(escape("a\r\nb"), "a\\nb");
}
