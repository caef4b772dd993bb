//! weir's hardware side: what the machine is, which CPU does what, and the configuration other tools need.
//!
//! - [`topology`] (`no_std`): CPUs with their core, package and NUMA node, as the scheduler orders steal
//!   victims by them. [`cpuset`] (`no_std`): CPU sets in the kernel's list format.
//! - [`machine`] (`std`): the whole machine read from `/sys` and `/proc`, or from a copy of them under a
//!   root directory (fixtures, and the tarball a user sends). [`discover`] (`std`): filling it, and
//!   [`snapshot`]: copying exactly the files it read.
//! - [`layout`] (`std`): the layout file (TOML) and its checks against a [`Machine`].
//! - [`generate`] (`std`): DPDK EAL arguments, a systemd fragment, the kernel command line and an IRQ script,
//!   generated from one layout.
//! - [`pin`] (`std`, Linux): pin a thread and verify it. [`pci`]: PCI address forms.
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
