//! The task state word: lifecycle bits and a reference count in one `AtomicUsize`.
//!
//! Bits (tokio's layout, trimmed):
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | `RUNNING` | someone owns the future right now (a worker polling it, or a canceller dropping it) |
//! | 1 | `COMPLETE` | the future is gone; the stage holds the output (or nothing) |
//! | 2 | `NOTIFIED` | a [`Notified`](super::Notified) for this task sits in a run queue (or will, after the poll) |
//! | 3 | `JOIN_INTEREST` | a `JoinHandle` exists and will take the output |
//! | 4 | `JOIN_WAKER` | the trailer holds the handle's waker; only the completer may touch it now |
//! | 5 | `CANCELLED` | cancel at the next chance instead of polling |
//! | 6.. | refs | one per `Notified`, waker, `JoinHandle`, and the owned-tasks list entry |
//!
//! Protocol, in the order a task lives it:
//! 1. Spawn: refs = 3 (owned list, `JoinHandle`, the first `Notified`), `NOTIFIED | JOIN_INTEREST`.
//! 2. A worker pops the `Notified` and calls [`State::transition_to_running`]: `NOTIFIED` → `RUNNING`. The queue's
//!    reference now stands for "being polled".
//! 3. Wakes while `RUNNING` only set `NOTIFIED` (no queue push): the poller sees it in
//!    [`State::transition_to_idle`] and pushes the task itself, its reference going to the queue and one more
//!    held until the push returns (the push runs on the task's own scheduler handle; a thief could run and free
//!    the task before it returns otherwise). Wakes while idle set `NOTIFIED`, add a reference and push; a wake by
//!    value does that, then drops the waker's reference after the push, for the same reason. Wakes while notified
//!    or complete do nothing.
//! 4. `Ready`: [`State::transition_to_complete`] swaps `RUNNING` for `COMPLETE`; the owned list gives its reference
//!    back and both are dropped together ([`State::ref_dec_n`]).
//! 5. Cancel: set `CANCELLED`. Whoever next owns the future (the running poller at idle, a worker popping it, or the
//!    canceller itself if the task was idle and it could set `RUNNING`) drops it and completes with `Cancelled`.

use crate::sync::{AtomicUsize, Ordering};

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const COMPLETE: usize = 1 << 1;
pub(crate) const NOTIFIED: usize = 1 << 2;
pub(crate) const JOIN_INTEREST: usize = 1 << 3;
pub(crate) const JOIN_WAKER: usize = 1 << 4;
pub(crate) const CANCELLED: usize = 1 << 5;
const REF_SHIFT: u32 = 6;
pub(crate) const REF_ONE: usize = 1 << REF_SHIFT;
const LIFECYCLE: usize = RUNNING | COMPLETE;

/// A snapshot of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.has_join_waker())
            .field("refs", &self.refs())
            .finish()
    }
}

/// What a worker should do with a task it popped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// Poll it.
    Poll,
    /// It was cancelled while queued: drop the future and complete.
    Cancel,
    /// Someone else owns or finished it (a canceller got there first): drop the queue's reference.
    Skip,
}

/// What the poller should do after `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Idle; the poller's reference was dropped and it was not the last.
    Idle,
    /// The poller's reference was the last one: free the task.
    Dealloc,
    /// Woken while running: push it again with the poller's reference, then drop the extra one added for the push.
    Reschedule,
    /// Cancelled while running: drop the future and complete, still holding the reference.
    Cancel,
}

/// What a waker should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// Push a `Notified` (a reference was added for it).
    Submit,
    /// Nothing to push.
    Nothing,
}

pub(crate) struct State {
    word: AtomicUsize,
}

impl State {
    /// Refs for: the owned-tasks list, the `JoinHandle`, the first `Notified`.
    pub(crate) fn new() -> State {
        State { word: AtomicUsize::new((3 * REF_ONE) | NOTIFIED | JOIN_INTEREST) }
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.word.load(Ordering::Acquire))
    }

    /// Run `f` in a CAS loop; `f` returns the new word (or `None` to stop) and a result.
    #[inline]
    fn fetch_update<T>(&self, mut f: impl FnMut(Snapshot) -> (Option<usize>, T)) -> T {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let (next, result) = f(Snapshot(current));
            let Some(next) = next else { return result };
            match self.word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return result,
                Err(actual) => current = actual,
            }
        }
    }

    /// A worker popped the task's `Notified`.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.fetch_update(|s| {
            debug_assert!(s.is_notified() || s.0 & LIFECYCLE != 0, "popped a task that is not notified: {s:?}");
            if s.0 & LIFECYCLE != 0 {
                return (None, ToRunning::Skip);
            }
            let next = (s.0 & !NOTIFIED) | RUNNING;
            (Some(next), if s.is_cancelled() { ToRunning::Cancel } else { ToRunning::Poll })
        })
    }

    /// The poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.fetch_update(|s| {
            debug_assert!(s.is_running());
            if s.is_cancelled() {
                return (None, ToIdle::Cancel);
            }
            let mut next = s.0 & !RUNNING;
            if s.is_notified() {
                // The poller's reference goes to the queue, and a new one keeps the task (and the scheduler
                // handle inside it) alive while the poller pushes it: a thief may run and free it meanwhile.
                (Some(next + REF_ONE), ToIdle::Reschedule)
            } else {
                debug_assert!(s.refs() >= 1);
                next -= REF_ONE;
                (Some(next), if Snapshot(next).refs() == 0 { ToIdle::Dealloc } else { ToIdle::Idle })
            }
        })
    }

    /// The future is gone (finished or dropped): `RUNNING` → `COMPLETE`. Returns the snapshot before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.word.fetch_xor(RUNNING | COMPLETE, Ordering::AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete(), "{prev:?}");
        prev
    }

    /// `wake_by_ref`: never consumes a reference.
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.fetch_update(|s| {
            if s.is_complete() || s.is_notified() {
                (None, ToNotified::Nothing)
            } else if s.is_running() {
                (Some(s.0 | NOTIFIED), ToNotified::Nothing)
            } else {
                (Some((s.0 | NOTIFIED) + REF_ONE), ToNotified::Submit)
            }
        })
    }

    /// Mark cancelled. Returns `true` if the caller now owns the future (it set `RUNNING` on an idle or queued
    /// task) and must drop it and complete; `false` if someone else will (or it is already complete).
    pub(crate) fn transition_to_cancelled_and_claim(&self) -> bool {
        self.fetch_update(|s| {
            if s.0 & LIFECYCLE != 0 {
                // Running: the poller cancels at idle. Complete: nothing to do.
                let next = if s.is_complete() { None } else { Some(s.0 | CANCELLED) };
                (next, false)
            } else {
                (Some(s.0 | CANCELLED | RUNNING), true)
            }
        })
    }

    /// Mark cancelled from a `JoinHandle::abort`. Returns `true` if the task was idle and a `Notified` (with a new
    /// reference) must be pushed so that a worker cancels it on its own thread.
    pub(crate) fn transition_to_cancelled_remote(&self) -> bool {
        self.fetch_update(|s| {
            if s.is_complete() || s.is_cancelled() {
                (None, false)
            } else if s.is_running() || s.is_notified() {
                (Some(s.0 | CANCELLED), false)
            } else {
                (Some((s.0 | CANCELLED | NOTIFIED) + REF_ONE), true)
            }
        })
    }

    /// Drop the join interest unless the task already completed. `Err` means it completed: the handle must drop
    /// the output itself.
    pub(crate) fn unset_join_interest(&self) -> Result<(), Snapshot> {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested());
            if s.is_complete() { (None, Err(s)) } else { (Some(s.0 & !(JOIN_INTEREST | JOIN_WAKER)), Ok(())) }
        })
    }

    /// The handle stored a waker in the trailer; publish it unless the task completed meanwhile.
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested() && !s.has_join_waker());
            if s.is_complete() { (None, Err(s)) } else { (Some(s.0 | JOIN_WAKER), Ok(())) }
        })
    }

    /// The handle wants to replace its waker; take the trailer back unless the task completed meanwhile.
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        self.fetch_update(|s| {
            debug_assert!(s.is_join_interested() && s.has_join_waker());
            if s.is_complete() { (None, Err(s)) } else { (Some(s.0 & !JOIN_WAKER), Ok(())) }
        })
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.word.fetch_add(REF_ONE, Ordering::Relaxed);
        // Overflow would wrap into a use-after-free; abort as `Arc` does.
        if prev > usize::MAX / 2 {
            abort_on_ref_overflow();
        }
    }

    /// Drop one reference; `true` if it was the last.
    pub(crate) fn ref_dec(&self) -> bool {
        self.ref_dec_n(1)
    }

    /// Drop `n` references; `true` if they were the last.
    pub(crate) fn ref_dec_n(&self, n: usize) -> bool {
        let prev = Snapshot(self.word.fetch_sub(n * REF_ONE, Ordering::AcqRel));
        debug_assert!(prev.refs() >= n, "{prev:?} dropping {n}");
        prev.refs() == n
    }
}

#[cold]
fn abort_on_ref_overflow() -> ! {
    #[cfg(feature = "std")]
    std::process::abort();
    #[cfg(not(feature = "std"))]
    panic!("task reference count overflow");
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_without_wakes() {
        let s = State::new();
        assert_eq!(s.load().refs(), 3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        // Pending, not woken: the queue's reference goes.
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.load().refs(), 2);
        // Woken by ref: a new reference for the Notified.
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Nothing);
        assert_eq!(s.load().refs(), 3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        // Woken while running: no push now, reschedule at idle.
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Reschedule);
        assert_eq!(s.load().refs(), 4); // the queue's, plus one held across the push
        assert!(!s.ref_dec());
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let before = s.transition_to_complete();
        assert!(before.is_running() && before.is_join_interested());
        assert!(s.load().is_complete());
        assert!(s.unset_join_interest().is_err());
        assert!(!s.ref_dec_n(2));
        assert!(s.ref_dec());
    }

    #[test]
    fn cancel_claims_idle_task_only() {
        let s = State::new();
        // Queued (notified): the canceller claims it; the later pop skips.
        assert!(s.transition_to_cancelled_and_claim());
        assert_eq!(s.transition_to_running(), ToRunning::Skip);
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert!(!s.transition_to_cancelled_and_claim());
        assert_eq!(s.transition_to_idle(), ToIdle::Cancel);
    }

    #[test]
    fn remote_abort_of_idle_task_schedules_it() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert!(s.transition_to_cancelled_remote());
        assert!(!s.transition_to_cancelled_remote());
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }
}
