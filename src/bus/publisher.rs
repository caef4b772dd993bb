//! The producer's side: create the ring file, publish records, beat the heartbeat.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use weir_feeds::normalize::RecordSink;
use weir_schedulers::queue::broadcast::Writer;

use super::layout::{
    DBN_VERSION, HEADER_LEN, LAYOUT_VERSION, MAGIC, MapKind, Mapping, STATE_ENDED, STATE_LIVE, STATE_SUPERSEDED,
};
use super::{BusError, MAX_CAPACITY, MIN_CAPACITY, futex_wake, monotonic_ns};

/// How to create a bus file.
#[derive(Clone, Debug)]
pub struct PublisherOptions {
    /// Bytes in the ring (a power of two, 4 KiB to 1 TiB); the file is 4 KiB larger.
    pub capacity: u64,
    /// Let the file's group read it (mode 0640 instead of 0600).
    pub group_read: bool,
    /// `mlock` the mapping (needs `RLIMIT_MEMLOCK` room or root).
    pub lock: bool,
    /// Allocate and touch every page from a thread pinned to this CPU, so that the pages land on
    /// its NUMA node (the publishing core's). `None`: from the calling thread.
    pub first_touch_cpu: Option<u32>,
    /// How often the heartbeat is refreshed (from [`Publisher::tick`]).
    pub heartbeat_interval: Duration,
    /// Wake consumers blocked in [`Subscriber::wait`](super::Subscriber::wait) at most this
    /// often, and only when records were published since the last wake (one `futex` system call
    /// each time, from [`Publisher::tick`]). `None`: never; waiting consumers rely on their
    /// timeout.
    pub wake_interval: Option<Duration>,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            capacity: super::DEFAULT_CAPACITY,
            group_read: false,
            lock: false,
            first_touch_cpu: None,
            heartbeat_interval: Duration::from_millis(10),
            wake_interval: Some(Duration::from_micros(200)),
        }
    }
}

/// The one writer of a bus file. See the [module docs](super).
#[derive(Debug)]
pub struct Publisher {
    writer: Writer<Mapping>,
    path: PathBuf,
    epoch: u64,
    clock: quanta::Clock,
    /// When [`tick`](Self::tick) next has something to do.
    next_due: quanta::Instant,
    next_beat: quanta::Instant,
    heartbeat_interval: Duration,
    wake_interval: Option<Duration>,
    /// The sequence at the last wake.
    woken_at: u64,
    /// Consecutive wakes that woke nobody: the wake interval doubles with each (to 10 ms), so a
    /// bus without blocked consumers costs the poll loop almost no system calls.
    idle_wakes: u32,
    superseded: bool,
    finished: bool,
    refused: u64,
}

/// A record that is not one DBN record (length and header disagree, or shorter than its rtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a DBN record: {len} bytes, header says {header_len} (or shorter than its rtype)")]
pub struct NotARecord {
    /// Bytes given.
    pub len: usize,
    /// `length * 4` from the record header (0 when shorter than a header).
    pub header_len: usize,
}

const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

impl Publisher {
    /// Creates the bus file at `path` (see [`resolve`](super::resolve) for names), replacing a
    /// bus file already there: the new file's epoch is the old one's plus one, and the old one is
    /// marked superseded so its readers move over. A file there that is not a bus is refused.
    pub fn create(path: &Path, opts: &PublisherOptions) -> Result<Publisher, BusError> {
        let capacity = opts.capacity;
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(BusError::Capacity(capacity));
        }
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(if opts.group_read { 0o750 } else { 0o700 })
                .create(dir)
                .map_err(BusError::io(dir, "creating the bus directory"))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            check_dir(dir)?;
        }
        // One creator at a time per name (two racing would both take the same epoch, and one's
        // subscribers would be left on an unlinked file): an exclusive lock on NAME.lock, held
        // until the old file is marked superseded.
        let _lock = lock_name(path)?;
        let previous = previous_bus(path)?;
        let epoch = previous.as_ref().map_or(1, |m| m.header().epoch + 1);

        static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}-{}.tmp", std::process::id(), CREATED.fetch_add(1, Ordering::Relaxed)));
        let tmp = PathBuf::from(tmp);
        let mode = if opts.group_read { 0o640 } else { 0o600 };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(BusError::io(&tmp, "creating the bus file"))?;
        let built = build(&file, &tmp, capacity, epoch, mode, opts).and_then(|map| {
            std::fs::rename(&tmp, path).map(|()| map).map_err(BusError::io(path, "renaming into place"))
        });
        let mapping = match built {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Some(old) = previous {
            old.header().state.store(STATE_SUPERSEDED, Ordering::Release);
            old.header().wake.fetch_add(1, Ordering::Release);
            futex_wake(&old.header().wake);
        }
        let clock = quanta::Clock::new();
        let now = clock.now();
        Ok(Publisher {
            writer: Writer::new(mapping, 0),
            path: path.to_owned(),
            epoch,
            next_due: now,
            next_beat: now,
            clock,
            heartbeat_interval: opts.heartbeat_interval,
            wake_interval: opts.wake_interval,
            woken_at: 0,
            idle_wakes: 0,
            superseded: false,
            finished: false,
            refused: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This file's epoch (1 for a new name, +1 per re-creation).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records published so far (the next record's sequence number).
    pub fn published(&self) -> u64 {
        self.writer.next_seq()
    }

    /// Records refused by [`publish`](Self::publish) as larger than a DBN record can be (only a
    /// foreign `dbn::Record` implementation can be).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Bytes written to the ring so far (padding included).
    pub fn bytes_written(&self) -> u64 {
        self.writer.position()
    }

    /// Publishes one record; returns its sequence number. O(1), never waits, no system call.
    #[inline]
    pub fn publish<R: dbn::Record>(&mut self, rec: &R) -> u64 {
        let bytes = rec.as_ref();
        // A DBN record is at most 255 * 4 bytes and the ring takes up to 2032 (capacity >= 4 KiB):
        // only a foreign `Record` impl can be refused, and is counted, not published.
        let Ok(seq) = self.writer.publish(bytes) else {
            self.refused += 1;
            return u64::MAX;
        };
        if seq & 1023 == 1023 {
            // A producer that only publishes (a replay) still beats its heartbeat.
            self.tick();
        }
        seq
    }

    /// Publishes one record given as bytes (checked: one whole DBN record).
    pub fn publish_bytes(&mut self, bytes: &[u8]) -> Result<u64, NotARecord> {
        let header_len = bytes.first().map_or(0, |&l| usize::from(l) * 4);
        if bytes.len() < 16 || header_len != bytes.len() || bytes.len() < super::min_record_len(bytes[1]) {
            return Err(NotARecord { len: bytes.len(), header_len });
        }
        // At most 1020 bytes (checked above); the smallest ring takes 2032.
        self.writer.publish(bytes).map_err(|_| NotARecord { len: bytes.len(), header_len })
    }

    /// Publishes any bytes as one entry, unchecked (up to half the ring): for testing consumers
    /// against a foreign or buggy writer. Returns the sequence, or `None` when too large.
    #[doc(hidden)]
    pub fn publish_entry_unchecked(&mut self, bytes: &[u8]) -> Option<u64> {
        self.writer.publish(bytes).ok()
    }

    /// Housekeeping, cheap enough to call once per poll-loop turn: refreshes the heartbeat every
    /// interval and wakes blocked consumers (see [`PublisherOptions::wake_interval`]). One clock
    /// read when there is nothing to do.
    #[inline]
    pub fn tick(&mut self) {
        let now = self.clock.now();
        if now >= self.next_due {
            self.tick_slow(now);
        }
    }

    #[cold]
    fn tick_slow(&mut self, now: quanta::Instant) {
        let header = self.writer.memory().header();
        if now >= self.next_beat {
            self.heartbeat();
            self.next_beat = now + self.heartbeat_interval;
            self.superseded = header.state.load(Ordering::Relaxed) == STATE_SUPERSEDED;
        }
        self.next_due = self.next_beat;
        if let Some(every) = self.wake_interval {
            if self.writer.next_seq() != self.woken_at {
                self.woken_at = self.writer.next_seq();
                header.wake.fetch_add(1, Ordering::Release);
                if futex_wake(&header.wake) > 0 {
                    self.idle_wakes = 0;
                } else {
                    self.idle_wakes = (self.idle_wakes + 1).min(16);
                }
            }
            let backoff = every.saturating_mul(1 << self.idle_wakes.min(6)).min(Duration::from_millis(10)).max(every);
            self.next_due = self.next_due.min(now + backoff);
        }
    }

    /// Whether a newer producer re-created the bus under this name (checked at each heartbeat):
    /// records published here now reach only the consumers still on the old file.
    pub fn superseded(&self) -> bool {
        self.superseded
    }

    /// Refreshes the heartbeat now.
    pub fn heartbeat(&self) {
        self.writer.memory().header().heartbeat_ns.store(monotonic_ns(), Ordering::Release);
    }

    /// Marks the end of the stream: consumers that have read everything see
    /// [`ProducerState::Ended`](super::ProducerState::Ended). Also done on drop.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if !self.finished {
            self.finished = true;
            let header = self.writer.memory().header();
            self.heartbeat();
            let _ = header.state.compare_exchange(STATE_LIVE, STATE_ENDED, Ordering::AcqRel, Ordering::Relaxed);
            header.wake.fetch_add(1, Ordering::Release);
            futex_wake(&header.wake);
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.end();
    }
}

impl RecordSink for Publisher {
    #[inline(always)]
    fn record<R: dbn::Record>(&mut self, rec: &R) {
        self.publish(rec);
    }
    #[inline(always)]
    fn flush(&mut self) {
        self.tick();
    }
}

/// The bus file already at `path`, mapped read-write to mark it superseded; `None` when there is
/// none. Anything else there is refused rather than overwritten.
fn previous_bus(path: &Path) -> Result<Option<Mapping>, BusError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BusError::io(path, "opening the existing bus file to supersede it")(e)),
    };
    let capacity = super::subscriber::check_file(path, &file).map_err(|e| match e {
        BusError::Foreign { path, field, offset, found, expected } => BusError::Foreign {
            expected: format!("{expected} (a file that is not a bus of this layout is not replaced: remove it)"),
            path,
            field,
            offset,
            found,
        },
        e => e,
    })?;
    // SAFETY: a shared mapping of a file we own; others may write it concurrently (an old
    // producer), which is why every access goes through `Mapping`'s atomics.
    let map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(BusError::io(path, "mapping"))?;
    Ok(Some(Mapping::new(MapKind::ReadWrite(map), capacity as usize)))
}

/// Sizes, allocates, touches, maps and fills in a new (not yet visible) bus file.
fn build(
    file: &File,
    path: &Path,
    capacity: u64,
    epoch: u64,
    mode: u32,
    opts: &PublisherOptions,
) -> Result<Mapping, BusError> {
    // Defeat a umask that would take the owner's bits; never add any others.
    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(BusError::io(path, "setting permissions"))?;
    let mut len = HEADER_LEN as u64 + capacity;
    if let Some(huge) = hugetlbfs_page(file) {
        len = len.div_ceil(huge) * huge;
    }
    file.set_len(len).map_err(BusError::io(path, "sizing"))?;
    // SAFETY: a shared mapping of the file just created, not yet visible to anyone else.
    let mut map = unsafe { memmap2::MmapMut::map_mut(file) }.map_err(BusError::io(path, "mapping"))?;
    // Allocate every page now (a full tmpfs fails here with ENOSPC, not later with SIGBUS in the
    // poll loop), from the publishing core when asked, so the pages land on its NUMA node.
    let allocate = |map: &mut memmap2::MmapMut| -> std::io::Result<()> {
        if let Some(cpu) = opts.first_touch_cpu {
            weir_hw::pin::pin_current_thread(cpu)?;
        }
        use std::os::fd::AsRawFd;
        // SAFETY: plain system call on an open descriptor.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            // Filesystems without fallocate still get their pages from the touch below.
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e);
            }
        }
        for page in map.chunks_mut(4096) {
            page[0] = 0;
        }
        Ok(())
    };
    match opts.first_touch_cpu {
        None => allocate(&mut map),
        Some(_) => std::thread::scope(|s| {
            s.spawn(|| allocate(&mut map))
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("touch thread panicked")))
        }),
    }
    .map_err(BusError::io(path, "allocating the ring's pages"))?;
    if opts.lock {
        map.lock().map_err(BusError::io(path, "mlock (raise RLIMIT_MEMLOCK, or run without --lock)"))?;
    }
    let mut mapping = Mapping::new(MapKind::ReadWrite(map), capacity as usize);
    let h = mapping.header_mut().expect("read-write mapping");
    h.magic = MAGIC;
    h.layout_version = LAYOUT_VERSION;
    h.dbn_version = DBN_VERSION;
    h.header_len = HEADER_LEN as u64;
    h.capacity = capacity;
    h.epoch = epoch;
    h.producer_pid = std::process::id();
    h.created_unix_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    h.heartbeat_interval_ns = opts.heartbeat_interval.as_nanos().min(u128::from(u64::MAX)) as u64;
    h.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
    h.state.store(STATE_LIVE, Ordering::Release);
    Ok(mapping)
}

/// The huge page size when `file` is on hugetlbfs (its size must be a multiple of it).
fn hugetlbfs_page(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into `st`, which outlives the call.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
    (rc == 0 && st.f_type as i64 == HUGETLBFS_MAGIC).then_some(st.f_bsize as u64)
}

/// Refuses a bus directory another user could write into (or that another user owns): its files
/// would not be ours to trust.
fn check_dir(dir: &Path) -> Result<(), BusError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(BusError::io(dir, "stat of the bus directory"))?;
    // SAFETY: geteuid cannot fail and has no side effects.
    let me = unsafe { libc::geteuid() };
    let sticky_shared = meta.mode() & 0o1000 != 0;
    if !sticky_shared && (meta.uid() != me || meta.mode() & 0o022 != 0) {
        return Err(BusError::Io {
            path: dir.to_owned(),
            what: "checking the bus directory",
            source: std::io::Error::other(format!(
                "owned by uid {} with mode {:o}: a bus directory must be ours and not writable by others \
                 (or sticky, like /dev/shm)",
                meta.uid(),
                meta.mode() & 0o7777
            )),
        });
    }
    Ok(())
}

/// An exclusive `flock` on `PATH.lock`, released when the file is dropped.
fn lock_name(path: &Path) -> Result<File, BusError> {
    use std::os::fd::AsRawFd;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock)
        .map_err(BusError::io(&lock, "opening the creation lock"))?;
    // SAFETY: flock on an open descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(BusError::io(&lock, "locking")(std::io::Error::last_os_error()));
    }
    Ok(file)
}
