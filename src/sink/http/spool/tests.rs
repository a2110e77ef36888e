use std::sync::{Arc, Mutex};

use super::*;
use crate::stats::Carried;

/// What the spool booked: the reason and the records of the file, when it could be read.
type Booked = Arc<Mutex<Vec<(DropReason, Option<u64>)>>>;

/// A ledger that keeps what it was told.
struct Recording(Booked);

impl SpoolLedger for Recording {
    fn discarded(&self, reason: DropReason, record: Option<&Record>) {
        self.0.lock().unwrap().push((reason, record.map(|r| r.items)));
    }
}

#[cfg(feature = "datadog")]
const OWNER: Owner = Owner::Datadog;
#[cfg(not(feature = "datadog"))]
const OWNER: Owner = Owner::Sentry;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-spool-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn open(options: &SpoolOptions) -> (Spool, Booked) {
    let booked: Booked = Arc::default();
    (Spool::open(options, OWNER, Recording(booked.clone()), false), booked)
}

fn record(tag: u8, body: usize) -> Record {
    Record {
        kind: tag,
        compression: 1,
        items: u64::from(tag) + 1,
        meta: vec![tag; 3],
        points: vec![Carried::named("requests", f64::from(tag)), Carried::named("latency", 2.5)],
        body: vec![tag; body],
    }
}

/// The record's fields, with its points as `name=values`.
fn view(record: &Record) -> (u8, u8, u64, Vec<u8>, String, Vec<u8>) {
    let points = format!("{:?}", record.points);
    (
        record.kind,
        record.compression,
        record.items,
        record.meta.clone(),
        points,
        record.body.clone(),
    )
}

/// The spool files in the sink's subdirectory, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(OWNER.dir_name()))
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_record_comes_back_whole_after_a_restart_oldest_first() {
    let dir = scratch("round-trip");
    let options = SpoolOptions::new(&dir);
    let (mut spool, booked) = open(&options);
    spool.write(&record(1, 100)).unwrap();
    spool.write(&record(2, 50)).unwrap();
    assert_eq!(spool.len(), 2);
    let names = files(&dir);
    assert_eq!(names.len(), 2);
    assert!(names[0] < names[1] && names.iter().all(|n| parse_name(n).is_some()), "{names:?}");
    drop(spool);

    let (mut spool, _) = open(&options);
    assert_eq!(spool.len(), 2);
    let (ticket, first) = spool.front().unwrap();
    assert_eq!(view(&first), view(&record(1, 100)));
    assert_eq!(format!("{:?}", first.points), "[requests=1, latency=2.5]");
    // Not removed yet: the same file again.
    assert_eq!(spool.front().unwrap().0, ticket);
    spool.remove(&ticket);
    let (ticket, second) = spool.front().unwrap();
    assert_eq!(view(&second), view(&record(2, 50)));
    spool.remove(&ticket);
    assert!(spool.front().is_none() && spool.is_empty());
    assert_eq!(spool.bytes(), 0);
    assert!(files(&dir).is_empty());
    assert!(booked.lock().unwrap().is_empty());
}

#[test]
fn the_size_cap_drops_the_oldest_and_books_their_records() {
    let dir = scratch("size-cap");
    let one = encode(&record(0, 1000), OWNER, 0).len() as u64;
    let options = SpoolOptions::new(&dir).max_bytes(one * 3);
    let (mut spool, booked) = open(&options);
    for tag in 0..5 {
        spool.write(&record(tag, 1000)).unwrap();
    }
    assert_eq!((spool.len(), spool.bytes()), (3, one * 3));
    assert_eq!(
        *booked.lock().unwrap(),
        [(DropReason::SpoolFull, Some(1)), (DropReason::SpoolFull, Some(2))]
    );
    assert_eq!(spool.front().unwrap().1.kind, 2);
    assert_eq!(files(&dir).len(), 3);

    // A smaller cap at the next start applies at once.
    drop(spool);
    let (spool, booked) = open(&options.clone().max_bytes(one));
    assert_eq!(spool.len(), 1);
    assert_eq!(
        *booked.lock().unwrap(),
        [(DropReason::SpoolFull, Some(3)), (DropReason::SpoolFull, Some(4))]
    );
}

#[test]
fn a_record_larger_than_the_cap_is_refused_and_nothing_is_dropped() {
    let dir = scratch("too-large");
    let (mut spool, booked) = open(&SpoolOptions::new(&dir).max_bytes(500));
    spool.write(&record(1, 100)).unwrap();
    assert!(spool.write(&record(2, 1000)).is_err());
    assert_eq!(spool.len(), 1);
    assert!(booked.lock().unwrap().is_empty());
    assert_eq!(files(&dir).len(), 1);
}

#[test]
fn files_older_than_the_age_cap_are_dropped_and_booked() {
    let dir = scratch("age-cap");
    let options = SpoolOptions::new(&dir).max_age(Duration::from_secs(3600));
    let (mut spool, booked) = open(&options);
    spool.write(&record(1, 10)).unwrap();
    // A file from two hours ago, as a previous run would have left it.
    let created = nanos(SystemTime::now() - Duration::from_secs(7200));
    let old = format!("{created:020}-00000001{SUFFIX}");
    fs::write(dir.join(OWNER.dir_name()).join(&old), encode(&record(7, 10), OWNER, created))
        .unwrap();
    drop(spool);

    let (mut spool, booked_again) = open(&options);
    assert!(booked.lock().unwrap().is_empty());
    assert_eq!(*booked_again.lock().unwrap(), [(DropReason::SpoolExpired, Some(8))]);
    assert_eq!(spool.len(), 1);
    assert_eq!(spool.front().unwrap().1.kind, 1);
    assert!(!files(&dir).contains(&old));
}

#[test]
fn unreadable_files_are_skipped_deleted_and_counted_never_a_panic() {
    let dir = scratch("corrupt");
    let options = SpoolOptions::new(&dir);
    let (mut spool, _) = open(&options);
    for tag in 0..7 {
        spool.write(&record(tag, 64)).unwrap();
    }
    drop(spool);
    let names = files(&dir);
    let path = |i: usize| dir.join(OWNER.dir_name()).join(&names[i]);
    let whole = fs::read(path(0)).unwrap();
    // 0: garbage under a spool name.
    fs::write(path(0), b"not a spool file at all, just some text").unwrap();
    // 1: truncated body (a crash cannot leave this, a damaged disk can).
    let bytes = fs::read(path(1)).unwrap();
    fs::write(path(1), &bytes[..bytes.len() - 10]).unwrap();
    // 2: a flipped bit in the body.
    let mut bytes = fs::read(path(2)).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(path(2), &bytes).unwrap();
    // 3: an unknown format version.
    let mut bytes = fs::read(path(3)).unwrap();
    bytes[8] = 99;
    fs::write(path(3), &bytes).unwrap();
    // 4: cut inside the header; 5: empty.
    fs::write(path(4), &whole[..20]).unwrap();
    fs::write(path(5), b"").unwrap();
    // 6 is whole.

    let (mut spool, booked) = open(&options);
    assert_eq!(spool.len(), 7);
    let (ticket, record6) = spool.front().unwrap();
    assert_eq!(record6.kind, 6);
    assert_eq!(*booked.lock().unwrap(), [(DropReason::SpoolCorrupt, None); 6]);
    spool.remove(&ticket);
    assert!(files(&dir).is_empty(), "unreadable files are deleted");

    // Every prefix of a file is refused, none panics.
    for cut in 0..whole.len() {
        assert!(decode(&whole[..cut], OWNER).is_err(), "{cut}");
    }
    assert_eq!(decode(&whole, OWNER).map(|r| r.kind), Ok(0));
    let mut longer = whole.clone();
    longer.push(0);
    assert_eq!(decode(&longer, OWNER).map(|r| r.kind), Err("trailing bytes"));
}

#[test]
fn a_file_of_the_other_sink_is_refused() {
    let bytes = encode(&record(1, 5), OWNER, 0);
    let mut other = bytes.clone();
    other[10] = 3;
    assert_eq!(decode(&other, OWNER).map(|r| r.kind), Err("written by another sink"));
}

#[test]
fn temporary_files_left_by_a_crash_are_deleted_and_foreign_files_left_alone() {
    let dir = scratch("crash");
    let options = SpoolOptions::new(&dir);
    let (mut spool, _) = open(&options);
    spool.write(&record(1, 10)).unwrap();
    drop(spool);
    let sub = dir.join(OWNER.dir_name());
    let bytes = encode(&record(2, 10), OWNER, 5);
    // A crash after writing half the temporary file.
    fs::write(sub.join(format!(".{:020}-00000009{SUFFIX}{TEMP_SUFFIX}", 5)), &bytes[..30]).unwrap();
    fs::write(sub.join("README"), b"mine").unwrap();

    let (mut spool, booked) = open(&options);
    assert_eq!(spool.len(), 1);
    assert_eq!(spool.front().unwrap().1.kind, 1);
    assert!(booked.lock().unwrap().is_empty());
    let left = files(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"README".to_owned()));
}

#[test]
fn a_directory_that_cannot_be_created_fails_writes_not_the_sink() {
    let dir = scratch("blocked");
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    // A file where the directory should be.
    fs::write(&dir, b"in the way").unwrap();
    let (mut spool, booked) = open(&SpoolOptions::new(&dir));
    assert!(spool.is_empty() && spool.front().is_none());
    assert!(spool.write(&record(1, 10)).is_err());
    assert!(spool.is_empty());
    assert!(booked.lock().unwrap().is_empty());
    let _ = fs::remove_file(&dir);
}

#[test]
fn names_that_are_not_spool_names_are_ignored() {
    assert_eq!(parse_name("00000000000000000042-00000001.spool"), Some(42));
    for name in ["42-1.spool", "00000000000000000042-.spool", "00000000000000000042-1.tmp", "x"] {
        assert_eq!(parse_name(name), None, "{name}");
    }
}
