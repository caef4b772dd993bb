//! Time: an injected clock, a hierarchical timer wheel, and the sleep/timeout futures built on them.
//!
//! The runtime never reads a clock itself: it asks the [`Clock`] it was built with. Under `std` the default is
//! [`TscClock`] (the CPU's time-stamp counter through `quanta`, ~10 ns a read); tests pass a [`ManualClock`] and
//! move time by hand, so timer behaviour is deterministic.

mod sleep;
pub mod wheel;

pub use sleep::{Elapsed, Sleep, Timeout};

use crate::sync::{AtomicU64, Ordering};

/// A monotonic clock in nanoseconds from an arbitrary origin.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's origin; never decreases.
    fn now_ns(&self) -> u64;
}

/// A clock that moves only when told: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        ManualClock { now: AtomicU64::new(start_ns) }
    }

    /// Move forward by `ns`.
    pub fn advance(&self, ns: u64) {
        self.now.fetch_add(ns, Ordering::AcqRel);
    }

    /// Set the reading; ignored if it would move backwards.
    pub fn set(&self, ns: u64) {
        self.now.fetch_max(ns, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

/// The time-stamp counter through `quanta` (calibrated against the monotonic clock at first use).
///
/// quanta silently falls back to `CLOCK_MONOTONIC` when the TSC is not invariant; the hardware report (`weir-hw`)
/// is where that gets checked.
#[cfg(feature = "std")]
#[derive(Debug, Clone)]
pub struct TscClock {
    clock: quanta::Clock,
    origin: u64,
}

#[cfg(feature = "std")]
impl TscClock {
    /// Calibrates on first use in the process (up to ~200 ms, usually 10-20 ms).
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        TscClock { clock, origin }
    }
}

#[cfg(feature = "std")]
impl Default for TscClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for TscClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// `std::time::Instant` (the OS monotonic clock, ~20-40 ns a read): where the TSC cannot be used, e.g. under Miri.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl MonotonicClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        MonotonicClock { origin: std::time::Instant::now() }
    }
}

#[cfg(feature = "std")]
impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}
