//! `Sleep` and `Timeout`: futures over the runtime's timer wheels.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::executor::Handle;
use crate::sync::Ordering;
use crate::time::wheel::TimerKey;

/// Completes at a deadline on the runtime's clock. Registered on the wheel of the worker that first polls it.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    handle: Handle,
    deadline: u64,
    entry: Option<(u32, TimerKey)>,
}

impl Sleep {
    /// Sleep until `deadline_ns` on `handle`'s clock.
    pub fn until(handle: Handle, deadline_ns: u64) -> Sleep {
        Sleep { handle, deadline: deadline_ns, entry: None }
    }

    /// Sleep for `ns` nanoseconds from now.
    pub fn for_ns(handle: Handle, ns: u64) -> Sleep {
        let deadline = handle.now_ns().saturating_add(ns);
        Sleep::until(handle, deadline)
    }

    /// The deadline, in the runtime clock's nanoseconds.
    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    /// True once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.handle.now_ns() >= self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.handle.now_ns() >= this.deadline {
            if let Some((shard, key)) = this.entry.take() {
                this.handle.shared.timer_cancel(shard, key);
            }
            return Poll::Ready(());
        }
        let shared = &*this.handle.shared;
        if let Some((shard, key)) = this.entry
            && shared.timer_update(shard, key, cx.waker())
        {
            return Poll::Pending;
        }
        // Not registered (or it fired early because the clock moved between the check and now): register.
        this.entry = shared.timer_register(this.deadline, cx.waker().clone());
        if this.entry.is_none() {
            // The wheel is full: degrade to polling again on every turn until the deadline (counted).
            shared.timer_overflows.fetch_add(1, Ordering::Relaxed);
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((shard, key)) = self.entry.take() {
            self.handle.shared.timer_cancel(shard, key);
        }
    }
}

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl core::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl core::error::Error for Elapsed {}

/// Runs a future with a deadline: `Ok(output)` if it finishes first, `Err(Elapsed)` if the deadline does.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    /// `future`, abandoned at `sleep`'s deadline.
    pub fn new(future: F, sleep: Sleep) -> Self {
        Timeout { future, sleep }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of `self`; `sleep` is `Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}
