//! weir's runtime core.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod executor;
pub mod queue;
#[cfg(feature = "std")]
pub mod rt;
pub(crate) mod sync;
pub mod task;
pub mod time;

#[cfg(all(test, loom))]
mod loom_tests;

pub use executor::{Handle, Idle, Poller, TaskStorage, WorkerStats};
pub use task::storage::SpawnError;
pub use task::{JoinError, JoinHandle, TaskId};
