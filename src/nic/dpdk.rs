//! The DPDK backend (feature `dpdk`): ports by name, zero-copy receive queues, transmit queues.
//!
//! ```text
//!   init_eal(args) ── once per process, on a parked thread of its own ("weir-eal")
//!        │
//!   Port::open("net_pcap0,rx_pcap=F" | "0000:3b:00.0", &PortConfig)
//!        │  vdev: rte_vdev_init (hot-plug) · PCI: probed by EAL (`-a BDF`), looked up by name
//!        │  mempool on the port's socket · configure · queue setup · start
//!        │  allmulticast · multicast MAC filter · rx timestamp dynfield
//!        ├── Port::rx(q) → DpdkRx  (RxQueue: mbufs lent in place, freed in bulk at the next burst)
//!        └── Port::tx(q) → DpdkTx  (TxQueue: frames copied into fresh mbufs)
//!   the last of Port / DpdkRx / DpdkTx to drop: stop · close · vdev uninit · mempool free
//! ```
//!
//! # The EAL
//!
//! DPDK's Environment Abstraction Layer can be initialised once per process: a second
//! `rte_eal_init` fails with `EALREADY` even after `rte_eal_cleanup`. [`init_eal`] runs it once,
//! behind a `OnceLock`, from a dedicated thread that then stays parked: `rte_eal_init` pins its
//! caller to the main lcore's CPU, which must not be a worker or a test thread that should roam.
//! Asking again with the same arguments, or with none, is a no-op; with different ones, an error
//! ([`DpdkError::EalMismatch`]). Empty arguments with no EAL running mean the [`TEST_PRESET`]: no
//! hugepages, no shared config (so several processes run side by side), no PCI scan.
//!
//! # Errors
//!
//! Control-plane failures are [`DpdkError`]s that name the DPDK call, the device as given and
//! `rte_strerror`'s text. Drivers often say why only in DPDK's log (`net_pcap`: "Couldn't open
//! FILE"), and some fail with no error code at all, so [`Port::open`] also keeps what DPDK logged
//! meanwhile (the log still reaches its usual stream) and quotes it in the error.
//!
//! # Threads and lcores
//!
//! weir's workers are its own threads, not EAL lcores. Mempool caches are per lcore, so a thread
//! without an lcore id allocates and frees straight from the pool's ring (correct, slower). The
//! first burst a thread runs registers it with `rte_thread_register` (an lcore id of its own,
//! given back when the thread exits); [`register_thread`] does the same eagerly and reports a
//! failure (all `RTE_MAX_LCORE` ids taken, or multi-process in use), which the automatic path
//! ignores. Registration does not change the thread's CPU affinity.
//!
//! # Receive timestamps
//!
//! Each frame's `rx_ns` comes, best first, from:
//!
//! - the NIC ([`TimestampSource::Nic`]), when the device advertises
//!   `RTE_ETH_RX_OFFLOAD_TIMESTAMP`: the offload is enabled and the stamp read from the
//!   `rte_dynfield_timestamp` dynamic field of each mbuf that carries the `rte_dynflag_rx_timestamp`
//!   flag. Its unit is the device clock: converted with a slope and offset fitted against the
//!   wall clock once, when the port starts, from two samples 20 ms apart. Each sample brackets a
//!   wall-clock read between two `rte_eth_read_clock`s (ticks, wall, ticks), the best of a few
//!   tries (the smallest round trip), and pairs the wall time with the ticks' midpoint. The fit
//!   is never redone, so the stamps drift from the wall clock as the port runs: by the slope's
//!   error (about the read round trip over 20 ms: 1 µs of uncertainty is 50 ppm, 50 µs per
//!   second), by the device oscillator's own drift against the host's, and by whatever NTP/PTP
//!   later does to the wall clock (slews, steps), none of which is followed. Good for intervals
//!   between frames of one port over short spans; not for absolute time long after the open.
//!   Not exercised without a NIC that stamps: the software devices do not advertise the offload.
//! - the capture ([`TimestampSource::Capture`]) for `net_pcap`: it registers the same dynamic
//!   field itself and stamps every packet with the pcap record's time, in **microseconds** since
//!   the epoch (`tv_sec * 1_000_000 + tv_usec`): it opens the file with libpcap's default
//!   microsecond precision (`pcap_open_offline`), so a nanosecond pcap comes out truncated to the
//!   µs. `tests/dpdk.rs` pins both cases.
//! - the host clock ([`TimestampSource::Host`]): one wall-clock read per burst.
//!
//! # Receive queues
//!
//! weir sets up no multi-queue steering yet: the device is configured with `mq_mode` NONE, no
//! RSS and no `rte_flow` rules, so a NIC delivers every frame to receive queue 0. Hence
//! [`open_rx`] (`--nic dpdk:DEVICE,queue=Q`) refuses any queue but 0, and [`Port::open`] refuses
//! `rx_queues > 1` unless [`PortConfig::unsteered_rx_queues`] says the caller knows (software
//! devices with a source per queue, such as `net_ring`, fill every queue).
//!
//! # Control calls and threads
//!
//! DPDK's ethdev control functions are not thread-safe. A port's control calls after the open
//! (`rte_eth_stats_get`, from [`Port::stats`] or any queue's [`RxQueue::stats`]) take a lock of
//! the port's; opening and closing (hot-plug, configure, stop, close, `rte_vdev_uninit`, the
//! mempool) run under one process-wide lock, which also keeps each open's log capture to its own
//! lines.
//!
//! # Statistics
//!
//! [`RxQueue::stats`] counts packets, bytes and bursts the queue delivered; `missed`,
//! `no_buffer` and `errors` are the port's `imissed`, `rx_nombuf` and `ierrors` (DPDK keeps them
//! per port, not per queue).

use std::ffi::{CStr, CString, c_char, c_int};
use std::fmt;
use std::net::Ipv4Addr;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::Duration;

use dpdk_sys as sys;

use super::spec::Group;
use super::{BURST, Frame, Framing, LinkType, QueueStats, RxQueue, TimestampSource, TxQueue, wall_ns};

/// EAL arguments for tests and machines without hugepages or a NIC: one lcore (CPU 0), 256 MB
/// of ordinary memory, no shared runtime files (any number of processes at once), no PCI scan,
/// no telemetry socket, EAL's banner hidden.
pub const TEST_PRESET: &[&str] =
    &["-l", "0", "--no-huge", "-m", "256", "--no-shconf", "--no-pci", "--no-telemetry", "--log-level=lib.eal:error"];

/// The EAL arguments of a named preset: `test` ([`TEST_PRESET`]). Production arguments depend on
/// the host (cores, hugepages, the NIC's PCI address) and are given in full.
pub fn eal_preset(name: &str) -> Option<Vec<String>> {
    match name {
        "test" => Some(TEST_PRESET.iter().map(|s| (*s).to_owned()).collect()),
        _ => None,
    }
}

/// A control-plane failure: which call, on which device, and DPDK's reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpdkError {
    /// `rte_eal_init` failed. The EAL cannot be retried in this process.
    #[error("rte_eal_init {args:?}: {text} (rte_errno {errno})")]
    EalInit {
        /// The arguments, program name excluded.
        args: Vec<String>,
        /// `rte_errno`.
        errno: i32,
        /// `rte_strerror(errno)`.
        text: String,
    },
    /// The EAL already runs with other arguments.
    #[error("the DPDK EAL already runs with {running:?}; cannot start it with {requested:?} (one EAL per process)")]
    EalMismatch {
        /// The arguments it was started with.
        running: Vec<String>,
        /// The arguments asked for now.
        requested: Vec<String>,
    },
    /// A DPDK call failed.
    #[error("{call} on {device:?}: {text} (errno {errno}){}", log_suffix(log))]
    Call {
        /// The function.
        call: &'static str,
        /// The device, as given.
        device: String,
        /// The error number (`rte_errno`, or the negated return value).
        errno: i32,
        /// `rte_strerror(errno)`.
        text: String,
        /// What DPDK logged while the port was being set up (the driver's own reason, often).
        log: String,
    },
    /// No port or vdev driver by that name.
    #[error("DPDK device {device:?} not found: {hint}")]
    NotFound {
        /// The device, as given.
        device: String,
        /// What was tried and what to do.
        hint: String,
    },
    /// A request the device cannot satisfy (queue out of range, queue already taken, ...).
    #[error("DPDK device {device:?}: {what}")]
    Invalid {
        /// The device, as given.
        device: String,
        /// What is wrong.
        what: String,
    },
    /// [`register_thread`] failed.
    #[error("register_thread on thread {thread}: {what}")]
    Thread {
        /// The thread's name, or its `ThreadId` if it has none.
        thread: String,
        /// `rte_errno` of a failed `rte_thread_register`; 0 if the EAL is not running.
        errno: i32,
        /// What is wrong.
        what: String,
    },
}

/// `; DPDK said: "line" | "line"` for a non-empty log.
fn log_suffix(log: &str) -> String {
    let lines: Vec<String> = log.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l:?}")).collect();
    if lines.is_empty() { String::new() } else { format!("; DPDK said: {}", lines.join(" | ")) }
}

/// `rte_strerror(errno)`.
fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated string, static
    // or in a thread-local buffer that stays valid until the thread's next call; it is copied out
    // before anything else runs on this thread.
    let s = unsafe { sys::rte_strerror(errno) };
    if s.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// `rte_errno` of this thread.
fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local integer; no preconditions.
    unsafe { sys::shim_errno() }
}

/// How a DPDK function reports a failure.
#[derive(Clone, Copy, Debug)]
enum Ret {
    /// A negative errno: `-EINVAL`, and -1 is `-EPERM`. The ethdev API (`rte_eth_*`), whose
    /// driver callbacks return negative errnos too.
    NegErrno,
    /// -1 (or NULL) with `rte_errno` set: `rte_thread_register`, `rte_pktmbuf_pool_create`,
    /// `rte_eal_init`.
    RteErrno,
    /// `rte_vdev_init`: a negative errno from the vdev bus (`-EEXIST`, `-EINVAL`, `-ENOMEM`), or
    /// whatever the driver's probe returned, and many drivers fail with a bare -1 (setting
    /// `rte_errno`, or not). -1 is read as such a bare failure: `rte_errno` if set, else no code.
    Mixed,
}

/// A [`DpdkError::Call`] from a failed call's return value `ret` (negative), read by its
/// convention. `rte_errno` was cleared before the call (see [`call`]).
fn call_err(call: &'static str, device: &str, ret: c_int, conv: Ret) -> DpdkError {
    let errno = match conv {
        Ret::NegErrno => -ret,
        Ret::RteErrno => rte_errno(),
        Ret::Mixed if ret == -1 => rte_errno(),
        Ret::Mixed => -ret,
    };
    let text = if errno == 0 { "failed, no error code given".to_owned() } else { strerror(errno) };
    DpdkError::Call { call, device: device.to_owned(), errno, text, log: String::new() }
}

/// Runs a DPDK call that returns 0 or more on success and fails as `conv` says.
fn call(name: &'static str, device: &str, conv: Ret, f: impl FnOnce() -> c_int) -> Result<c_int, DpdkError> {
    // SAFETY: writes this thread's rte_errno; no preconditions.
    unsafe { sys::shim_errno_clear() };
    let ret = f();
    if ret < 0 { Err(call_err(name, device, ret, conv)) } else { Ok(ret) }
}

// ---------------------------------------------------------------------------------------------
// EAL

struct Eal {
    args: Vec<String>,
    result: Result<(), DpdkError>,
}

/// The arguments and the outcome of this process's `rte_eal_init`, once it has been called
/// (successful or not: it cannot be called again either way).
static EAL: OnceLock<Eal> = OnceLock::new();

/// Serialises EAL starts. A start that fails before `rte_eal_init` runs (no thread) leaves
/// [`EAL`] unset, so a later call can try again.
static EAL_START: Mutex<()> = Mutex::new(());

/// Starts DPDK's EAL with `args` (program name excluded), once per process. Empty `args`: the EAL
/// that runs already, else one with the [`TEST_PRESET`].
///
/// Runs `rte_eal_init` on a thread of its own that stays parked for the life of the process (the
/// call pins its caller to the main lcore's CPU). Once `rte_eal_init` has run, later calls return
/// its result if they ask for the same arguments (or for none), [`DpdkError::EalMismatch`]
/// otherwise. A failure before it runs (an argument with a NUL, no thread for it) is returned
/// and not remembered: a corrected call can still start the EAL. EAL option errors are reported
/// by EAL on stderr as well; note that EAL exits the process on `--help`/`-h`.
pub fn init_eal(args: &[String]) -> Result<(), DpdkError> {
    if args.is_empty()
        && let Some(eal) = EAL.get()
    {
        return eal.result.clone();
    }
    if let Some(a) = args.iter().find(|a| a.contains('\0')) {
        return Err(DpdkError::EalInit {
            args: args.to_vec(),
            errno: libc::EINVAL,
            text: format!("argument {a:?} contains a NUL"),
        });
    }
    let requested: Vec<String> =
        if args.is_empty() { TEST_PRESET.iter().map(|s| (*s).to_owned()).collect() } else { args.to_vec() };
    let eal = match EAL.get() {
        Some(eal) => eal,
        None => {
            let _one = EAL_START.lock().unwrap_or_else(|e| e.into_inner());
            match EAL.get() {
                Some(eal) => eal,
                None => {
                    let result = start_eal(&requested)?;
                    EAL.get_or_init(|| Eal { args: requested.clone(), result })
                }
            }
        }
    };
    if eal.args != requested {
        return Err(DpdkError::EalMismatch { running: eal.args.clone(), requested });
    }
    eal.result.clone()
}

/// Runs `rte_eal_init` with `args` on a thread of its own. `Err`: it could not be called (nothing
/// happened); `Ok(result)`: what it returned, final for the process.
fn start_eal(args: &[String]) -> Result<Result<(), DpdkError>, DpdkError> {
    let eal_err = |errno: i32, text: String| DpdkError::EalInit { args: args.to_vec(), errno, text };
    let mut argv = Vec::with_capacity(args.len() + 1);
    for a in std::iter::once("weir").chain(args.iter().map(String::as_str)) {
        argv.push(CString::new(a).map_err(|_| eal_err(libc::EINVAL, format!("argument {a:?} contains a NUL")))?);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("weir-eal".into())
        .spawn(move || {
            // EAL keeps pointers into argv (and getopt permutes it): the strings and the array
            // are leaked on purpose, once per process.
            let argv: &mut [*mut c_char] = Vec::leak(argv.into_iter().map(CString::into_raw).collect());
            // SAFETY: argv holds argc valid, NUL-terminated, writable strings that live forever;
            // this is the only rte_eal_init call of the process: init_eal calls start_eal under
            // EAL_START only while EAL is unset, and sets EAL once this thread has answered.
            let rc = unsafe { sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
            let result = if rc < 0 {
                let errno = rte_errno();
                Err((errno, strerror(errno)))
            } else {
                // SAFETY: after a successful rte_eal_init, once per process. A failure only means
                // errors will not quote DPDK's log.
                unsafe { sys::shim_log_tee_install() };
                Ok(())
            };
            let ok = result.is_ok();
            let _ = tx.send(result);
            // The main lcore's thread stays: parked, it costs nothing, and nothing else gets
            // pinned to the main lcore's CPU. After a failure there is nothing to keep.
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .map_err(|e| eal_err(e.raw_os_error().unwrap_or(0), format!("spawning the EAL thread: {e}")))?;
    Ok(match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err((errno, text))) => Err(eal_err(errno, text)),
        // The thread started, so rte_eal_init was (being) called: final.
        Err(_) => Err(eal_err(0, "the EAL thread died during rte_eal_init".into())),
    })
}

// ---------------------------------------------------------------------------------------------
// Thread registration

/// Gives the thread's lcore id back when the thread exits.
struct Registered;

impl Drop for Registered {
    fn drop(&mut self) {
        // SAFETY: this thread registered itself (Registered is only created after a successful
        // rte_thread_register on it) and unregisters once, at thread exit.
        unsafe { sys::rte_thread_unregister() };
    }
}

thread_local! {
    static LCORE_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LCORE_GUARD: std::cell::RefCell<Option<Registered>> = const { std::cell::RefCell::new(None) };
}

/// Gives the calling thread an lcore id (`rte_thread_register`) unless it has one, so that its
/// mempool operations go through a per-lcore cache. The id is given back when the thread exits.
/// Queues do this on their first burst anyway; call it to see a failure (all `RTE_MAX_LCORE` ids
/// taken; multi-process in use), which the queues ignore. Needs the EAL ([`init_eal`]).
pub fn register_thread() -> Result<(), DpdkError> {
    // SAFETY: reads a thread-local; no preconditions.
    if unsafe { sys::shim_lcore_id() } != sys::LCORE_ID_ANY {
        LCORE_CHECKED.set(true);
        return Ok(());
    }
    let thread_err = |errno: i32, what: String| {
        let t = std::thread::current();
        let thread = t.name().map_or_else(|| format!("{:?}", t.id()), |n| format!("{n:?}"));
        DpdkError::Thread { thread, errno, what }
    };
    if EAL.get().is_none_or(|e| e.result.is_err()) {
        return Err(thread_err(0, "the DPDK EAL is not running (init_eal, or open a port, first)".into()));
    }
    // SAFETY: writes this thread's rte_errno; no preconditions.
    unsafe { sys::shim_errno_clear() };
    // SAFETY: the EAL is initialised (checked above); the thread has no lcore id (checked above), so
    // this does not leak one.
    let rc = unsafe { sys::rte_thread_register() };
    LCORE_CHECKED.set(true);
    if rc != 0 {
        // -1 with rte_errno set (ENOMEM: every lcore id taken; EINVAL: multi-process in use).
        let errno = rte_errno();
        let text = if errno == 0 { "failed, no error code given".to_owned() } else { strerror(errno) };
        return Err(thread_err(errno, format!("rte_thread_register: {text} (rte_errno {errno})")));
    }
    LCORE_GUARD.with_borrow_mut(|g| *g = Some(Registered));
    Ok(())
}

/// The calling thread's lcore id: `Some` on the EAL's main thread and on registered threads.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local; no preconditions.
    let id = unsafe { sys::shim_lcore_id() };
    (id != sys::LCORE_ID_ANY).then_some(id)
}

/// [`register_thread`] on a thread's first burst; failures leave the thread cache-less.
#[inline]
fn ensure_lcore() {
    if !LCORE_CHECKED.get() {
        let _ = register_thread();
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// How to set up a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (at least 1; at most what the device has). More than one needs
    /// [`unsteered_rx_queues`](Self::unsteered_rx_queues).
    pub rx_queues: u16,
    /// Allows `rx_queues > 1` although weir sets up no steering (no RSS, no `rte_flow` rules:
    /// `mq_mode` NONE). A NIC then delivers every frame to queue 0 and the others stay empty;
    /// software devices with a source per queue fill each (`net_ring`: queue q receives what its
    /// transmit queue q sent; `net_null`: every queue makes frames). Off: `rx_queues > 1` is a
    /// [`DpdkError::Invalid`], since multi-queue steering is not implemented yet.
    pub unsteered_rx_queues: bool,
    /// Transmit queues (capped at what the device has; 0 is allowed).
    pub tx_queues: u16,
    /// Receive descriptors per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// Transmit descriptors per queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// Mbufs in the port's pool. `None`: l2fwd's sizing, `max(rx + tx descriptors + BURST + 4
    /// lcore caches, 8192)` rounded to 2^q − 1 (8191 mbufs, about 19 MB, for the defaults).
    pub mbufs: Option<u32>,
    /// Multicast groups to admit: their MACs go to the device's multicast filter.
    pub groups: Vec<Group>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            unsteered_rx_queues: false,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mbufs: None,
            groups: Vec::new(),
        }
    }
}

/// Port-wide counters (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device: receive ring full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive buffer allocation failures.
    pub rx_nombuf: u64,
}

/// How a port's receive timestamps are read.
#[derive(Clone, Copy, Debug)]
enum Stamps {
    /// None: host clock per burst.
    Host,
    /// net_pcap: µs since the epoch in the timestamp dynfield.
    PcapMicros { offset: usize, flag: u64 },
    /// A NIC: device ticks in the timestamp dynfield, mapped to wall-clock ns.
    NicTicks { offset: usize, flag: u64, ticks0: u64, ns0: i64, ns_per_tick: f64 },
}

impl Stamps {
    fn source(&self) -> TimestampSource {
        match self {
            Stamps::Host => TimestampSource::Host,
            Stamps::PcapMicros { .. } => TimestampSource::Capture,
            Stamps::NicTicks { .. } => TimestampSource::Nic,
        }
    }
}

/// Ports this process has open (ids), so that no port is configured twice.
static OPEN_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// Serialises [`Port::open`].
static OPEN_LOCK: Mutex<()> = Mutex::new(());

/// Pool names must be unique in the process.
static POOL_SEQ: AtomicU32 = AtomicU32::new(0);

struct PortInner {
    id: u16,
    /// As given (`net_pcap0,rx_pcap=F`), for errors and names.
    device: String,
    /// The ethdev name (`net_pcap0`, `0000:3b:00.0`).
    name: String,
    /// Created by us with rte_vdev_init: uninit on close.
    hotplugged: bool,
    driver: String,
    socket: c_int,
    pool: NonNull<sys::rte_mempool>,
    pool_size: u32,
    rx_queues: u16,
    tx_queues: u16,
    stamps: Stamps,
    notes: Vec<String>,
    /// Queues lent out, so that none is polled by two owners.
    rx_taken: Mutex<Vec<bool>>,
    tx_taken: Mutex<Vec<bool>>,
    /// Held across every ethdev control call on this port made through `&PortInner` (ethdev's
    /// control path is not thread-safe; some PMDs' counters are clear-on-read registers).
    ctl: Mutex<()>,
}

// SAFETY: the only non-Send/Sync field is the mempool pointer. A mempool is shared, thread-safe DPDK
// state (its ring is multi-producer/multi-consumer; caches are per lcore, chosen by the calling
// thread's lcore id); PortInner only passes the pointer to DPDK calls and frees it once, in Drop,
// when no queue holds the port any more. Everything else is owned data or behind a Mutex.
unsafe impl Send for PortInner {}
// SAFETY: what a shared reference can do: read plain fields, lock the Mutexes, count the pool's
// mbufs (rte_mempool_in_use_count only reads the ring's and caches' counts: thread-safe, if
// approximate) and call rte_eth_stats_get, the one ethdev control call made through &PortInner,
// always with `ctl` held (port_stats), so no two threads run a control call on this port at
// once. The others (configure, queue setup, start, stop, close) run only in Port::open, before
// the PortInner exists, and in Drop, with `&mut self`; both under OPEN_LOCK. The data path
// (rx/tx burst on a queue) is not a control call and needs only one caller per queue, which
// Port::rx/tx ensure.
unsafe impl Sync for PortInner {}

impl fmt::Debug for PortInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("device", &self.device)
            .field("driver", &self.driver)
            .field("socket", &self.socket)
            .field("pool_size", &self.pool_size)
            .field("rx_queues", &self.rx_queues)
            .field("tx_queues", &self.tx_queues)
            .field("timestamps", &self.stamps.source())
            .field("notes", &self.notes)
            .finish()
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // Stop, close and uninit are control calls and a hot-unplug: not alongside another open
        // (hot-plug, and its log capture, which would take in this close's lines).
        let _one = OPEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the port was configured and started by Port::open and no queue is left (each holds
        // an Arc to this); stop and close are control calls on a valid port id, serialised with every
        // other open and close by OPEN_LOCK and with nothing else on this port (`&mut self`).
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
        if self.hotplugged
            && let Ok(name) = CString::new(self.name.as_str())
        {
            // SAFETY: a valid C string naming the vdev this port created.
            unsafe { sys::rte_vdev_uninit(name.as_ptr()) };
        }
        // SAFETY: the pool was created by Port::open; the port that filled its rings from it is
        // closed and every mbuf lent to a queue has been freed (the queues are gone).
        unsafe { sys::rte_mempool_free(self.pool.as_ptr()) };
        if let Ok(mut open) = OPEN_PORTS.lock() {
            open.retain(|&p| p != self.id);
        }
    }
}

/// An open, started DPDK port. Cheap to clone; the device is stopped, closed and (a hot-plugged
/// vdev) removed, and its mempool freed, when the last `Port`, [`DpdkRx`] and [`DpdkTx`] of it
/// are dropped. A closed PCI port cannot be reopened in the same process.
#[derive(Clone, Debug)]
pub struct Port {
    inner: Arc<PortInner>,
}

/// Opens a port: see [`Port::open`].
pub fn open_port(device: &str, config: &PortConfig, eal_args: &[String]) -> Result<Port, DpdkError> {
    Port::open(device, config, eal_args)
}

/// Opens `device` with one receive and one transmit queue, admits `groups`, and returns the
/// receive queue: what `--nic dpdk:DEVICE[,queue=0],group=...` asks for. `eal_args` empty: the
/// running EAL, else the [`TEST_PRESET`] (see [`init_eal`]). The port lives as long as the queue.
///
/// `queue` must be 0: weir has no multi-queue steering yet (no RSS, no `rte_flow` rules), so on a
/// NIC every frame lands on queue 0 and any other queue would silently receive nothing. Any
/// other queue is a [`DpdkError::Invalid`], before anything is opened.
pub fn open_rx(device: &str, queue: u16, groups: &[Group], eal_args: &[String]) -> Result<DpdkRx, DpdkError> {
    if queue != 0 {
        return Err(DpdkError::Invalid {
            device: device.to_owned(),
            what: format!(
                "queue={queue}: multi-queue steering (RSS / rte_flow rules) is not implemented yet, so a NIC \
                 would deliver every frame to queue 0 and queue {queue} would stay empty; use queue=0"
            ),
        });
    }
    let config = PortConfig { groups: groups.to_vec(), ..PortConfig::default() };
    Port::open(device, &config, eal_args)?.rx(0)
}

/// The group's multicast MAC: `01:00:5e` + the low 23 bits of the address (RFC 1112 §6.4).
pub fn mcast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

fn port_by_name(name: &CStr) -> Option<u16> {
    let mut id = 0u16;
    // SAFETY: a valid C string and a valid out-pointer.
    let rc = unsafe { sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) };
    (rc == 0).then_some(id)
}

/// Closes a half-set-up port on an error path (the Drop of PortInner does it for a finished one).
/// It lives inside `Port::open_locked`, so it drops with [`OPEN_LOCK`] held: `_open` borrows the
/// guard to make that a fact of the types (taking the lock again here would deadlock).
struct Unwind<'a> {
    _open: &'a MutexGuard<'static, ()>,
    id: Option<u16>,
    vdev: Option<CString>,
    pool: *mut sys::rte_mempool,
    claimed: Option<u16>,
}

impl Unwind<'_> {
    /// The open succeeded: nothing to undo.
    fn disarm(&mut self) {
        self.id = None;
        self.vdev = None;
        self.pool = ptr::null_mut();
        self.claimed = None;
    }
}

impl Drop for Unwind<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // SAFETY: control calls on a valid port id, under OPEN_LOCK (`_open`) and on a port no
            // one else has yet; stop/close of a port that was never started or configured is
            // harmless (they return an error code, ignored here).
            unsafe {
                sys::rte_eth_dev_stop(id);
                sys::rte_eth_dev_close(id);
            }
        }
        if let Some(v) = &self.vdev {
            // SAFETY: a valid C string naming the vdev created by this open; under OPEN_LOCK.
            unsafe { sys::rte_vdev_uninit(v.as_ptr()) };
        }
        if !self.pool.is_null() {
            // SAFETY: the pool was created by this open and its port is closed.
            unsafe { sys::rte_mempool_free(self.pool) };
        }
        if let Some(id) = self.claimed
            && let Ok(mut open) = OPEN_PORTS.lock()
        {
            open.retain(|&p| p != id);
        }
    }
}

impl Port {
    /// Opens `device`, starting the EAL with `eal_args` if it is not running (see [`init_eal`]).
    ///
    /// `device` is a vdev spec, `net_xxx[,key=value...]`, hot-plugged with `rte_vdev_init` (the
    /// name is the part before the first comma and must start with a driver's name, e.g.
    /// `net_pcap_feed1,rx_pcap=F`), or the name of a port EAL already has: a PCI address probed
    /// with `-a BDF` in the EAL arguments, a vdev created with `--vdev`. Then: a mempool on the
    /// port's NUMA socket, configure, queue setup, start, allmulticast, the groups' MACs in the
    /// multicast filter (refusals by devices that deliver every frame anyway, `ENOTSUP`, are kept
    /// in [`Port::notes`]), and the receive timestamp source (see the module docs).
    pub fn open(device: &str, config: &PortConfig, eal_args: &[String]) -> Result<Port, DpdkError> {
        init_eal(eal_args)?;
        // One open at a time: hot-plug and the log capture are process-wide.
        let one = OPEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: no preconditions; captures are serialised by OPEN_LOCK.
        unsafe { sys::shim_log_capture_begin() };
        let result = Self::open_locked(device, config, &one);
        let mut buf = vec![0u8; 4096];
        // SAFETY: `buf` has room for buf.len() bytes.
        let n = unsafe { sys::shim_log_capture_end(buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(n);
        result.map_err(|mut e| {
            if let DpdkError::Call { log, .. } = &mut e {
                *log = String::from_utf8_lossy(&buf).into_owned();
            }
            e
        })
    }

    /// [`Port::open`]'s work, with `open` (the [`OPEN_LOCK`] guard) held.
    fn open_locked(device: &str, config: &PortConfig, open: &MutexGuard<'static, ()>) -> Result<Port, DpdkError> {
        let invalid = |what: String| DpdkError::Invalid { device: device.to_owned(), what };
        if config.rx_queues == 0 {
            return Err(invalid("rx_queues must be at least 1".into()));
        }
        if config.rx_queues > 1 && !config.unsteered_rx_queues {
            return Err(invalid(format!(
                "{} receive queues: multi-queue steering (RSS / rte_flow rules) is not implemented yet, so a \
                 NIC would deliver every frame to queue 0; use one receive queue (or set \
                 PortConfig::unsteered_rx_queues to take that as it is)",
                config.rx_queues
            )));
        }
        let (name, dev_args) = match device.split_once(',') {
            Some((n, a)) => (n, Some(a)),
            None => (device, None),
        };
        if name.is_empty() {
            return Err(invalid("empty device name".into()));
        }
        let name = weir_hw::pci::full_pci_address(name);
        let c_name = CString::new(name.as_str()).map_err(|_| invalid("device name contains a NUL".into()))?;
        let mut unwind = Unwind { _open: open, id: None, vdev: None, pool: ptr::null_mut(), claimed: None };

        // The port: an existing one by name, or a vdev hot-plugged now.
        let existing = if dev_args.is_none() { port_by_name(&c_name) } else { None };
        let (id, hotplugged) = match existing {
            Some(id) => (id, false),
            None if weir_hw::pci::is_pci_address(&name) => {
                return Err(DpdkError::NotFound {
                    device: device.to_owned(),
                    hint: format!(
                        "no port {name} (a PCI device must be bound to a DPDK-capable driver and given to EAL \
                         with `-a {name}`; the EAL arguments must not say --no-pci)"
                    ),
                });
            }
            None => {
                let not_found = || DpdkError::NotFound {
                    device: device.to_owned(),
                    hint: format!(
                        "no port named {name:?} and no vdev driver whose name starts it (vdevs look like \
                         net_pcap0,rx_pcap=FILE or net_null0; a PCI device is given by its address)"
                    ),
                };
                // SAFETY: a valid C string.
                if unsafe { sys::shim_vdev_driver_known(c_name.as_ptr()) } == 0 {
                    return Err(not_found());
                }
                let c_args = CString::new(dev_args.unwrap_or(""))
                    .map_err(|_| invalid("device arguments contain a NUL".into()))?;
                // SAFETY: two valid C strings; DPDK copies what it keeps.
                let rc = call("rte_vdev_init", device, Ret::Mixed, || unsafe {
                    sys::rte_vdev_init(c_name.as_ptr(), c_args.as_ptr())
                })
                .map_err(|mut e| {
                    if let DpdkError::Call { errno: 0, text, .. } = &mut e {
                        *text = "the driver refused the device or its arguments (no error code given)".into();
                    }
                    e
                })?;
                if rc > 0 {
                    // The bus found a driver by name but none probed the device.
                    return Err(not_found());
                }
                unwind.vdev = Some(c_name.clone());
                let id = port_by_name(&c_name).ok_or_else(|| DpdkError::NotFound {
                    device: device.to_owned(),
                    hint: format!(
                        "rte_vdev_init created {name:?} but no ethdev port has that name (not a NIC driver?)"
                    ),
                })?;
                (id, true)
            }
        };
        {
            let mut open = OPEN_PORTS.lock().unwrap_or_else(|e| e.into_inner());
            if open.contains(&id) {
                return Err(invalid(format!("port {id} ({name}) is already open in this process")));
            }
            open.push(id);
        }
        unwind.claimed = Some(id);

        // What the device can do.
        // SAFETY: rte_eth_dev_info is plain data (integers and pointers); all-zero is how DPDK's
        // own examples initialise it before rte_eth_dev_info_get fills it.
        let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id and out-pointer.
        call("rte_eth_dev_info_get", device, Ret::NegErrno, || unsafe { sys::rte_eth_dev_info_get(id, &mut info) })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: non-null driver_name points at the driver's static NUL-terminated name.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        if config.rx_queues > info.max_rx_queues {
            return Err(invalid(format!(
                "asked for {} receive queue(s) (queue {}), the device ({driver}) has {}",
                config.rx_queues,
                config.rx_queues - 1,
                info.max_rx_queues
            )));
        }
        let tx_queues = config.tx_queues.min(info.max_tx_queues);
        let hw_stamps = info.rx_offload_capa & sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP != 0;

        // SAFETY: plain data; all-zero is DPDK's documented default configuration (examples
        // memset it).
        let mut conf: sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        if hw_stamps {
            conf.rxmode.offloads |= sys::RTE_ETH_RX_OFFLOAD_TIMESTAMP;
        }
        if info.tx_offload_capa & sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS != 0 {
            conf.txmode.offloads |= sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        }
        unwind.id = Some(id);
        // SAFETY: valid port id, queue counts within the device's maxima, a valid conf.
        call("rte_eth_dev_configure", device, Ret::NegErrno, || unsafe {
            sys::rte_eth_dev_configure(id, config.rx_queues, tx_queues, &conf)
        })?;
        let (mut nb_rxd, mut nb_txd) = (config.rx_desc.max(1), config.tx_desc.max(1));
        // SAFETY: valid port id and out-pointers.
        call("rte_eth_dev_adjust_nb_rx_tx_desc", device, Ret::NegErrno, || unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rxd, &mut nb_txd)
        })?;

        // The pool, on the port's socket.
        // SAFETY: valid port id.
        let socket = match unsafe { sys::rte_eth_dev_socket_id(id) } {
            s if s < 0 => sys::SOCKET_ID_ANY,
            s => s,
        };
        let pool_size = config.mbufs.unwrap_or_else(|| {
            let want = u32::from(config.rx_queues) * u32::from(nb_rxd)
                + u32::from(tx_queues) * u32::from(nb_txd)
                + BURST as u32
                + 4 * 256;
            want.max(8192).next_power_of_two() - 1
        });
        let cache = (pool_size / 8).min(256);
        let pool_name = format!("weir{id}_{}", POOL_SEQ.fetch_add(1, Ordering::Relaxed));
        let c_pool = CString::new(pool_name).expect("no NUL");
        // SAFETY: writes this thread's rte_errno.
        unsafe { sys::shim_errno_clear() };
        // SAFETY: a valid C string; sizes within DPDK's limits (cache ≤ 256 ≤ RTE_MEMPOOL_CACHE_MAX_SIZE
        // and ≤ n / 8 < n / 1.5).
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(c_pool.as_ptr(), pool_size, cache, 0, sys::RTE_MBUF_DEFAULT_BUF_SIZE, socket)
        };
        if pool.is_null() {
            return Err(call_err("rte_pktmbuf_pool_create", device, -1, Ret::RteErrno));
        }
        unwind.pool = pool;
        for q in 0..config.rx_queues {
            // SAFETY: valid port id and queue (< configured count), null rxconf = the device's
            // defaults, a valid pool that outlives the port (freed after close).
            call("rte_eth_rx_queue_setup", device, Ret::NegErrno, || unsafe {
                sys::rte_eth_rx_queue_setup(id, q, nb_rxd, socket as u32, ptr::null(), pool)
            })?;
        }
        for q in 0..tx_queues {
            // SAFETY: as above, null txconf = the device's defaults.
            call("rte_eth_tx_queue_setup", device, Ret::NegErrno, || unsafe {
                sys::rte_eth_tx_queue_setup(id, q, nb_txd, socket as u32, ptr::null())
            })?;
        }
        // SAFETY: a configured port with every queue set up.
        call("rte_eth_dev_start", device, Ret::NegErrno, || unsafe { sys::rte_eth_dev_start(id) })?;

        // Multicast: allmulticast is the safety net (a full or missing MAC filter still delivers);
        // the filter is what a NIC that refuses allmulticast needs.
        let mut notes = Vec::new();
        let enotsup = -libc::ENOTSUP;
        // SAFETY: a started port.
        match unsafe { sys::rte_eth_allmulticast_enable(id) } {
            0 => {}
            rc if rc == enotsup => notes.push(format!("{driver}: allmulticast not supported")),
            rc => return Err(call_err("rte_eth_allmulticast_enable", device, rc, Ret::NegErrno)),
        }
        if !config.groups.is_empty() {
            let mut macs: Vec<sys::rte_ether_addr> = Vec::new();
            for g in &config.groups {
                let addr_bytes = mcast_mac(g.addr);
                if !macs.iter().any(|m| m.addr_bytes == addr_bytes) {
                    macs.push(sys::rte_ether_addr { addr_bytes });
                }
            }
            // SAFETY: a valid port and an array of `macs.len()` addresses (DPDK copies them).
            match unsafe { sys::rte_eth_dev_set_mc_addr_list(id, macs.as_mut_ptr(), macs.len() as u32) } {
                0 => {}
                rc if rc == enotsup => notes.push(format!(
                    "{driver}: no multicast MAC filter (set_mc_addr_list: ENOTSUP): every frame is delivered"
                )),
                rc => return Err(call_err("rte_eth_dev_set_mc_addr_list", device, rc, Ret::NegErrno)),
            }
        }

        let stamps = timestamps(id, &driver, hw_stamps, &mut notes);
        unwind.disarm();
        Ok(Port {
            inner: Arc::new(PortInner {
                id,
                device: device.to_owned(),
                name,
                hotplugged,
                driver,
                socket,
                // SAFETY: checked non-null above.
                pool: unsafe { NonNull::new_unchecked(pool) },
                pool_size,
                rx_queues: config.rx_queues,
                tx_queues,
                stamps,
                notes,
                rx_taken: Mutex::new(vec![false; usize::from(config.rx_queues)]),
                tx_taken: Mutex::new(vec![false; usize::from(tx_queues)]),
                ctl: Mutex::new(()),
            }),
        })
    }

    /// Receive queue `queue`, for one owner at a time (an error while another [`DpdkRx`] has it).
    pub fn rx(&self, queue: u16) -> Result<DpdkRx, DpdkError> {
        take(&self.inner, &self.inner.rx_taken, "receive", queue)?;
        Ok(DpdkRx {
            name: format!("dpdk:{}/{queue}", self.inner.name),
            port: self.inner.clone(),
            queue,
            mbufs: [ptr::null_mut(); BURST],
            n: 0,
            data: [(ptr::null(), 0); BURST],
            rx_ns: [0; BURST],
            ts_source: [TimestampSource::Host; BURST],
            linear: Vec::new(),
            stats: QueueStats::default(),
        })
    }

    /// Transmit queue `queue`, for one owner at a time.
    pub fn tx(&self, queue: u16) -> Result<DpdkTx, DpdkError> {
        take(&self.inner, &self.inner.tx_taken, "transmit", queue)?;
        Ok(DpdkTx { port: self.inner.clone(), queue, sent: 0 })
    }

    /// The ethdev port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The ethdev name (`net_pcap0`, `0000:3b:00.0`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The driver (`net_pcap`, `net_ice`, ...).
    pub fn driver(&self) -> &str {
        &self.inner.driver
    }

    /// The NUMA socket the port's pool and queues are on (-1: any).
    pub fn socket(&self) -> i32 {
        self.inner.socket
    }

    /// Receive queues configured.
    pub fn rx_queues(&self) -> u16 {
        self.inner.rx_queues
    }

    /// Transmit queues configured.
    pub fn tx_queues(&self) -> u16 {
        self.inner.tx_queues
    }

    /// Where receive timestamps come from when the device stamps a frame (else [`TimestampSource::Host`]).
    pub fn timestamps(&self) -> TimestampSource {
        self.inner.stamps.source()
    }

    /// Things set up differently than asked, without failing (a device without a multicast filter).
    pub fn notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// Mbufs in the port's pool.
    pub fn mbufs(&self) -> u32 {
        self.inner.pool_size
    }

    /// Mbufs out of the pool now: in receive rings, lent to a queue's burst, or in flight on
    /// transmit (mbufs in per-lcore caches count as free). A control-path call.
    pub fn mbufs_in_use(&self) -> u32 {
        // SAFETY: a live pool (freed only when the last holder of PortInner drops).
        unsafe { sys::rte_mempool_in_use_count(self.inner.pool.as_ptr()) }
    }

    /// Port-wide counters (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        port_stats(&self.inner)
    }
}

fn take(port: &PortInner, taken: &Mutex<Vec<bool>>, dir: &str, queue: u16) -> Result<(), DpdkError> {
    let mut taken = taken.lock().unwrap_or_else(|e| e.into_inner());
    let invalid = |what: String| DpdkError::Invalid { device: port.device.clone(), what };
    match taken.get_mut(usize::from(queue)) {
        None => Err(invalid(format!("{dir} queue {queue}: the port has {} {dir} queue(s)", taken.len()))),
        Some(true) => Err(invalid(format!("{dir} queue {queue} is already in use"))),
        Some(slot) => {
            *slot = true;
            Ok(())
        }
    }
}

fn give_back(taken: &Mutex<Vec<bool>>, queue: u16) {
    let mut taken = taken.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(slot) = taken.get_mut(usize::from(queue)) {
        *slot = false;
    }
}

fn port_stats(port: &PortInner) -> Result<PortStats, DpdkError> {
    // SAFETY: plain integers; all-zero is valid.
    let mut s: sys::rte_eth_stats = unsafe { std::mem::zeroed() };
    let _ctl = port.ctl.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: a valid, started port id and a valid out-pointer; `ctl` is held, so no other control
    // call runs on this port meanwhile (see the Sync impl of PortInner).
    call("rte_eth_stats_get", &port.device, Ret::NegErrno, || unsafe { sys::rte_eth_stats_get(port.id, &mut s) })?;
    Ok(PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// The receive timestamp source of a started port (see the module docs).
fn timestamps(id: u16, driver: &str, hw_stamps: bool, notes: &mut Vec<String>) -> Stamps {
    // SAFETY: valid C strings from the headers; a null params pointer is allowed.
    let offset = unsafe {
        sys::rte_mbuf_dynfield_lookup(sys::RTE_MBUF_DYNFIELD_TIMESTAMP_NAME.as_ptr().cast(), ptr::null_mut())
    };
    // SAFETY: as above.
    let bit = unsafe {
        sys::rte_mbuf_dynflag_lookup(sys::RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME.as_ptr().cast(), ptr::null_mut())
    };
    if offset < 0 || !(0..64).contains(&bit) {
        if hw_stamps {
            notes.push(format!("{driver}: timestamp offload on, but no timestamp dynfield registered: host stamps"));
        }
        return Stamps::Host;
    }
    let (offset, flag) = (offset as usize, 1u64 << bit);
    if driver == "net_pcap" {
        return Stamps::PcapMicros { offset, flag };
    }
    if !hw_stamps {
        return Stamps::Host;
    }
    // Device clock → wall clock: two samples 20 ms apart give the slope, once (see the module
    // docs on drift). A sample is a wall-clock read bracketed by two device-clock reads, paired
    // with their midpoint; of a few tries, the one with the smallest round trip.
    let sample = || {
        let read = || {
            let mut t = 0u64;
            // SAFETY: a valid, started port id (not shared yet: no other control call can run on
            // it) and a valid out-pointer.
            let rc = unsafe { sys::rte_eth_read_clock(id, &mut t) };
            (rc == 0).then_some(t)
        };
        let mut best: Option<(u64, u64, i64)> = None; // (round trip, midpoint ticks, wall ns)
        for _ in 0..5 {
            let t0 = read()?;
            let ns = wall_ns();
            let t1 = read()?;
            let Some(trip) = t1.checked_sub(t0) else { continue };
            if best.is_none_or(|(b, _, _)| trip < b) {
                best = Some((trip, t0 + trip / 2, ns));
            }
        }
        best.map(|(_, ticks, ns)| (ticks, ns))
    };
    let Some((ticks0, ns0)) = sample() else {
        notes.push(format!("{driver}: rx timestamps, but rte_eth_read_clock fails or runs backwards: host stamps"));
        return Stamps::Host;
    };
    std::thread::sleep(Duration::from_millis(20));
    match sample() {
        Some((ticks1, ns1)) if ticks1 > ticks0 && ns1 > ns0 => {
            Stamps::NicTicks { offset, flag, ticks0, ns0, ns_per_tick: (ns1 - ns0) as f64 / (ticks1 - ticks0) as f64 }
        }
        _ => {
            notes.push(format!("{driver}: rx timestamps, but the device clock does not advance: host stamps"));
            Stamps::Host
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receive

/// A DPDK receive queue: [`RxQueue`] over `rte_eth_rx_burst`.
///
/// The frames of a burst are the mbufs' own bytes, lent in place; the burst's mbufs go back to
/// the pool in one `rte_pktmbuf_free_bulk` when the next burst starts, or when the queue is
/// dropped. A frame that spans several mbufs (a jumbo frame on a scattering device) is the
/// exception: it is copied into one buffer of the queue's.
pub struct DpdkRx {
    port: Arc<PortInner>,
    queue: u16,
    name: String,
    /// The current burst's mbufs: `mbufs[..n]` are this queue's until the next burst.
    mbufs: [*mut sys::rte_mbuf; BURST],
    n: usize,
    /// Each frame's bytes (into its mbuf, or into `linear`).
    data: [(*const u8, usize); BURST],
    rx_ns: [i64; BURST],
    ts_source: [TimestampSource; BURST],
    /// Multi-segment frames of the current burst, copied whole.
    linear: Vec<u8>,
    stats: QueueStats,
}

// SAFETY: DpdkRx owns its raw pointers exclusively: `mbufs[..n]` are the mbufs of its last burst
// (no one else has them until they are freed), `data` points into those mbufs or into its own
// `linear`, and its receive queue is polled by no one else (Port::rx lends each queue once). DPDK
// ties neither a queue nor an mbuf to a thread: rte_eth_rx_burst only forbids concurrent calls on
// one queue, an mbuf may be freed from any thread, and the per-lcore mempool cache is picked from
// the *calling* thread's lcore id at each call, so moving the queue between threads moves no
// thread-bound state. It is not Sync (raw pointers): `&DpdkRx` stays on one thread.
unsafe impl Send for DpdkRx {}

impl fmt::Debug for DpdkRx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpdkRx")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("burst", &self.n)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DpdkRx {
    /// The port this queue belongs to.
    pub fn port(&self) -> Port {
        Port { inner: self.port.clone() }
    }

    /// The queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Gives the current burst's mbufs back to their pool.
    #[inline]
    fn release(&mut self) {
        if self.n > 0 {
            // SAFETY: `mbufs[..n]` are valid mbufs this queue received and still owns; each is
            // freed once (n is reset) and no frame borrows them any more (`&mut self`).
            unsafe { sys::rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.n as u32) };
            self.n = 0;
        }
    }
}

impl Drop for DpdkRx {
    fn drop(&mut self) {
        self.release();
        give_back(&self.port.rx_taken, self.queue);
    }
}

impl RxQueue for DpdkRx {
    #[inline]
    #[allow(clippy::needless_range_loop, reason = "frame i's state is in five parallel arrays")]
    fn rx_burst(&mut self) -> usize {
        self.release();
        ensure_lcore();
        // SAFETY: a started port and a queue of it that only this DpdkRx polls; room for BURST
        // mbuf pointers.
        let n =
            usize::from(unsafe { sys::shim_rx_burst(self.port.id, self.queue, self.mbufs.as_mut_ptr(), BURST as u16) });
        self.n = n;
        if n == 0 {
            self.stats.empty_polls += 1;
            return 0;
        }
        self.stats.bursts += 1;
        let stamps = self.port.stamps;
        let mut host = None;
        let mut bytes = 0u64;
        // Frames copied into `linear` (bit i: frame i), at `linear_at[i]`.
        let mut multi = 0u64;
        let mut linear_at = [0usize; BURST];
        self.linear.clear();
        for i in 0..n {
            // SAFETY: rx_burst filled mbufs[..n] with valid mbufs, now owned by this queue.
            let m = unsafe { &*self.mbufs[i] };
            bytes += u64::from(m.pkt_len);
            if m.nb_segs <= 1 {
                // SAFETY: a single-segment mbuf's data is data_len bytes at buf_addr + data_off
                // (rte_pktmbuf_mtod), inside its buffer.
                let p = unsafe { m.buf_addr.cast::<u8>().cast_const().add(usize::from(m.data_off)) };
                self.data[i] = (p, usize::from(m.data_len));
            } else {
                multi |= 1 << i;
                linear_at[i] = self.linear.len();
                let mut seg: *const sys::rte_mbuf = m;
                while !seg.is_null() {
                    // SAFETY: a valid segment of the chain, which ends with a null `next`.
                    let s = unsafe { &*seg };
                    // SAFETY: as for a single segment: data_len bytes at buf_addr + data_off.
                    let part = unsafe {
                        std::slice::from_raw_parts(
                            s.buf_addr.cast::<u8>().cast_const().add(usize::from(s.data_off)),
                            usize::from(s.data_len),
                        )
                    };
                    self.linear.extend_from_slice(part);
                    seg = s.next;
                }
                self.data[i] = (ptr::null(), self.linear.len() - linear_at[i]);
            }
            let stamped = match stamps {
                Stamps::Host => None,
                Stamps::PcapMicros { offset, flag } => (m.ol_flags & flag != 0).then(|| {
                    // SAFETY: the timestamp dynfield, a u64, lies at `offset` inside every mbuf.
                    let us = unsafe { ptr::read_unaligned(ptr::from_ref(m).cast::<u8>().add(offset).cast::<u64>()) };
                    (us as i64 * 1000, TimestampSource::Capture)
                }),
                Stamps::NicTicks { offset, flag, ticks0, ns0, ns_per_tick } => (m.ol_flags & flag != 0).then(|| {
                    // SAFETY: as above.
                    let t = unsafe { ptr::read_unaligned(ptr::from_ref(m).cast::<u8>().add(offset).cast::<u64>()) };
                    (ns0 + (t.wrapping_sub(ticks0) as i64 as f64 * ns_per_tick) as i64, TimestampSource::Nic)
                }),
            };
            (self.rx_ns[i], self.ts_source[i]) =
                stamped.unwrap_or_else(|| (*host.get_or_insert_with(wall_ns), TimestampSource::Host));
        }
        // `linear` has stopped growing: point the copied frames into it.
        while multi != 0 {
            let i = multi.trailing_zeros() as usize;
            multi &= multi - 1;
            // SAFETY: linear_at[i] + data[i].1 ≤ linear.len() (the frame was appended there).
            self.data[i].0 = unsafe { self.linear.as_ptr().add(linear_at[i]) };
        }
        self.stats.packets += n as u64;
        self.stats.bytes += bytes;
        n
    }

    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        assert!(i < self.n, "frame {i} of a burst of {}", self.n);
        let (p, len) = self.data[i];
        // SAFETY: i < n: `data[i]` points at len bytes of an mbuf this queue owns until the next
        // rx_burst (which needs `&mut self`, so the returned borrow has ended), or into `linear`,
        // which is not touched until then either.
        let data = unsafe { std::slice::from_raw_parts(p, len) };
        Frame {
            data,
            framing: Framing::Link(LinkType::Ethernet),
            rx_ns: self.rx_ns[i],
            ts_source: self.ts_source[i],
            locus: self.stats.packets - self.n as u64 + i as u64,
        }
    }

    fn stats(&mut self) -> QueueStats {
        let mut s = self.stats;
        if let Ok(p) = port_stats(&self.port) {
            s.missed = p.imissed;
            s.no_buffer = p.rx_nombuf;
            s.errors = p.ierrors;
        }
        s
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

const _: () = assert!(BURST <= 64, "DpdkRx keeps a u64 mask per burst");

// ---------------------------------------------------------------------------------------------
// Transmit

/// A DPDK transmit queue: [`TxQueue`] over `rte_eth_tx_burst`. Each frame is copied into mbufs
/// of the port's pool (chained when it exceeds one mbuf's room); what the device does not take
/// is freed at once.
#[derive(Debug)]
pub struct DpdkTx {
    port: Arc<PortInner>,
    queue: u16,
    sent: u64,
}

impl DpdkTx {
    /// The port this queue belongs to.
    pub fn port(&self) -> Port {
        Port { inner: self.port.clone() }
    }

    /// The queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Frames the device has taken so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Copies `frame` into `head` (a fresh mbuf), chaining more mbufs as needed. False when the
    /// pool runs dry; `head` (and whatever was chained to it) stays the caller's to free.
    fn fill(&self, head: *mut sys::rte_mbuf, frame: &[u8]) -> bool {
        let pool = self.port.pool.as_ptr();
        let mut last = head;
        let mut rest = frame;
        loop {
            // SAFETY: `last` is the last segment of `head`'s chain, a valid mbuf this queue owns.
            let room = usize::from(unsafe { sys::shim_pktmbuf_tailroom(last) });
            let take = rest.len().min(room);
            // SAFETY: `head` is a valid mbuf chain; `take` ≤ the last segment's tailroom, so the
            // append succeeds and returns a pointer to `take` writable bytes.
            let dst = unsafe { sys::shim_pktmbuf_append(head, take as u16) };
            if dst.is_null() {
                return false;
            }
            // SAFETY: `dst` has room for `take` bytes; `rest` is a separate Rust slice.
            unsafe { ptr::copy_nonoverlapping(rest.as_ptr(), dst.cast::<u8>(), take) };
            rest = &rest[take..];
            if rest.is_empty() {
                return true;
            }
            // SAFETY: a live pool.
            let next = unsafe { sys::shim_pktmbuf_alloc(pool) };
            if next.is_null() {
                return false;
            }
            // SAFETY: two valid mbufs owned here; on success `next` belongs to `head`'s chain.
            if unsafe { sys::shim_pktmbuf_chain(head, next) } != 0 {
                // SAFETY: `next` was not chained: still a lone mbuf owned here.
                unsafe { sys::shim_pktmbuf_free(next) };
                return false;
            }
            last = next;
        }
    }
}

impl Drop for DpdkTx {
    fn drop(&mut self) {
        give_back(&self.port.tx_taken, self.queue);
    }
}

impl TxQueue for DpdkTx {
    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        ensure_lcore();
        let pool = self.port.pool.as_ptr();
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
        let mut done = 0;
        for chunk in frames.chunks(BURST) {
            // Fresh mbufs: in one go, or as many as the pool has.
            // SAFETY: a live pool; room for chunk.len() ≤ BURST pointers.
            let mut got = if unsafe { sys::shim_pktmbuf_alloc_bulk(pool, mbufs.as_mut_ptr(), chunk.len() as u32) } == 0
            {
                chunk.len()
            } else {
                0
            };
            if got == 0 {
                while got < chunk.len() {
                    // SAFETY: a live pool.
                    let m = unsafe { sys::shim_pktmbuf_alloc(pool) };
                    if m.is_null() {
                        break;
                    }
                    mbufs[got] = m;
                    got += 1;
                }
            }
            let mut built = 0;
            while built < got && self.fill(mbufs[built], chunk[built]) {
                built += 1;
            }
            if built < got {
                // SAFETY: mbufs[built..got] are valid mbufs (chains) owned here, not sent.
                unsafe { sys::rte_pktmbuf_free_bulk(mbufs[built..].as_mut_ptr(), (got - built) as u32) };
            }
            // SAFETY: a started port, a queue only this DpdkTx uses, `built` valid mbufs; the ones
            // sent now belong to the driver.
            let sent =
                usize::from(unsafe { sys::shim_tx_burst(self.port.id, self.queue, mbufs.as_mut_ptr(), built as u16) });
            if sent < built {
                // SAFETY: mbufs[sent..built] were not taken: still owned here.
                unsafe { sys::rte_pktmbuf_free_bulk(mbufs[sent..].as_mut_ptr(), (built - sent) as u32) };
            }
            done += sent;
            if sent < chunk.len() {
                break;
            }
        }
        self.sent += done as u64;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_macs() {
        assert_eq!(mcast_mac(Ipv4Addr::new(233, 215, 21, 4)), [0x01, 0x00, 0x5e, 0x57, 0x15, 0x04]);
        assert_eq!(mcast_mac(Ipv4Addr::new(239, 129, 2, 3)), [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]);
    }

    #[test]
    fn return_conventions() {
        let errno = |e: DpdkError| match e {
            DpdkError::Call { errno, .. } => errno,
            e => panic!("{e:?}"),
        };
        // A negative errno: -1 is EPERM, not "look at rte_errno".
        assert_eq!(errno(call_err("f", "d", -1, Ret::NegErrno)), libc::EPERM);
        assert_eq!(errno(call_err("f", "d", -libc::EINVAL, Ret::NegErrno)), libc::EINVAL);
        // rte_vdev_init: the bus's negative errnos as such, a driver's bare -1 by rte_errno.
        assert_eq!(errno(call_err("f", "d", -libc::EEXIST, Ret::Mixed)), libc::EEXIST);
        let e = call("f", "d", Ret::Mixed, || -1).unwrap_err();
        assert!(e.to_string().contains("no error code given"), "{e}");
        let e = call("f", "d", Ret::RteErrno, || -1).unwrap_err();
        assert_eq!(errno(e), 0);
        assert_eq!(call("f", "d", Ret::NegErrno, || 3), Ok(3));
    }

    #[test]
    fn presets() {
        assert_eq!(eal_preset("test").unwrap()[..2], ["-l".to_owned(), "0".to_owned()]);
        assert!(eal_preset("nope").is_none());
    }
}
