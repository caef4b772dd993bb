//! Helpers shared by the runtime tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live instances: a leak (a future never dropped) shows as a count that does not return to zero.
pub(crate) struct Live(Arc<AtomicUsize>);

impl Live {
    /// A first instance and its counter.
    #[allow(dead_code)] // not every test binary uses every helper
    pub(crate) fn new() -> (Live, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        (Live::track(&count), count)
    }

    /// One more instance counted by `count`.
    pub(crate) fn track(count: &Arc<AtomicUsize>) -> Live {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count.clone())
    }
}

impl Clone for Live {
    fn clone(&self) -> Self {
        Live::track(&self.0)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
