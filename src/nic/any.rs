//! A queue picked at run time from a `--nic` spec.

use super::pcap::PcapRx;
use super::spec::NicSpec;
use super::udp::UdpRx;
use super::{Frame, QueueStats, RxQueue};

/// Any backend, chosen at run time. A `match` per call: the branch always goes the same way.
// One per queue, built once: boxing the big variants would add a pointer chase to every frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyRx {
    /// Capture replay.
    Pcap(PcapRx),
    /// Kernel socket.
    Udp(UdpRx),
    /// DPDK port.
    #[cfg(feature = "dpdk")]
    Dpdk(super::dpdk::DpdkRx),
}

/// Why a queue could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The capture could not be opened.
    #[error(transparent)]
    Pcap(#[from] crate::capture::CaptureError),
    /// The socket could not be set up.
    #[error(transparent)]
    Udp(#[from] super::udp::UdpError),
    /// The DPDK port could not be set up.
    #[cfg(feature = "dpdk")]
    #[error(transparent)]
    Dpdk(#[from] super::dpdk::DpdkError),
    /// This build has no DPDK.
    #[error(
        "{0}: this weir was built without DPDK: rebuild with `--features dpdk` (needs `apt-get install libdpdk-dev pkg-config libclang-dev`)"
    )]
    NoDpdk(String),
}

impl AnyRx {
    /// Opens the queue `spec` names. `eal_args` configure DPDK's EAL (empty: the test preset).
    pub fn open(spec: &NicSpec, eal_args: &[String]) -> Result<AnyRx, OpenError> {
        let _ = eal_args;
        match spec {
            NicSpec::Pcap { path, pace } => Ok(AnyRx::Pcap(PcapRx::open(path, *pace)?)),
            NicSpec::Udp { group, iface } => Ok(AnyRx::Udp(UdpRx::open(*group, iface.as_deref())?)),
            #[cfg(feature = "dpdk")]
            NicSpec::Dpdk { device, queue, groups } => {
                Ok(AnyRx::Dpdk(super::dpdk::open_rx(device, *queue, groups, eal_args)?))
            }
            #[cfg(not(feature = "dpdk"))]
            NicSpec::Dpdk { device, .. } => Err(OpenError::NoDpdk(format!("dpdk:{device}"))),
        }
    }
}

macro_rules! each {
    ($self:expr, $q:ident => $e:expr) => {
        match $self {
            AnyRx::Pcap($q) => $e,
            AnyRx::Udp($q) => $e,
            #[cfg(feature = "dpdk")]
            AnyRx::Dpdk($q) => $e,
        }
    };
}

impl RxQueue for AnyRx {
    #[inline]
    fn rx_burst(&mut self) -> usize {
        each!(self, q => q.rx_burst())
    }
    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        each!(self, q => q.frame(i))
    }
    fn stats(&mut self) -> QueueStats {
        each!(self, q => q.stats())
    }
    fn is_finished(&self) -> bool {
        each!(self, q => q.is_finished())
    }
    fn name(&self) -> String {
        each!(self, q => q.name())
    }
    fn faults(&self) -> Vec<String> {
        each!(self, q => q.faults())
    }
    fn has_pending(&self) -> bool {
        each!(self, q => q.has_pending())
    }
    fn source_stats(&self) -> super::SourceStats {
        each!(self, q => q.source_stats())
    }
}
