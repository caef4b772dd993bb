//! loom models of the lock-free and racy parts: the local ring, the injector, and the task state machine (wakes,
//! join-handle wakers, aborts racing with polls). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p weir-schedulers --release --lib loom`.
//! Capacities shrink under loom (the ring holds 4) so the overflow and steal paths are reached in few steps.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::future::Future;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::queue::inject::Inject;
use crate::queue::local::{self, Overflow};
use crate::task::list::List;
use crate::task::{self, JoinHandle, Notified, Placement, Schedule, Task, TaskId, UNPINNED};

// ---------------------------------------------------------------- local ring

struct Sink(Mutex<Vec<u32>>);
impl Overflow<u32> for Sink {
    fn push_batch(&self, items: impl Iterator<Item = u32>) {
        self.0.lock().unwrap().extend(items);
    }
}

/// Owner pushes and pops while a thief steals: every item comes out exactly once.
#[test]
fn loom_local_push_pop_steal() {
    loom::model(|| {
        let (mut owner, stealer) = local::new::<u32>(local::DEFAULT_CAPACITY);
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let thief = thread::spawn(move || {
            let (mut mine, _) = local::new::<u32>(local::DEFAULT_CAPACITY);
            let mut got = Vec::new();
            if let Some(item) = stealer.steal_into(&mut mine) {
                got.push(item);
            }
            while let Some(item) = mine.pop() {
                got.push(item);
            }
            got
        });
        let mut got = Vec::new();
        for i in 0..6 {
            owner.push_back(i, &*sink);
            if i % 2 == 1
                && let Some(item) = owner.pop()
            {
                got.push(item);
            }
        }
        got.extend(thief.join().unwrap());
        while let Some(item) = owner.pop() {
            got.push(item);
        }
        got.extend(sink.0.lock().unwrap().iter().copied());
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    });
}

/// Two thieves at once on a full ring.
#[test]
fn loom_local_two_stealers() {
    loom::model(|| {
        let (mut owner, stealer) = local::new::<u32>(local::DEFAULT_CAPACITY);
        let sink = Sink(Mutex::new(Vec::new()));
        for i in 0..4 {
            owner.push_back(i, &sink);
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let stealer = stealer.clone();
                thread::spawn(move || {
                    let (mut mine, _) = local::new::<u32>(local::DEFAULT_CAPACITY);
                    let mut got: Vec<u32> = stealer.steal_into(&mut mine).into_iter().collect();
                    while let Some(item) = mine.pop() {
                        got.push(item);
                    }
                    got
                })
            })
            .collect();
        let mut got: Vec<u32> = owner.pop().into_iter().collect();
        for thief in thieves {
            got.extend(thief.join().unwrap());
        }
        while let Some(item) = owner.pop() {
            got.push(item);
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

// ---------------------------------------------------------------- tasks

/// A scheduler for models: a queue anyone may drain, an owned list, heap memory.
#[derive(Default)]
struct TestSched {
    queue: Mutex<VecDeque<Notified>>,
    owned: Mutex<List>,
}

#[derive(Clone, Default)]
struct Sched(Arc<TestSched>);

impl Schedule for Sched {
    fn schedule(&self, task: Notified) {
        self.0.queue.lock().unwrap().push_back(task);
    }
    fn release(&self, task: &Task) -> Option<Task> {
        self.0.owned.lock().unwrap().remove(task)
    }
    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: allocated with this layout by `spawn` below.
        unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

impl Sched {
    fn spawn<F: Future + Send + 'static>(&self, future: F) -> JoinHandle<F::Output>
    where
        F::Output: Send,
    {
        let layout = task::raw::layout_of::<F, Sched>();
        // SAFETY: non-zero size.
        let memory = NonNull::new(unsafe { alloc::alloc::alloc(layout) }).unwrap();
        let placement = Placement { id: TaskId(1), pinned_to: UNPINNED, local: false };
        // SAFETY: fresh memory of the right layout, freed through `Sched::dealloc`; the future is `Send`.
        let (owned, notified, join) = unsafe { task::new_task(memory, future, self.clone(), placement) };
        self.0.owned.lock().unwrap().push(owned).unwrap();
        self.schedule(notified);
        join
    }

    fn run_all(&self) {
        loop {
            let task = self.0.queue.lock().unwrap().pop_front();
            match task {
                Some(task) => task.run(),
                None => return,
            }
        }
    }
}

/// Pending until `fired`, storing its waker in a slot another thread may take.
struct WaitFlag {
    fired: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for WaitFlag {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        if self.fired.load(Ordering::Acquire) { Poll::Ready(42) } else { Poll::Pending }
    }
}

fn fire(fired: &AtomicBool, slot: &Mutex<Option<Waker>>) {
    fired.store(true, Ordering::Release);
    let waker = slot.lock().unwrap().take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// A waker that counts wakes, for polling join handles.
struct CountWake(AtomicUsize);
impl alloc::task::Wake for CountWake {
    fn wake(self: alloc::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_join<T>(join: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, crate::JoinError>> {
    Pin::new(join).poll(&mut Context::from_waker(waker))
}

/// A wake from another thread races with the poll: the task completes exactly once, nothing leaks.
#[test]
fn loom_task_wake_races_poll() {
    loom::model(|| {
        let sched = Sched::default();
        let fired = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let mut join = sched.spawn(WaitFlag { fired: fired.clone(), slot: slot.clone() });
        let runner = {
            let sched = sched.clone();
            thread::spawn(move || sched.run_all())
        };
        let waker_thread = thread::spawn(move || fire(&fired, &slot));
        runner.join().unwrap();
        waker_thread.join().unwrap();
        sched.run_all();
        let noop = Waker::from(alloc::sync::Arc::new(CountWake(AtomicUsize::new(0))));
        match poll_join(&mut join, &noop) {
            Poll::Ready(Ok(42)) => {}
            other => panic!("{:?}", other.map(|r| r.map_err(|e| alloc::format!("{e}")))),
        }
    });
}

/// The join handle registers its waker while another thread completes the task: it is either woken or sees the
/// output right away.
#[test]
fn loom_join_waker_races_completion() {
    loom::model(|| {
        let sched = Sched::default();
        let mut join = sched.spawn(async { 7u32 });
        let runner = {
            let sched = sched.clone();
            thread::spawn(move || sched.run_all())
        };
        let counter = alloc::sync::Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let first = poll_join(&mut join, &waker);
        runner.join().unwrap();
        match first {
            Poll::Ready(out) => assert_eq!(out.unwrap(), 7),
            Poll::Pending => {
                assert_eq!(counter.0.load(Ordering::SeqCst), 1, "completion did not wake the join handle");
                assert_eq!(poll_join(&mut join, &waker).map(|r| r.unwrap()), Poll::Ready(7));
            }
        }
    });
}

/// `abort` races with a poll and a wake: the handle gets the output or `Cancelled`, and the future is dropped once.
#[test]
fn loom_abort_races_poll_and_wake() {
    loom::model(|| {
        let sched = Sched::default();
        let fired = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let mut join = sched.spawn(WaitFlag { fired: fired.clone(), slot: slot.clone() });
        sched.run_all(); // first poll: pending, waker stored
        let runner = {
            let sched = sched.clone();
            thread::spawn(move || {
                fire(&fired, &slot);
                sched.run_all();
            })
        };
        join.abort();
        runner.join().unwrap();
        sched.run_all();
        let noop = Waker::from(alloc::sync::Arc::new(CountWake(AtomicUsize::new(0))));
        match poll_join(&mut join, &noop) {
            Poll::Ready(Ok(value)) => assert_eq!(value, 42),
            Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
            Poll::Pending => panic!("aborted task never finished"),
        }
    });
}

/// Dropping the join handle races with completion: the output is dropped exactly once (by one side).
#[test]
fn loom_drop_join_races_completion() {
    loom::model(|| {
        let sched = Sched::default();
        let output = Arc::new(());
        let out = output.clone();
        let join = sched.spawn(async move { out });
        let runner = {
            let sched = sched.clone();
            thread::spawn(move || sched.run_all())
        };
        drop(join);
        runner.join().unwrap();
        assert_eq!(Arc::strong_count(&output), 1);
    });
}

/// Yields once, then completes.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A task that wakes itself while running is pushed again by its poller while another thread may already pop it,
/// run it to completion and free it: every reference balances (loom reports the task's scheduler `Arc` leaked
/// otherwise) and the task completes once.
#[test]
fn loom_self_wake_races_a_thief() {
    loom::model(|| {
        let sched = Sched::default();
        drop(sched.spawn(YieldOnce(false)));
        let thief = {
            let sched = sched.clone();
            thread::spawn(move || sched.run_all())
        };
        sched.run_all();
        thief.join().unwrap();
        sched.run_all();
        assert!(sched.0.queue.lock().unwrap().is_empty());
        assert_eq!(sched.0.owned.lock().unwrap().len(), 0);
    });
}

// ---------------------------------------------------------------- injector

/// Two producers and a consumer on the injector: every task comes out once and runs.
#[test]
fn loom_inject_push_pop() {
    loom::model(|| {
        let sched = Sched::default();
        let inject = Arc::new(Inject::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::new();
        let mut notified = Vec::new();
        for _ in 0..2 {
            let ran = ran.clone();
            joins.push(sched.spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            }));
            notified.push(sched.0.queue.lock().unwrap().pop_back().unwrap());
        }
        let producers: Vec<_> = notified
            .into_iter()
            .map(|task| {
                let inject = inject.clone();
                thread::spawn(move || inject.push(task))
            })
            .collect();
        let mut popped = 0;
        if let Some(task) = inject.pop() {
            task.run();
            popped += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        let batch = inject.pop_batch(8);
        popped += batch.len();
        let mut batch = batch;
        while let Some(task) = batch.pop() {
            task.run();
        }
        assert_eq!(popped, 2);
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert!(inject.is_empty());
        drop(joins);
    });
}

// ---------------------------------------------------------------- broadcast ring

/// A writer laps a slow reader in a 64-byte ring (two 32-byte entries fit, the third overwrites the
/// first; 3 entries and 2 reader polls keep it to minutes): every entry the reader
/// takes is whole (payload matches its sequence: no torn copy passes validation), sequences only
/// rise, and what was received plus what was counted lost is exactly what was written.
#[test]
fn loom_broadcast_lapping_and_overwrite() {
    use crate::queue::broadcast::{HeapRing, Join, Poll, Reader, Resync, Writer};
    for resync in [Resync::Latest, Resync::Oldest] {
        loom::model(move || {
            let ring = Arc::new(HeapRing::new(64));
            let mut writer = Writer::new(ring.clone(), 0);
            let reader = thread::spawn(move || {
                let mut reader = Reader::new(ring, Join::Tail, resync);
                // `None` ("joined blind") when the latest entry was overwritten on each of the four
                // looks: loom lets a relaxed load keep returning an old tail, so it happens here.
                let joined = reader.expected_seq();
                let mut out = [0u64; 2];
                let mut last = None;
                for _ in 0..2 {
                    let poll = reader.poll(&mut out);
                    if let Poll::Entry { seq, len, .. } = poll {
                        assert_eq!(len, 16);
                        assert_eq!((out[0], out[1]), (seq, !seq), "torn entry accepted");
                        assert!(last.is_none_or(|l| l < seq));
                        last = Some(seq);
                    }
                    assert!(!matches!(poll, Poll::Corrupt { .. } | Poll::TooLarge { .. }), "{poll:?}");
                }
                (reader, last, joined)
            });
            for seq in 0..3u64 {
                let mut p = [0u8; 16];
                p[..8].copy_from_slice(&seq.to_ne_bytes());
                p[8..].copy_from_slice(&(!seq).to_ne_bytes());
                writer.publish(&p).unwrap();
            }
            let (mut reader, mut last, joined) = reader.join().unwrap();
            let mut out = [0u64; 2];
            loop {
                match reader.poll(&mut out) {
                    Poll::Empty => break,
                    Poll::Entry { seq, .. } => {
                        assert_eq!((out[0], out[1]), (seq, !seq));
                        assert!(last.is_none_or(|l| l < seq));
                        last = Some(seq);
                    }
                    Poll::Lapped => {}
                    other => panic!("{other:?}"),
                }
            }
            let s = *reader.stats();
            // Joined before, while or after the three were written: it knows the sequence it joined
            // at, what it received plus what it counted lost is exactly the rest, and it ends on
            // the last one.
            match joined {
                Some(joined) => {
                    assert_eq!(s.received + s.lost, 3 - joined, "{s:?}");
                    assert!(joined == 3 || last == Some(2));
                }
                None => assert!(s.received + s.lost <= 3, "{s:?}"),
            }
            assert!(reader.expected_seq() == Some(3) || (joined.is_none() && s.received == 0));
        });
    }
}
