//! weir's hardware side: what the machine is, which CPU does what, and the configuration other tools need.
//!
//! - [`topology`] (`no_std`): CPUs with their core, package and NUMA node, as the scheduler orders steal
//!   victims by them. [`cpuset`] (`no_std`): CPU sets in the kernel's list and mask formats. [`pci`]: PCI
//!   address forms.
//! - [`machine`] + [`discover`] (`std`): the whole machine read from `/sys` and `/proc`, or from a copy of them
//!   under a root directory (fixtures, and what [`discover::snapshot`] writes for a user to send).
//! - [`layout`] (`std`): the layout file (TOML, every value with its position) and [`layout::check()`] against a
//!   [`Machine`]: every problem at once, each with `file:line:col` and a fix.
//! - [`generate`] (`std`): DPDK EAL arguments, a systemd fragment, the kernel command line and an IRQ script,
//!   generated from one layout; one module per target.
//! - [`propose`] (`std`): a layout for a machine that passes its own check. [`report`]: the machine as
//!   lstopo would draw it (text, JSON), roles overlaid.
//! - [`pin`] (`std`, Linux): pin the calling or any thread, and verify it (allowed set read back, CPU last
//!   run on, context switches over a window).
//!
//! Everything that reads the machine takes a root directory; nothing here starts a thread (the `weir` crate's
//! `pipeline` turns a checked layout into threads).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod cpuset;
#[cfg(feature = "std")]
pub mod discover;
#[cfg(feature = "std")]
pub mod generate;
#[cfg(feature = "std")]
pub mod layout;
#[cfg(feature = "std")]
pub mod machine;
pub mod pci;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod pin;
#[cfg(feature = "std")]
pub mod propose;
#[cfg(feature = "std")]
pub mod report;
pub mod topology;

pub use cpuset::CpuSet;
#[cfg(feature = "std")]
pub use discover::{DiscoverError, snapshot};
#[cfg(feature = "std")]
pub use layout::Layout;
#[cfg(feature = "std")]
pub use machine::Machine;
pub use topology::{Cpu, Topology};
