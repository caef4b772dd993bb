//! Which worker (if any) the current thread is. Under `std` a thread-local set by the worker loop; without `std`
//! there is no thread-local, so every wake goes through the shared queues (correct, only slower).

use super::worker::WorkerCtx;

#[cfg(feature = "std")]
std::thread_local! {
    static CURRENT: core::cell::Cell<*const WorkerCtx> = const { core::cell::Cell::new(core::ptr::null()) };
}

/// Run `f` with the current thread's worker context, if it is a worker.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerCtx>) -> R) -> R {
    #[cfg(feature = "std")]
    {
        let ptr = CURRENT.with(|current| current.get());
        // SAFETY: set only by `enter`, which clears it before the context it points to goes away.
        f(unsafe { ptr.as_ref() })
    }
    #[cfg(not(feature = "std"))]
    {
        f(None)
    }
}

/// Mark this thread as running `ctx` until the guard drops.
pub(crate) fn enter(ctx: &WorkerCtx) -> EnterGuard {
    #[cfg(feature = "std")]
    let previous = CURRENT.with(|current| current.replace(ctx));
    #[cfg(not(feature = "std"))]
    let _ = ctx;
    EnterGuard {
        #[cfg(feature = "std")]
        previous,
    }
}

pub(crate) struct EnterGuard {
    #[cfg(feature = "std")]
    previous: *const WorkerCtx,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        CURRENT.with(|current| current.set(self.previous));
    }
}
