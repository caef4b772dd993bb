//! The consumer's side: map read-only, follow the ring, know what was lost and whether the
//! producer lives.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use dbn::RecordRef;
use weir_schedulers::queue::broadcast::{Join, Poll, Reader, ReaderStats, Resync};

use super::layout::{
    DBN_VERSION, HEADER_LEN, LAYOUT_VERSION, MAGIC, MapKind, Mapping, STATE_ENDED, STATE_LIVE, STATE_SUPERSEDED,
};
use super::{BusError, MAX_CAPACITY, MIN_CAPACITY, futex_wait, monotonic_ns};

/// How to follow a bus.
#[derive(Clone, Copy, Debug)]
pub struct SubscriberOptions {
    /// Where to start: the next record published, or the oldest still in the ring.
    pub join: Join,
    /// Where to go when lapped: the newest record, or the oldest still in the ring.
    pub resync: Resync,
    /// A heartbeat older than this means the producer is dead. `None`: ten heartbeat intervals,
    /// and at least 100 ms.
    pub stale_after: Option<Duration>,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions { join: Join::Tail, resync: Resync::Latest, stale_after: None }
    }
}

/// What the file's header says about its producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProducerInfo {
    /// The file's epoch (1 for a new name, +1 per re-creation).
    pub epoch: u64,
    /// The producer's process id (in its pid namespace).
    pub pid: u32,
    /// Bytes in the ring.
    pub capacity: u64,
    /// When the file was created (ns since the Unix epoch).
    pub created_unix_ns: u64,
    /// How often the producer refreshes its heartbeat (ns).
    pub heartbeat_interval_ns: u64,
}

/// How the producer is doing, as far as a consumer can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerState {
    /// Heartbeat fresh, and records arrived within the stale window.
    Live,
    /// Heartbeat fresh, but no record for `idle_ns`: a quiet feed, not a dead producer.
    Quiet {
        /// Since this subscriber last saw a record arrive (as of its previous `producer` call),
        /// or since it opened.
        idle_ns: u64,
    },
    /// The heartbeat stopped `heartbeat_age_ns` ago: the producer died (or hangs).
    Dead {
        /// Age of the last heartbeat.
        heartbeat_age_ns: u64,
    },
    /// The producer marked the end of its stream.
    Ended,
    /// A newer producer re-created the bus under this name ([`Subscriber::reopen`] follows it).
    Superseded,
}

/// Counters of one subscriber (across re-opens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberStats {
    /// Records delivered.
    pub received: u64,
    /// Records missed: lapped, skipped, or not DBN (exact, from the sequence numbers).
    pub lost: u64,
    /// Times this subscriber was lapped.
    pub laps: u64,
    /// Records copied and then found overwritten during the copy (thrown away).
    pub overwritten: u64,
    /// Frames or records that did not parse though the writer had not overwritten them.
    pub corrupt: u64,
    /// Epochs followed after the first (producer restarts).
    pub reopens: u64,
    /// A reopen left an epoch whose unread count could not be read (its producer was still
    /// writing): `lost` is then a lower bound.
    pub lost_inexact: bool,
}

/// One record read from the bus.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// Its sequence number in this epoch.
    pub seq: u64,
    /// Records missed just before it (0 unless lapped).
    pub lost: u64,
    /// The record (in the subscriber's buffer: valid until the next poll).
    pub record: RecordRef<'a>,
}

impl Delivery<'_> {
    /// The record's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.record.as_ref()
    }
}

/// What one [`Subscriber::poll`] found.
#[derive(Debug)]
pub enum Next<'a> {
    /// A record.
    Record(Delivery<'a>),
    /// Nothing new.
    Empty,
    /// Lapped (or a record was overwritten while it was read); resynchronised. The next record
    /// says how many were lost.
    Lapped,
    /// Something that is not a record, which the writer had not overwritten; counted (corrupt
    /// and lost, and in the next [`Delivery::lost`]), skipped.
    Corrupt {
        /// Stream position of the bad frame, or just after a bad record.
        position: u64,
        /// What was wrong.
        what: &'static str,
    },
}

/// Room for the largest DBN record (255 * 4 bytes), 8-aligned as DBN records need.
#[repr(C, align(64))]
#[derive(Debug)]
struct Buffer([u64; 128]);

/// A consumer of a bus file. See the [module docs](super).
#[derive(Debug)]
pub struct Subscriber {
    path: PathBuf,
    reader: Reader<Mapping>,
    info: ProducerInfo,
    /// (device, inode) of the mapped file, to notice a re-created one.
    file_id: (u64, u64),
    buf: Box<Buffer>,
    opts: SubscriberOptions,
    /// Stats of the readers of earlier epochs.
    before: SubscriberStats,
    bad_records: u64,
    /// Entries too large for the buffer (counted lost by the reader; corrupt here).
    too_large: u64,
    /// Records missed that no `Delivery::lost` has reported yet (gaps before bad entries, the
    /// bad entries themselves, what a reopen left behind).
    pending_lost: u64,
    /// (records received, when that count was first seen by `producer`): idleness without a
    /// clock read per record.
    activity: std::cell::Cell<(u64, u64)>,
}

impl Subscriber {
    /// Maps the bus file at `path` read-only and joins it.
    pub fn open(path: &Path, opts: &SubscriberOptions) -> Result<Subscriber, BusError> {
        let (mapping, file_id) = map(path)?;
        let info = info_of(&mapping);
        let reader = Reader::new(mapping, opts.join, opts.resync);
        Ok(Subscriber {
            path: path.to_owned(),
            reader,
            info,
            file_id,
            buf: Box::new(Buffer([0; 128])),
            opts: *opts,
            before: SubscriberStats::default(),
            bad_records: 0,
            too_large: 0,
            pending_lost: 0,
            activity: std::cell::Cell::new((0, monotonic_ns())),
        })
    }

    /// Waits up to `timeout` for the bus to appear (a consumer started before its producer),
    /// checking every 10 ms.
    pub fn open_wait(path: &Path, opts: &SubscriberOptions, timeout: Duration) -> Result<Subscriber, BusError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match Subscriber::open(path, opts) {
                Err(BusError::Missing(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The producer, as its header describes it.
    pub fn info(&self) -> &ProducerInfo {
        &self.info
    }

    /// Reads the next record, if any.
    #[inline]
    pub fn poll(&mut self) -> Next<'_> {
        match self.reader.poll(&mut self.buf.0) {
            Poll::Empty => Next::Empty,
            Poll::Entry { seq, lost, len } => {
                // SAFETY: `Buffer` is plain u64s, so viewing its first `len` (<= 1024) bytes as
                // bytes is valid.
                let bytes = unsafe { std::slice::from_raw_parts(self.buf.0.as_ptr().cast::<u8>(), len) };
                if len < 16 || usize::from(bytes[0]) * 4 != len {
                    self.bad_records += 1;
                    self.pending_lost += lost + 1;
                    return Next::Corrupt { position: self.reader.cursor(), what: "entry is not one DBN record" };
                }
                if len < min_record_len(bytes[1]) {
                    // `RecordRef::get` would panic on it: not delivered.
                    self.bad_records += 1;
                    self.pending_lost += lost + 1;
                    return Next::Corrupt { position: self.reader.cursor(), what: "record shorter than its rtype" };
                }
                // SAFETY: `bytes` starts with a RecordHeader whose length covers the whole slice
                // (checked above), 8-aligned (Buffer is 64-aligned).
                let record = unsafe { RecordRef::new(bytes) };
                let lost = lost + std::mem::take(&mut self.pending_lost);
                Next::Record(Delivery { seq, lost, record })
            }
            Poll::Lapped => Next::Lapped,
            Poll::Corrupt { position, .. } => Next::Corrupt { position, what: "bad entry frame" },
            Poll::TooLarge { lost, .. } => {
                self.too_large += 1;
                self.pending_lost += lost + 1;
                Next::Corrupt { position: self.reader.cursor(), what: "entry larger than any DBN record" }
            }
        }
    }

    /// Blocks until a record may be there, `timeout` passes, or the producer's state changes.
    /// Spin first (a few `poll`s) when latency matters; this is for consumers that do not spin.
    pub fn wait(&self, timeout: Duration) {
        let header = self.reader.memory().header();
        let word = header.wake.load(Ordering::Relaxed);
        // The tail read next is at least as new as the word (the producer bumps the word after
        // publishing): a fence, since an acquire load is not allowed on read-only memory.
        fence(Ordering::Acquire);
        if self.reader.lag_bytes() > 0 || header.state.load(Ordering::Relaxed) != STATE_LIVE {
            return;
        }
        futex_wait(&header.wake, word, timeout);
    }

    /// Bytes published but not yet read.
    pub fn lag_bytes(&self) -> u64 {
        self.reader.lag_bytes()
    }

    /// The counters.
    pub fn stats(&self) -> SubscriberStats {
        let r: &ReaderStats = self.reader.stats();
        SubscriberStats {
            received: self.before.received + r.received - self.bad_records,
            lost: self.before.lost + r.lost + self.bad_records,
            laps: self.before.laps + r.laps,
            overwritten: self.before.overwritten + r.overwritten,
            corrupt: self.before.corrupt + r.corrupt + self.bad_records + self.too_large,
            reopens: self.before.reopens,
            lost_inexact: self.before.lost_inexact,
        }
    }

    /// The producer's state. `Ended` and `Superseded` only once everything has been read (until
    /// then the records left are still there to read; a dead producer's too).
    pub fn producer(&self) -> ProducerState {
        let header = self.reader.memory().header();
        let state = header.state.load(Ordering::Relaxed);
        // The tail read by `lag_bytes` is at least as new as the state (the producer publishes,
        // then marks): a fence, since an acquire load is not allowed on read-only memory.
        fence(Ordering::Acquire);
        match state {
            STATE_SUPERSEDED if self.reader.lag_bytes() == 0 => return ProducerState::Superseded,
            STATE_ENDED if self.reader.lag_bytes() == 0 => return ProducerState::Ended,
            _ => {}
        }
        let stale = self.opts.stale_after.unwrap_or_else(|| {
            Duration::from_nanos(self.info.heartbeat_interval_ns.saturating_mul(10)).max(Duration::from_millis(100))
        });
        let stale = stale.as_nanos().min(u128::from(u64::MAX)) as u64;
        let now = monotonic_ns();
        let age = now.saturating_sub(header.heartbeat_ns.load(Ordering::Relaxed));
        let received = self.stats().received;
        let (seen, since) = self.activity.get();
        let since = if seen == received {
            since
        } else {
            self.activity.set((received, now));
            now
        };
        let idle = now.saturating_sub(since);
        if age > stale {
            ProducerState::Dead { heartbeat_age_ns: age }
        } else if idle > stale {
            ProducerState::Quiet { idle_ns: idle }
        } else {
            ProducerState::Live
        }
    }

    /// Follows a producer that re-created the bus: when the file at the path is a different one
    /// (a newer epoch), maps it and joins it at its oldest record (a new epoch starts with its
    /// symbol mappings). Returns the new producer when it switched.
    pub fn reopen(&mut self) -> Result<Option<ProducerInfo>, BusError> {
        let id = match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BusError::io(&self.path, "stat")(e)),
        };
        if id == self.file_id {
            return Ok(None);
        }
        let (mapping, file_id) = map(&self.path)?;
        let info = info_of(&mapping);
        let mut stats = self.stats();
        stats.reopens += 1;
        // What the old epoch still held unread is lost now: count it, so that received + lost
        // stays exact. (If its newest record cannot be read any more, the old producer was
        // still writing: the count is then a lower bound, and `lost_inexact` says so.)
        match self.reader.unread() {
            Some(n) => {
                stats.lost += n;
                self.pending_lost += n;
            }
            None => stats.lost_inexact = true,
        }
        let reader = Reader::new(mapping, Join::Oldest, self.opts.resync);
        // Joined at the oldest record still there: what the new producer wrote before it (a
        // ring that wrapped before we noticed the restart) is lost too.
        match reader.expected_seq() {
            Some(e) => {
                let missed = e.saturating_sub(reader.first_seq());
                stats.lost += missed;
                self.pending_lost += missed;
            }
            None => stats.lost_inexact = true,
        }
        self.before = stats;
        self.bad_records = 0;
        self.too_large = 0;
        self.reader = reader;
        self.info = info;
        self.file_id = file_id;
        Ok(Some(info))
    }
}

/// The size of a DBN v3 record of this rtype (16, a bare header, for rtypes `dbn` does not know).
pub fn min_record_len(rtype: u8) -> usize {
    use dbn::RType;
    use std::mem::size_of;
    #[allow(deprecated)]
    match RType::try_from(rtype) {
        Ok(RType::Mbp0) => size_of::<dbn::TradeMsg>(),
        Ok(RType::Mbp1 | RType::Tbbo) => size_of::<dbn::Mbp1Msg>(),
        Ok(RType::Mbp10) => size_of::<dbn::Mbp10Msg>(),
        Ok(
            RType::OhlcvDeprecated
            | RType::Ohlcv1S
            | RType::Ohlcv1M
            | RType::Ohlcv1H
            | RType::Ohlcv1D
            | RType::OhlcvEod,
        ) => size_of::<dbn::OhlcvMsg>(),
        Ok(RType::Status) => size_of::<dbn::StatusMsg>(),
        Ok(RType::InstrumentDef) => size_of::<dbn::InstrumentDefMsg>(),
        Ok(RType::Imbalance) => size_of::<dbn::ImbalanceMsg>(),
        Ok(RType::Error) => size_of::<dbn::ErrorMsg>(),
        Ok(RType::SymbolMapping) => size_of::<dbn::SymbolMappingMsg>(),
        Ok(RType::System) => size_of::<dbn::SystemMsg>(),
        Ok(RType::Statistics) => size_of::<dbn::StatMsg>(),
        Ok(RType::Mbo) => size_of::<dbn::MboMsg>(),
        Ok(RType::Cmbp1 | RType::Tcbbo) => size_of::<dbn::Cmbp1Msg>(),
        Ok(RType::Bbo1S | RType::Bbo1M) => size_of::<dbn::BboMsg>(),
        Ok(RType::Cbbo1S | RType::Cbbo1M) => size_of::<dbn::CbboMsg>(),
        Err(_) => 16,
    }
}

fn info_of(m: &Mapping) -> ProducerInfo {
    let h = m.header();
    ProducerInfo {
        epoch: h.epoch,
        pid: h.producer_pid,
        capacity: h.capacity,
        created_unix_ns: h.created_unix_ns,
        heartbeat_interval_ns: h.heartbeat_interval_ns,
    }
}

/// Opens and maps `path` read-only after checking its header.
fn map(path: &Path) -> Result<(Mapping, (u64, u64)), BusError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BusError::Missing(path.to_owned())),
        Err(e) => return Err(BusError::io(path, "opening")(e)),
    };
    let capacity = check_file(path, &file)?;
    let meta = file.metadata().map_err(BusError::io(path, "stat"))?;
    // SAFETY: a read-only shared mapping; the producer writes it concurrently, which is why every
    // access goes through `Mapping`'s atomics (loads only).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(BusError::io(path, "mapping"))?;
    Ok((Mapping::new(MapKind::ReadOnly(map), capacity as usize), (meta.dev(), meta.ino())))
}

/// Checks the header of the bus file `file` (at `path`) and returns its ring capacity.
pub(super) fn check_file(path: &Path, file: &File) -> Result<u64, BusError> {
    use std::os::unix::fs::FileExt;
    let foreign = |field: &'static str, offset: usize, found: String, expected: String| BusError::Foreign {
        path: path.to_owned(),
        field,
        offset,
        found,
        expected,
    };
    let mut head = [0u8; 32];
    let n = file.read_at(&mut head, 0).map_err(BusError::io(path, "reading the header"))?;
    if n < head.len() {
        return Err(foreign("file length", 0, format!("{n} bytes"), format!("at least {HEADER_LEN} bytes")));
    }
    let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().expect("8 bytes"));
    if head[..8] != MAGIC {
        return Err(foreign("magic", 0, format!("{:?}", String::from_utf8_lossy(&head[..8])), "\"WEIRBUS\\0\"".into()));
    }
    if u32_at(8) != LAYOUT_VERSION {
        return Err(foreign("layout version", 8, u32_at(8).to_string(), LAYOUT_VERSION.to_string()));
    }
    if u32_at(12) != DBN_VERSION {
        return Err(foreign("DBN version", 12, u32_at(12).to_string(), DBN_VERSION.to_string()));
    }
    if u64_at(16) != HEADER_LEN as u64 {
        return Err(foreign("header length", 16, u64_at(16).to_string(), HEADER_LEN.to_string()));
    }
    let capacity = u64_at(24);
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(foreign("capacity", 24, capacity.to_string(), "a power of two from 4096 to 2^40".into()));
    }
    let len = file.metadata().map_err(BusError::io(path, "stat"))?.len();
    if len < HEADER_LEN as u64 + capacity {
        return Err(foreign(
            "file length",
            24,
            format!("{len} bytes"),
            format!("{} (header + capacity {capacity})", HEADER_LEN as u64 + capacity),
        ));
    }
    Ok(capacity)
}
