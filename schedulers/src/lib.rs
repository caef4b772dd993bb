//! weir's runtime core: one executor for NIC pollers that must never be moved or delayed and for thousands of small
//! tasks (DAG nodes, control-plane work) that should spread over cores.
//!
//! # Map
//!
//! | module | what | `no_std` |
//! |---|---|---|
//! | [`task`] | a spawned future in one allocation: header, state word, vtable, wakers, [`JoinHandle`], cancellation, owned-task lists, bounded slab storage | yes |
//! | [`queue`] | the per-worker stealable ring ([`queue::local`], tokio's design) and intrusive injector/inbox FIFOs | yes |
//! | [`time`] | the [`Clock`](time::Clock) trait, a hierarchical timer [`Wheel`](time::wheel::Wheel), [`Sleep`](time::Sleep) and [`Timeout`](time::Timeout) | yes |
//! | [`executor`] | the scheduler: spawn paths, the LIFO slot, NUMA-ordered stealing, the idle protocol, per-worker counters, [`Worker::run`](executor::Worker::run) | yes |
//! | [`dag`] | DAG computation: graph, partitioners, explain, the run (dependency counters, stealing), live recompute | yes (runs need `std`) |
//! | [`rt`] | pinned worker threads, parking, [`block_on`](rt::block_on), [`Runtime`](rt::Runtime) with its builder and shutdown | `std` |
//!
//! Without `std` the executor runs on whatever threads the embedder provides ([`executor::new`] returns the
//! workers; each calls [`Worker::run`](executor::Worker::run)) with a [`Park`](executor::Park) of its choosing; there
//! are no thread-locals, so wakes from a worker go through the shared queues instead of its LIFO slot.
//!
//! # A worker's turn
//!
//! Pollers (every one, every turn) → due timers → up to `task_budget` tasks (LIFO slot, pinned FIFO, ring, inbox,
//! injector batch, steal half of a victim, same NUMA node first) → idle policy (busy-poll, or spin then park).
//!
//! # Verification
//!
//! - loom: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p weir-schedulers --release --lib loom`
//! - Miri: `MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check" cargo +nightly miri test -p weir-schedulers`
//! - no_std: `cargo build -p weir-schedulers --no-default-features --target x86_64-unknown-none`
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::std_instead_of_alloc, clippy::alloc_instead_of_core)]

extern crate alloc;

pub mod dag;
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
