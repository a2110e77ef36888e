//! The durable spool: payloads a network sink could not deliver, kept on disk until its
//! backend can be reached again, in this process or the next one.
//!
//! It is opt-in, per sink ([`SpoolOptions`], given to `DatadogOptions::spool` or
//! `SentryOptions::spool`). Each sink keeps its files in a subdirectory of its own
//! (`datadog/`, `sentry/`), so both may be given the same directory. Only the sink's lane
//! thread reads or writes them; application threads never wait for the disk.
//!
//! The format, the caps and the delivery rules are documented on [`SpoolOptions`].

#[cfg(feature = "sentry")]
pub(crate) use self::file::put_bytes;
use self::file::{decode, encode};
pub(crate) use self::file::{put_u32, Reader, Record};
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::stats::DropReason;

/// Settings of a network sink's durable spool: where payloads that could not be delivered
/// wait on disk, and how much may wait.
///
/// | setting | default |
/// |---|---|
/// | [`max_bytes`](Self::max_bytes) | 64 MiB ([`DEFAULT_MAX_BYTES`](Self::DEFAULT_MAX_BYTES)) |
/// | [`max_age`](Self::max_age) | 24 hours ([`DEFAULT_MAX_AGE`](Self::DEFAULT_MAX_AGE)) |
///
/// The directory is created when the sink starts (or at its first write, if it could not be
/// created then); each sink uses a subdirectory of it, named after the sink. See the sinks'
/// documentation for when they spool.
///
/// ## Files
///
/// One file per payload, named `<creation time in nanoseconds, 20 digits>-<sequence>.spool`,
/// so that names sort oldest first. A file is written under a temporary name (`.<name>.tmp`),
/// synced to disk, renamed to its final name, and the directory is synced: a crash leaves
/// either a whole file or a temporary one, which the next start deletes.
///
/// A file is a 56-byte header followed by three sections (integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TALLYSPL` |
/// | 8 | 2 | format version (1) |
/// | 10 | 1 | sink (1 Datadog, 2 Sentry) |
/// | 11 | 1 | payload kind (the sink's: Datadog series, distribution points, event) |
/// | 12 | 1 | compression of the body (0 none, 1 deflate, 2 gzip) |
/// | 13 | 3 | zero |
/// | 16 | 8 | creation time, nanoseconds since the Unix epoch |
/// | 24 | 8 | records the payload stands for (what its loss is counted as) |
/// | 32 | 4 | length of the sink's metadata section |
/// | 36 | 4 | length of the manifest section |
/// | 40 | 8 | length of the body |
/// | 48 | 8 | FNV-1a (64-bit) checksum of the header's first 48 bytes and the three sections |
///
/// The metadata section is the sink's own (Datadog: each item's place in the body and its
/// timestamp; Sentry: the envelope header and each item's type and category). The manifest
/// lists the metric points the payload carries, as a count, then for each point its metric's
/// name (4-byte length, UTF-8) and the values it carries (`f64`): a payload dropped later still
/// books its losses per metric in [`Stats::metric_losses`](crate::Stats::metric_losses).
///
/// ## Caps
///
/// The files take at most [`SpoolOptions::max_bytes`] (64 MiB by default): writing past that
/// deletes the oldest files first, counted as `spool_full`. A file older than
/// [`SpoolOptions::max_age`] (24 hours by default) is deleted unsent, counted as
/// `spool_expired`. A payload larger than the cap by itself is not spooled (and counted as the
/// sink would have counted it without a spool). A file that cannot be read back (truncated,
/// a bad checksum, an unknown version, not a spool file at all under a spool name) is deleted
/// and counted as `spool_corrupt`, once per file; it never stops the sink. Files whose names do
/// not look like spool files are left alone.
///
/// ## Delivery
///
/// A file is deleted only once its payload was accepted (2xx) or finally refused (its losses
/// are then booked). A crash between the answer and the deletion sends the payload again on the
/// next start: across crashes, delivery is at least once. The directory belongs to one process
/// at a time: two processes sharing it would send the same files.
///
/// ```
/// use std::time::Duration;
/// use tracing_tally::sink::SpoolOptions;
///
/// let spool = SpoolOptions::new("/var/lib/my-app/tally-spool")
///     .max_bytes(16 << 20)
///     .max_age(Duration::from_secs(6 * 3600));
/// assert_eq!(spool.dir().to_str(), Some("/var/lib/my-app/tally-spool"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SpoolOptions {
    dir: PathBuf,
    max_bytes: u64,
    max_age: Duration,
}

impl SpoolOptions {
    /// The default size cap: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    /// The default age cap: 24 hours.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

    /// A spool in `dir`, with the default caps.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolOptions {
            dir: dir.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_age: Self::DEFAULT_MAX_AGE,
        }
    }

    /// The most bytes of files kept (default 64 MiB); past that, the oldest are deleted first
    /// (`spool_full`).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How long a payload may wait (default 24 hours); older ones are deleted unsent
    /// (`spool_expired`).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Which sink a spool belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    #[cfg(feature = "datadog")]
    Datadog = 1,
    #[cfg(feature = "sentry")]
    Sentry = 2,
}

impl Owner {
    fn dir_name(self) -> &'static str {
        match self {
            #[cfg(feature = "datadog")]
            Owner::Datadog => "datadog",
            #[cfg(feature = "sentry")]
            Owner::Sentry => "sentry",
        }
    }
}

/// Where a spool books what it deletes unsent, in the pipeline's words: `reason` is
/// [`DropReason::SpoolFull`] (deleted to stay under the size cap), [`DropReason::SpoolExpired`]
/// (older than the age cap) or [`DropReason::SpoolCorrupt`] (could not be read back); `record`
/// is the file's payload when it could be read (never for `SpoolCorrupt`, counted per file).
/// Each sink books it its own way (Datadog per item and metric point, Sentry also in its client
/// reports).
pub(crate) trait SpoolLedger: Send {
    fn discarded(&self, reason: DropReason, record: Option<&Record>);
}

/// A file taken with [`Spool::front`], to [`remove`](Spool::remove) once it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket(String);

/// A file in the spool.
#[derive(Debug)]
struct Spooled {
    name: String,
    /// Nanoseconds since the Unix epoch.
    created: u64,
    bytes: u64,
}

/// The spool of one sink; owned by the sink, on its lane thread.
pub(crate) struct Spool {
    dir: PathBuf,
    owner: Owner,
    max_bytes: u64,
    max_age: Duration,
    /// Oldest first.
    files: VecDeque<Spooled>,
    bytes: u64,
    /// The creation time of the newest file written (names stay in order if the clock steps
    /// back).
    last: u64,
    sequence: u64,
    ledger: Box<dyn SpoolLedger>,
    debug: bool,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

const SUFFIX: &str = ".spool";
const TEMP_SUFFIX: &str = ".tmp";

impl Spool {
    /// Opens the spool of `owner` under `options.dir()`: creates the directory, deletes the
    /// temporary files a crash left, indexes the files, and applies the caps. Never fails: a
    /// directory that cannot be created or read gives an empty spool whose writes fail.
    pub(crate) fn open(
        options: &SpoolOptions,
        owner: Owner,
        ledger: impl SpoolLedger + 'static,
        debug: bool,
    ) -> Spool {
        let mut spool = Spool {
            dir: options.dir.join(owner.dir_name()),
            owner,
            max_bytes: options.max_bytes,
            max_age: options.max_age,
            files: VecDeque::new(),
            bytes: 0,
            last: 0,
            sequence: 0,
            ledger: Box::new(ledger),
            debug,
        };
        if let Err(error) = fs::create_dir_all(&spool.dir) {
            spool.log(format_args!("cannot create {}: {error}", spool.dir.display()));
        }
        spool.scan();
        spool.expire();
        spool.shrink(0);
        spool
    }

    fn log(&self, message: fmt::Arguments<'_>) {
        if self.debug {
            crate::debug::log(format_args!("{} spool: {message}", self.owner.dir_name()));
        }
    }

    /// Indexes the spool files, deleting temporary ones.
    fn scan(&mut self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                // A write that did not finish: the payload was counted as lost then.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(created) = parse_name(&name) else { continue };
            let bytes = entry.metadata().map_or(0, |m| m.len());
            files.push(Spooled { name, created, bytes });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        self.bytes = files.iter().map(|f| f.bytes).sum();
        self.last = files.iter().map(|f| f.created).max().unwrap_or(0);
        self.files = files.into();
    }

    /// Files waiting.
    #[cfg_attr(not(feature = "datadog"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes of the files waiting.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes `record` as the newest file, then deletes the oldest ones while over the size
    /// cap (never the new one).
    ///
    /// # Errors
    ///
    /// The record is larger than the cap by itself, or the directory or the file could not be
    /// written (disk full...): nothing was kept, and the caller counts the payload as lost.
    pub(crate) fn write(&mut self, record: &Record) -> io::Result<()> {
        self.expire();
        let now = nanos(SystemTime::now());
        let created = now.max(self.last.saturating_add(1));
        let bytes = encode(record, self.owner, created);
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(io::Error::other("the payload is larger than the spool"));
        }
        self.sequence += 1;
        let name = format!("{created:020}-{:08}{SUFFIX}", self.sequence % 100_000_000);
        if let Err(error) = self.store(&name, &bytes) {
            self.log(format_args!("cannot write {name}: {error}"));
            return Err(error);
        }
        self.last = created;
        self.files.push_back(Spooled { name, created, bytes: size });
        self.bytes += size;
        self.shrink(1);
        Ok(())
    }

    /// Write, sync, rename, sync the directory.
    fn store(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let temp = self.dir.join(format!(".{name}{TEMP_SUFFIX}"));
        let written = File::create(&temp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(error) = written.and_then(|()| fs::rename(&temp, self.dir.join(name))) {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
        // The rename is durable once the directory is synced (not possible everywhere).
        #[cfg(unix)]
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The oldest readable file, deleting (and counting) expired and unreadable ones on the
    /// way. The file stays until [`remove`](Self::remove)d.
    pub(crate) fn front(&mut self) -> Option<(Ticket, Record)> {
        self.expire();
        loop {
            let file = self.files.front()?;
            let name = file.name.clone();
            match fs::read(self.dir.join(&name)) {
                Ok(bytes) => match decode(&bytes, self.owner) {
                    Ok(record) => return Some((Ticket(name), record)),
                    Err(reason) => {
                        self.log(format_args!("{name} skipped: {reason}"));
                        self.drop_front(DropReason::SpoolCorrupt, None);
                    }
                },
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    // Deleted by someone else: nothing to count.
                    self.pop_front();
                }
                Err(error) => {
                    self.log(format_args!("{name} skipped: {error}"));
                    self.drop_front(DropReason::SpoolCorrupt, None);
                }
            }
        }
    }

    /// Deletes the file of `ticket`: its payload was delivered, or its losses booked.
    pub(crate) fn remove(&mut self, ticket: &Ticket) {
        if let Some(i) = self.files.iter().position(|f| f.name == ticket.0) {
            if let Some(file) = self.files.remove(i) {
                self.bytes = self.bytes.saturating_sub(file.bytes);
                let _ = fs::remove_file(self.dir.join(&file.name));
            }
        }
    }

    /// Deletes the file of `ticket` as unreadable (its sink could not make sense of it).
    pub(crate) fn discard(&mut self, ticket: &Ticket) {
        self.log(format_args!("{} skipped: the sink cannot read it", ticket.0));
        self.remove(ticket);
        self.ledger.discarded(DropReason::SpoolCorrupt, None);
    }

    fn pop_front(&mut self) -> Option<Spooled> {
        let file = self.files.pop_front()?;
        self.bytes = self.bytes.saturating_sub(file.bytes);
        let _ = fs::remove_file(self.dir.join(&file.name));
        Some(file)
    }

    /// Deletes the oldest file unsent, booking it for `reason` (with its record, if it can be
    /// read, unless `record` is given).
    fn drop_front(&mut self, reason: DropReason, record: Option<Record>) {
        let Some(file) = self.files.front() else { return };
        let path = self.dir.join(&file.name);
        let record = match (reason, record) {
            (DropReason::SpoolCorrupt, _) => None,
            (_, Some(record)) => Some(record),
            (_, None) => fs::read(&path).ok().and_then(|b| decode(&b, self.owner).ok()),
        };
        self.pop_front();
        match record {
            Some(record) => self.ledger.discarded(reason, Some(&record)),
            None => self.ledger.discarded(DropReason::SpoolCorrupt, None),
        }
    }

    /// Deletes the files older than the age cap.
    fn expire(&mut self) {
        let now = nanos(SystemTime::now());
        let max = u64::try_from(self.max_age.as_nanos()).unwrap_or(u64::MAX);
        while self.files.front().is_some_and(|f| now.saturating_sub(f.created) > max) {
            self.drop_front(DropReason::SpoolExpired, None);
        }
    }

    /// Deletes the oldest files while over the size cap, keeping the newest `keep`.
    fn shrink(&mut self, keep: usize) {
        while self.bytes > self.max_bytes && self.files.len() > keep {
            self.drop_front(DropReason::SpoolFull, None);
        }
    }
}

/// The creation time in a spool file's name.
fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (created, sequence) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if created.len() != 20 || !digits(created) || !digits(sequence) {
        return None;
    }
    created.parse().ok()
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

mod file;
#[cfg(test)]
mod tests;
