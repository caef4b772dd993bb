//! weir's hardware side.
//!
//! - [`topology`]: what the machine looks like, as plain values (`no_std`): CPUs with their core, package and
//!   NUMA node. The scheduler orders its steal victims by it; the layout file (a later issue) is checked
//!   against it.
//! - [`pin`] (feature `std`, Linux): pin the calling thread to CPUs and read the pinning back.
//!
//! Discovery from `/sys` and `/proc` is not here yet: callers build a [`Topology`] themselves
//! (or use [`Topology::flat`]).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(all(feature = "std", target_os = "linux"))]
pub mod pin;
pub mod topology;

pub use topology::{Cpu, Topology};
