//! NIC queues: where frames come from and go to.
//!
//! ```text
//!            RxQueue (one burst of ≤ BURST borrowed frames at a time)
//!   pcap ───┐                        ┌── middleware: FaultInjection, PcapWriter (wrap any queue)
//!   udp  ───┼──▶ rx_burst() ─▶ frame(i) ─▶ the poll loop (crate::lcore)
//!   dpdk ───┘    (feature `dpdk`)
//! ```
//!
//! The receive side is two calls: [`RxQueue::rx_burst`] fills the queue's own burst (giving the
//! previous burst's buffers back first) and says how many frames it holds; [`RxQueue::frame`] lends
//! frame `i` of it. The frames borrow the queue, so the borrow checker ends every use of a buffer
//! before the next burst recycles it: DPDK mbufs go back to their pool by the queue itself, and the
//! decoder reads them in place, never copied.
//!
//! Backends: [`pcap`] (replay a capture, as fast as polled or at recorded pace), [`udp`] (kernel
//! sockets joined to multicast groups: the live path without DPDK), and `dpdk` (feature `dpdk`).
//! [`spec`] parses the `--nic` strings that pick one.

pub mod any;
pub mod fault;
pub mod pcap;
pub mod pcap_writer;
pub mod spec;
pub mod udp;

#[cfg(feature = "dpdk")]
pub mod dpdk;

pub use weir_feeds::frame::LinkType;

/// Frames per burst: what DPDK's vector drivers want (a multiple of 8) and what l2fwd uses.
pub const BURST: usize = 32;

/// What a frame's bytes start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A link-layer frame of this type (Ethernet from a NIC; whatever a capture recorded).
    Link(LinkType),
    /// Already the UDP payload: a kernel socket has peeled the headers.
    UdpPayload,
}

/// Where a frame's receive time came from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    /// The NIC stamped it on arrival (DPDK `RTE_ETH_RX_OFFLOAD_TIMESTAMP`).
    Nic,
    /// The kernel stamped it on arrival (`SO_TIMESTAMPNS`).
    Kernel,
    /// The capture recorded it.
    Capture,
    /// The host clock when the burst returned: later than arrival by the time spent in the ring.
    Host,
}

/// One received frame, borrowed from its queue until the next burst.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The bytes, as received.
    pub data: &'a [u8],
    /// How to peel them.
    pub framing: Framing,
    /// Receive time, ns since the Unix epoch (see [`Frame::ts_source`]).
    pub rx_ns: i64,
    /// Where `rx_ns` came from.
    pub ts_source: TimestampSource,
    /// Where the frame came from, for error reports: the capture's byte offset for a file, else
    /// the queue's packet count.
    pub locus: u64,
}

/// Per-queue counters. Packets and bytes count what the queue delivered; the drop counters are
/// the device's (DPDK `imissed`, `rx_nombuf`, `ierrors`; the kernel's socket drops for `udp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Frames delivered.
    pub packets: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Frames the device dropped because the receive ring was full (`imissed`; socket overflows).
    pub missed: u64,
    /// Frames dropped for want of a receive buffer (`rx_nombuf`).
    pub no_buffer: u64,
    /// Frames received in error (`ierrors`: bad CRC, too long, ...).
    pub errors: u64,
    /// Bursts that returned at least one frame.
    pub bursts: u64,
    /// Polls that returned nothing.
    pub empty_polls: u64,
}

/// A receive queue, owned by one poll loop on one core.
pub trait RxQueue {
    /// Receives up to [`BURST`] frames, replacing the previous burst (its buffers go back to the
    /// device first), and returns how many there are. Never blocks. (Middleware that duplicates
    /// or releases held frames may return more than [`BURST`].)
    fn rx_burst(&mut self) -> usize;

    /// Frame `i` (< the last `rx_burst` result) of the current burst.
    fn frame(&self, i: usize) -> Frame<'_>;

    /// Counters so far. May ask the device (a control-path call): not for the per-packet path.
    fn stats(&mut self) -> QueueStats;

    /// Whether no frame will ever come again (the end of a capture). Live queues never finish.
    fn is_finished(&self) -> bool {
        false
    }

    /// A human name for reports (`pcap:FILE`, `udp:GROUP:PORT`, `dpdk:net_pcap0/0`).
    fn name(&self) -> String;

    /// Faults the backend found in its input (a capture that stops being one mid-way), with
    /// where; empty for devices.
    fn faults(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the queue holds a frame that is not due yet (paced replay): the feed is not idle.
    fn has_pending(&self) -> bool {
        false
    }

    /// What the source itself counted (a capture's short and truncated records).
    fn source_stats(&self) -> SourceStats {
        SourceStats::default()
    }
}

/// Counters of a queue's source, beyond the queue's own (for a capture: see
/// `crate::capture::CaptureStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets captured shorter than on the wire.
    pub short_captures: u64,
    /// Records cut off at the end of a capture.
    pub truncated_records: u64,
}

/// A transmit queue.
pub trait TxQueue {
    /// Sends as many of `frames` as the device takes now (copying them into its buffers); returns
    /// how many. Never blocks.
    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize;
}

impl<Q: RxQueue + ?Sized> RxQueue for Box<Q> {
    #[inline]
    fn rx_burst(&mut self) -> usize {
        (**self).rx_burst()
    }
    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        (**self).frame(i)
    }
    fn stats(&mut self) -> QueueStats {
        (**self).stats()
    }
    fn is_finished(&self) -> bool {
        (**self).is_finished()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn faults(&self) -> Vec<String> {
        (**self).faults()
    }
    fn has_pending(&self) -> bool {
        (**self).has_pending()
    }
    fn source_stats(&self) -> SourceStats {
        (**self).source_stats()
    }
}

/// Wall-clock time, ns since the Unix epoch (for [`TimestampSource::Host`] stamps).
#[inline]
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
