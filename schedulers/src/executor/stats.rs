//! Per-worker counters: kept as plain integers by the worker, published after every busy turn (and every 128th idle
//! one, and when parking or exiting) with relaxed stores to a
//! cache-padded block that any thread may read. No read-modify-write, no shared line written by two threads: a
//! reader costs the worker at most a cache miss on its next publish.

use crate::sync::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// A worker's counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct WorkerStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The published copy, written by its worker only.
        #[derive(Debug, Default)]
        pub(crate) struct SharedStats {
            $( $name: AtomicU64, )*
        }

        impl SharedStats {
            pub(crate) fn publish(&self, local: &WorkerStats) {
                $( self.$name.store(local.$name, Ordering::Relaxed); )*
            }

            pub(crate) fn read(&self) -> WorkerStats {
                WorkerStats { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Loop turns (pollers, timers, then up to a budget of tasks).
    turns,
    /// Turns that found work: a poller reported work, a timer fired, or a task ran.
    busy_turns,
    /// Task polls (including cancellations run by this worker).
    tasks_polled,
    /// Poller calls.
    poller_calls,
    /// Poller calls that reported work.
    poller_busy,
    /// Tasks taken from the LIFO slot (the task most recently woken by this worker).
    lifo_hits,
    /// Steal attempts (one per victim tried).
    steal_attempts,
    /// Steal attempts that got at least one task.
    steals,
    /// Tasks moved here by stealing.
    stolen_tasks,
    /// Batches taken from the global injector.
    injector_pulls,
    /// Tasks taken from the global injector.
    injector_tasks,
    /// Pinned tasks taken from this worker's inbox.
    inbox_tasks,
    /// Times the local ring was full and half of it moved to the injector.
    overflows,
    /// Timers fired.
    timers_fired,
    /// Times this worker parked (slept waiting for work).
    parks,
}

impl WorkerStats {
    /// Turns that found work over all turns: how busy the worker was (1.0 = never idle).
    pub fn busy_ratio(&self) -> f64 {
        if self.turns == 0 { 0.0 } else { self.busy_turns as f64 / self.turns as f64 }
    }
}
