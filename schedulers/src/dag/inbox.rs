//! A worker's inbox: nodes made ready by other workers, as an intrusive stack threaded through a per-node `next`
//! array. Any thread pushes (a CAS on the head); the owner takes everything at once (a swap). Each node is pushed
//! at most once per run, so a node cannot come back while a pusher still holds a stale head: no ABA.

use crate::sync::{AtomicU32, Ordering};

/// "Empty" / "end of list".
pub(crate) const END: u32 = u32::MAX;

/// The sleep protocol (Dekker's): a pusher pushes, fences, then reads the owner's `sleeping` flag; a sleeper sets
/// the flag, fences, then looks at the inbox once more. The two fences are ordered, so one side sees the other's
/// write: never asleep with work waiting and nobody to wake it. (A SeqCst fence, not SeqCst accesses alone: loom
/// models those as AcqRel, and the fence is what the proof rests on.)
pub(crate) fn fence_before_checking() {
    crate::sync::fence(Ordering::SeqCst);
}

#[derive(Debug)]
pub(crate) struct Inbox {
    head: AtomicU32,
}

impl Inbox {
    pub(crate) fn new() -> Self {
        Inbox { head: AtomicU32::new(END) }
    }

    /// Push `v`. A caller that then checks the owner's `sleeping` flag fences first ([`fence_before_checking`]).
    pub(crate) fn push(&self, next: &[AtomicU32], v: u32) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            next[v as usize].store(head, Ordering::Relaxed);
            match self.head.compare_exchange_weak(head, v, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Push before any worker runs (the caller owns every inbox).
    pub(crate) fn seed(&self, next: &[AtomicU32], v: u32) {
        next[v as usize].store(self.head.load(Ordering::Relaxed), Ordering::Relaxed);
        self.head.store(v, Ordering::Relaxed);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed) == END
    }

    /// As `is_empty`, for a sleeper that stored its flag and fenced ([`fence_before_checking`]).
    pub(crate) fn is_empty_seqcst(&self) -> bool {
        self.head.load(Ordering::SeqCst) == END
    }

    /// Take everything: iterate the result with `next`, newest first, until [`END`].
    pub(crate) fn take_all(&self) -> u32 {
        if self.is_empty() { END } else { self.head.swap(END, Ordering::Acquire) }
    }

    pub(crate) fn clear(&self) {
        self.head.store(END, Ordering::Relaxed);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Arc, AtomicBool};
    use alloc::vec::Vec;

    /// Two pushers and the owner taking concurrently: every node arrives exactly once.
    #[test]
    fn every_push_arrives_once() {
        loom::model(|| {
            let next: Arc<Vec<AtomicU32>> = Arc::new((0..3).map(|_| AtomicU32::new(END)).collect());
            let inbox = Arc::new(Inbox::new());
            let pushers: Vec<_> = [0u32, 1]
                .into_iter()
                .map(|v| {
                    let (next, inbox) = (next.clone(), inbox.clone());
                    loom::thread::spawn(move || inbox.push(&next, v))
                })
                .collect();
            inbox.push(&next, 2);
            let mut seen = [0u32; 3];
            let mut take = |seen: &mut [u32; 3]| {
                let mut v = inbox.take_all();
                while v != END {
                    seen[v as usize] += 1;
                    v = next[v as usize].load(Ordering::Relaxed);
                }
            };
            take(&mut seen);
            for p in pushers {
                p.join().unwrap();
            }
            take(&mut seen);
            assert_eq!(seen, [1, 1, 1]);
        });
    }

    /// The sleep protocol: a worker publishes `sleeping` then looks at its inbox; a pusher pushes then looks at
    /// `sleeping`. The worker never ends up asleep, unwoken, with a node in its inbox.
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let next: Arc<Vec<AtomicU32>> = Arc::new((0..1).map(|_| AtomicU32::new(END)).collect());
            let inbox = Arc::new(Inbox::new());
            let sleeping = Arc::new(AtomicBool::new(false));
            let woken = Arc::new(AtomicBool::new(false));
            let pusher = {
                let (next, inbox, sleeping, woken) = (next.clone(), inbox.clone(), sleeping.clone(), woken.clone());
                loom::thread::spawn(move || {
                    inbox.push(&next, 0);
                    fence_before_checking();
                    if sleeping.load(Ordering::SeqCst) && sleeping.swap(false, Ordering::SeqCst) {
                        woken.store(true, Ordering::SeqCst);
                    }
                })
            };
            sleeping.store(true, Ordering::SeqCst);
            fence_before_checking();
            let saw_work = !inbox.is_empty_seqcst();
            if saw_work {
                sleeping.swap(false, Ordering::SeqCst);
            }
            pusher.join().unwrap();
            assert!(saw_work || woken.load(Ordering::SeqCst), "asleep with work in the inbox and nobody woke us");
        });
    }
}
