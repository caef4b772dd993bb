//! The bus: DBN records fanned out to other processes through a shared-memory broadcast ring.
//!
//! ```text
//!  poll loop ── Publisher ──▶ /dev/shm/weir/NAME  (header page + ring) ◀── Subscriber (read-only map)
//!                 (one writer, O(1) per record,                         ◀── Subscriber ...
//!                  never waits for a reader)                            ◀── `weir tail`, `weir record`
//! ```
//!
//! - [`Publisher`] creates (or re-creates) the ring file, pre-faults it (optionally from the
//!   publishing core, optionally locked), and appends DBN records, each with a global 64-bit
//!   sequence. Re-creating bumps the file's epoch and marks the old file superseded.
//! - [`Subscriber`] maps the file read-only, joins at the tail (or the oldest record still in
//!   the ring), and reads records into an aligned buffer of its own, validated against the
//!   writer's intent so that a record overwritten while it was copied is thrown away, never
//!   delivered. A lapped subscriber resynchronises and the next [`Delivery`] says exactly how many
//!   records it missed. [`Subscriber::producer`] tells a live producer from a quiet, dead (stale
//!   heartbeat), finished or superseded one.
//! - The ring protocol itself is `weir_schedulers::queue::broadcast` (loom-checked, Miri-run);
//!   this module is the file around it: [`layout`] gives the byte offsets.
//!
//! Records are `dbn` v3 bytes exactly as a `.dbn` file holds them after its header, so a consumer
//! can hand them to anything that reads DBN; the symbols travel in-band as `SymbolMappingMsg`s.

pub mod layout;
mod publisher;
mod subscriber;

use std::path::{Path, PathBuf};

pub use publisher::{Publisher, PublisherOptions};
pub use subscriber::{
    Delivery, Next, ProducerInfo, ProducerState, Subscriber, SubscriberOptions, SubscriberStats, min_record_len,
};
pub use weir_schedulers::queue::broadcast::{Join, Resync};

/// The directory bus names live in unless they are paths: `$WEIR_BUS_DIR`, else `/dev/shm/weir`
/// (tmpfs).
pub fn default_dir() -> PathBuf {
    std::env::var_os("WEIR_BUS_DIR").map_or_else(|| PathBuf::from("/dev/shm/weir"), PathBuf::from)
}

/// A bus name to its file: a name without `/` lives in [`default_dir`]; anything else is a path.
pub fn resolve(name: &str) -> PathBuf {
    if name.contains('/') { PathBuf::from(name) } else { default_dir().join(name) }
}

/// Default data-area size: 64 MiB (about a million 64-byte records).
pub const DEFAULT_CAPACITY: u64 = 64 << 20;
/// Smallest data area a bus file may have.
pub const MIN_CAPACITY: u64 = 4096;
/// Largest data area a bus file may have (1 TiB).
pub const MAX_CAPACITY: u64 = 1 << 40;

/// What went wrong creating or opening a bus file: which file, and what about it.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A system call on the file failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a weir bus (or a damaged one): the field, where it is, what was found.
    #[error("{path}: not a weir bus file: {field} (offset {offset}) is {found}, expected {expected}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The header field.
        field: &'static str,
        /// Its byte offset.
        offset: usize,
        /// What the file holds there.
        found: String,
        /// What a bus file of this layout holds.
        expected: String,
    },
    /// A bad capacity was asked for.
    #[error("bus capacity {0} bytes: must be a power of two from 4096 to 2^40 (e.g. 67108864 for 64 MiB)")]
    Capacity(u64),
    /// The file does not exist (yet).
    #[error(
        "{0}: no such bus (is the producer running? `weir replay FILE --bus NAME` or `weir run ... --bus NAME` creates it)"
    )]
    Missing(PathBuf),
}

impl BusError {
    fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> BusError + use<> {
        let path = path.to_owned();
        move |source| BusError::Io { path, what, source }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the heartbeat's clock, the same in every process.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wakes every process waiting on the futex word at `word` (a shared mapping); returns how many
/// were woken.
fn futex_wake(word: &std::sync::atomic::AtomicU32) -> i64 {
    // SAFETY: FUTEX_WAKE only reads the address to find the waiters' key; the word lives in a
    // mapping that outlives the call.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, std::ptr::null::<libc::timespec>())
    }
}

/// Sleeps until the futex word at `word` is woken, stops holding `expected`, or `timeout` passes.
fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: FUTEX_WAIT reads the word (read-only access suffices: the kernel takes a read
    // reference for WAIT on a shared mapping) and sleeps; `ts` outlives the call.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts as *const libc::timespec);
    }
}

#[cfg(test)]
mod tests;
