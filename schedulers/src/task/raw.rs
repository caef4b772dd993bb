//! The raw task: one allocation holding a header, the scheduler handle, the future (later its output) and the
//! join waker. Everything type-erased goes through [`Vtable`]; everything generic is in [`Harness`].

use core::alloc::Layout;
use core::future::Future;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::state::{State, ToIdle, ToNotified, ToRunning};
use super::{JoinError, Notified, Schedule, Task, TaskId};
use crate::sync::UnsafeCell;

/// Type-erased operations on a task.
pub(crate) struct Vtable {
    /// Run (or cancel) a task popped from a queue; consumes the queue's reference.
    pub(crate) poll: unsafe fn(NonNull<Header>),
    /// Hand a `Notified` (reference already counted) to the task's scheduler.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Free the task; called when the last reference goes.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// `JoinHandle::poll`: writes `Poll<Result<T, JoinError>>` to the pointer when the output is ready.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// `JoinHandle::drop`: drop the output if it is there, then the handle's reference.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Runtime shutdown: cancel now if nobody owns the future, else mark it; consumes one reference.
    pub(crate) shutdown: unsafe fn(NonNull<Header>),
}

/// Links for the owned-tasks list; touched only under that list's lock.
#[derive(Debug, Default)]
pub(crate) struct OwnedLinks {
    pub(crate) prev: Option<NonNull<Header>>,
    pub(crate) next: Option<NonNull<Header>>,
    pub(crate) linked: bool,
}

/// The type-erased front of every task.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    /// Link for intrusive run queues (injector, worker inboxes). A task is in at most one queue at a time: only the
    /// holder of the one `Notified` pushes it.
    pub(crate) queue_next: UnsafeCell<Option<NonNull<Header>>>,
    /// Owned-list links.
    pub(crate) owned: UnsafeCell<OwnedLinks>,
    pub(crate) vtable: &'static Vtable,
    pub(crate) id: TaskId,
    /// Worker index this task may only run on, or [`UNPINNED`].
    pub(crate) pinned_to: u32,
    /// Spawned with `spawn_local`: the future is not `Send`; owned by its worker's local list.
    pub(crate) local: bool,
}

/// `pinned_to` value of a stealable task.
pub(crate) const UNPINNED: u32 = u32::MAX;

/// What the task cell holds over its life.
pub(crate) enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
pub(crate) struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: UnsafeCell<Stage<F>>,
    join_waker: UnsafeCell<Option<Waker>>,
}

/// Where and how a task is placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) id: TaskId,
    pub(crate) pinned_to: u32,
    pub(crate) local: bool,
}

/// The memory layout of a task running `F` under `S`: what bounded storage must fit.
pub(crate) fn layout_of<F: Future, S>() -> Layout {
    Layout::new::<Cell<F, S>>()
}

/// Write a new task into `memory`. Returns the three references of [`State::new`]: owned list, join handle,
/// first `Notified`, all as one raw pointer (the caller wraps each).
///
/// # Safety
/// `memory` must be valid for writes of `layout_of::<F, S>()` bytes, suitably aligned, and must stay allocated until
/// `S::dealloc` is called for it. If `F` is not `Send`, the caller must make sure the task only ever runs (and is
/// only ever cancelled) on the thread that spawns it.
pub(crate) unsafe fn new_task<F, S>(
    memory: NonNull<u8>,
    future: F,
    scheduler: S,
    placement: Placement,
) -> NonNull<Header>
where
    F: Future + 'static,
    S: Schedule,
{
    let cell = memory.cast::<Cell<F, S>>();
    let value = Cell {
        header: Header {
            state: State::new(),
            queue_next: UnsafeCell::new(None),
            owned: UnsafeCell::new(OwnedLinks::default()),
            vtable: Harness::<F, S>::VTABLE,
            id: placement.id,
            pinned_to: placement.pinned_to,
            local: placement.local,
        },
        scheduler,
        stage: UnsafeCell::new(Stage::Running(future)),
        join_waker: UnsafeCell::new(None),
    };
    // SAFETY: the caller guarantees `memory` is valid and aligned for a `Cell<F, S>`.
    unsafe { cell.as_ptr().write(value) };
    cell.cast::<Header>()
}

/// Generic operations on a task of known type.
pub(crate) struct Harness<F: Future, S> {
    cell: NonNull<Cell<F, S>>,
}

impl<F, S> Harness<F, S>
where
    F: Future + 'static,
    S: Schedule,
{
    const VTABLE: &'static Vtable = &Vtable {
        poll: Self::poll_raw,
        schedule: Self::schedule_raw,
        dealloc: Self::dealloc_raw,
        try_read_output: Self::try_read_output_raw,
        drop_join_handle: Self::drop_join_handle_raw,
        shutdown: Self::shutdown_raw,
    };

    /// # Safety
    /// `ptr` must point at a live `Cell<F, S>` (its header's vtable is this harness's).
    unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        Harness { cell: ptr.cast() }
    }

    fn header(&self) -> &Header {
        // SAFETY: the cell is live while any reference exists, and the caller holds one.
        unsafe { &self.cell.as_ref().header }
    }

    fn cell(&self) -> &Cell<F, S> {
        // SAFETY: as in `header`.
        unsafe { self.cell.as_ref() }
    }

    fn raw(&self) -> NonNull<Header> {
        self.cell.cast()
    }

    unsafe fn poll_raw(ptr: NonNull<Header>) {
        // SAFETY: the vtable is only reachable from a header of this type.
        let harness = unsafe { Self::from_raw(ptr) };
        match harness.header().state.transition_to_running() {
            ToRunning::Poll => harness.poll_running(),
            ToRunning::Cancel => {
                harness.cancel_future();
                harness.complete();
            }
            ToRunning::Skip => harness.drop_reference(),
        }
    }

    /// Poll the future; we hold `RUNNING` and one reference.
    fn poll_running(self) {
        // A waker that borrows our reference instead of adding one; clones add their own.
        let waker = ManuallyDrop::new(waker_for(self.raw()));
        let mut cx = Context::from_waker(&waker);
        if self.poll_future(&mut cx).is_ready() {
            self.complete();
            return;
        }
        match self.header().state.transition_to_idle() {
            ToIdle::Idle => {}
            ToIdle::Dealloc => self.dealloc(),
            ToIdle::Reschedule => {
                // SAFETY: `transition_to_idle` kept our reference for the queue and set `NOTIFIED`.
                let task = unsafe { Notified::from_raw(self.raw()) };
                self.cell().scheduler.yield_now(task);
                // The extra reference kept the cell (and the handle we just called through) alive until here.
                self.drop_reference();
            }
            ToIdle::Cancel => {
                self.cancel_future();
                self.complete();
            }
        }
    }

    /// Poll the future in place; on `Ready` (or a panic) drop it and store the output. Caller holds `RUNNING`.
    fn poll_future(&self, cx: &mut Context<'_>) -> Poll<()> {
        let stage = &self.cell().stage;
        let poll = || {
            stage.with_mut(|stage| {
                // SAFETY: `RUNNING` gives us the stage exclusively; the cell never moves, so pinning holds.
                let stage = unsafe { &mut *stage };
                let Stage::Running(future) = stage else { unreachable!("polled a task without a future") };
                // SAFETY: the future lives in the heap cell until dropped in place; it is never moved.
                let future = unsafe { Pin::new_unchecked(future) };
                future.poll(cx)
            })
        };
        let output = match catch_panic(self.header().id, poll) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(error) => Err(error),
        };
        // A panic inside the future leaves it in an unknown state: it is dropped like a finished one. A panic while
        // dropping it is reported instead of the output: it is the more useful news.
        let output = match self.drop_stage() {
            None => output,
            Some(panic) => Err(panic),
        };
        self.store_output(output);
        Poll::Ready(())
    }

    /// Drop whatever the stage holds, leaving `Consumed`; a panic in that drop is caught and returned. Caller holds
    /// `RUNNING`, or the task is complete and the caller owns the output.
    fn drop_stage(&self) -> Option<JoinError> {
        let stage = &self.cell().stage;
        let replace = || {
            stage.with_mut(|stage| {
                // SAFETY: exclusive access, per the caller's contract.
                unsafe { *stage = Stage::Consumed };
            })
        };
        match catch_panic(self.header().id, replace) {
            Ok(()) => None,
            Err(error) => {
                // The old value's drop ran (and panicked), the assignment did not happen: write without dropping.
                stage.with_mut(|stage| {
                    // SAFETY: as above.
                    unsafe { stage.write(Stage::Consumed) };
                });
                Some(error)
            }
        }
    }

    /// Store the output into a `Consumed` stage. Caller holds `RUNNING`.
    fn store_output(&self, output: Result<F::Output, JoinError>) {
        self.cell().stage.with_mut(|stage| {
            // SAFETY: exclusive access (`RUNNING`); the stage is `Consumed`, so nothing is leaked by not dropping it.
            unsafe { stage.write(Stage::Finished(output)) };
        });
    }

    /// Drop the future and store `Cancelled` (or the panic its drop raised). Caller holds `RUNNING`.
    fn cancel_future(&self) {
        let output = match self.drop_stage() {
            None => Err(JoinError::cancelled(self.header().id)),
            Some(panic) => Err(panic),
        };
        self.store_output(output);
    }

    /// `RUNNING` → `COMPLETE`: notify the join handle (or drop the output nobody will read), leave the owned list,
    /// and drop our reference plus the list's.
    fn complete(self) {
        // Leave the owned list first, so that once the join handle sees the output, the runtime's count of live
        // tasks no longer includes this one (a drain waits on that count).
        // SAFETY: a borrowed view of our own reference, for the scheduler to find the task in its list.
        let me = ManuallyDrop::new(unsafe { Task::from_raw(self.raw()) });
        let released = self.cell().scheduler.release(&me);
        let before = self.header().state.transition_to_complete();
        if !before.is_join_interested() {
            // Nobody will read it; `COMPLETE` without join interest makes it ours to drop.
            self.drop_stage();
        } else if before.has_join_waker() {
            self.cell().join_waker.with(|waker| {
                // SAFETY: `JOIN_WAKER` was set when we completed, so the handle no longer touches the trailer.
                if let Some(waker) = unsafe { &*waker } {
                    waker.wake_by_ref();
                }
            });
        }
        let count = match released {
            Some(list_ref) => {
                core::mem::forget(list_ref);
                2
            }
            None => 1,
        };
        if self.header().state.ref_dec_n(count) {
            self.dealloc();
        }
    }

    fn drop_reference(self) {
        if self.header().state.ref_dec() {
            self.dealloc();
        }
    }

    unsafe fn schedule_raw(ptr: NonNull<Header>) {
        // SAFETY: vtable dispatch from a header of this type.
        let harness = unsafe { Self::from_raw(ptr) };
        // SAFETY: the caller accounted a reference for this `Notified`.
        let task = unsafe { Notified::from_raw(ptr) };
        harness.cell().scheduler.schedule(task);
    }

    unsafe fn dealloc_raw(ptr: NonNull<Header>) {
        // SAFETY: vtable dispatch from a header of this type.
        unsafe { Self::from_raw(ptr) }.dealloc();
    }

    /// Last reference gone: drop what is left in place and give the memory back through the scheduler.
    fn dealloc(self) {
        let cell = self.cell.as_ptr();
        // SAFETY: no references remain, so nothing else can touch the cell; each field is dropped exactly once and
        // the scheduler is moved out before its memory is returned through it.
        unsafe {
            let scheduler = core::ptr::read(&(*cell).scheduler);
            core::ptr::drop_in_place(&mut (*cell).stage);
            core::ptr::drop_in_place(&mut (*cell).join_waker);
            core::ptr::drop_in_place(&mut (*cell).header);
            scheduler.dealloc(self.cell.cast(), layout_of::<F, S>());
        }
    }

    unsafe fn try_read_output_raw(ptr: NonNull<Header>, dst: *mut (), waker: &Waker) {
        // SAFETY: vtable dispatch from a header of this type.
        let harness = unsafe { Self::from_raw(ptr) };
        if harness.can_read_output(waker) {
            let output = harness.cell().stage.with_mut(|stage| {
                // SAFETY: `COMPLETE` with join interest: the output is the handle's alone.
                match core::mem::replace(unsafe { &mut *stage }, Stage::Consumed) {
                    Stage::Finished(output) => output,
                    _ => panic!("JoinHandle polled again after it returned Ready"),
                }
            });
            let dst = dst.cast::<Poll<Result<F::Output, JoinError>>>();
            // SAFETY: `JoinHandle<F::Output>` passes a valid `Poll<Result<F::Output, JoinError>>`.
            unsafe { *dst = Poll::Ready(output) };
        }
    }

    /// The join handle's side of the `JOIN_WAKER` protocol: `true` when the output can be taken.
    fn can_read_output(&self, waker: &Waker) -> bool {
        let state = &self.header().state;
        let snapshot = state.load();
        if snapshot.is_complete() {
            return true;
        }
        if snapshot.has_join_waker() {
            let same = self.cell().join_waker.with(|stored| {
                // SAFETY: reading is fine while `JOIN_WAKER` is set: the completer only reads it too.
                unsafe { &*stored }.as_ref().is_some_and(|stored| stored.will_wake(waker))
            });
            if same {
                return false;
            }
            if state.unset_join_waker().is_err() {
                return true;
            }
        }
        self.cell().join_waker.with_mut(|stored| {
            // SAFETY: `JOIN_WAKER` is clear: the trailer is the handle's.
            unsafe { *stored = Some(waker.clone()) };
        });
        state.set_join_waker().is_err()
    }

    unsafe fn drop_join_handle_raw(ptr: NonNull<Header>) {
        // SAFETY: vtable dispatch from a header of this type.
        let harness = unsafe { Self::from_raw(ptr) };
        if harness.header().state.unset_join_interest().is_err() {
            // Completed with join interest: the output is ours to drop.
            harness.drop_stage();
        } else {
            // Not complete, and no join interest any more: the completer will not touch the trailer, so the
            // awaiting task's waker is ours to drop now rather than when this task is freed (which would keep the
            // awaiter, and in bounded mode its slot, alive that long).
            let waker = harness.cell().join_waker.with_mut(|waker| {
                // SAFETY: as above, the trailer is the handle's.
                unsafe { (*waker).take() }
            });
            drop(waker);
        }
        harness.drop_reference();
    }

    unsafe fn shutdown_raw(ptr: NonNull<Header>) {
        // SAFETY: vtable dispatch from a header of this type.
        let harness = unsafe { Self::from_raw(ptr) };
        if harness.header().state.transition_to_cancelled_and_claim() {
            harness.cancel_future();
            // `complete` drops the reference we were given (as if it were a poller's).
            harness.complete();
        } else {
            harness.drop_reference();
        }
    }
}

/// Run `f`, turning a panic into a `JoinError` (std only; without std panics do not unwind into us).
fn catch_panic<R>(id: TaskId, f: impl FnOnce() -> R) -> Result<R, JoinError> {
    #[cfg(feature = "std")]
    {
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).map_err(|payload| JoinError::panic(id, payload))
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = id;
        Ok(f())
    }
}

// ---- wakers: one static vtable, dispatching through the task's own vtable for scheduling ----

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(clone_waker, wake_by_val, wake_by_ref, drop_waker);

fn waker_for(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold RawWaker's contract: the data pointer is a task header kept alive by
    // the reference each waker owns.
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE)) }
}

unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live header (the waker being cloned holds a reference).
    let header = unsafe { &*(data as *const Header) };
    header.state.ref_inc();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn wake_by_val(data: *const ()) {
    // Wake by reference, then drop this waker's reference: the push runs on the task's own scheduler handle, which
    // our reference keeps alive until it returns (tokio does the same, for the same reason).
    // SAFETY: forwarded: `data` is a live header on which this waker holds a reference.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a reference, so the header is live.
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    // SAFETY: as above.
    let header = unsafe { ptr.as_ref() };
    if header.state.transition_to_notified_by_ref() == ToNotified::Submit {
        // SAFETY: the transition added a reference for the `Notified`.
        unsafe { (header.vtable.schedule)(ptr) };
    }
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker holds a reference, so the header is live until we drop it.
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    // SAFETY: as above.
    let header = unsafe { ptr.as_ref() };
    if header.state.ref_dec() {
        // SAFETY: that was the last reference.
        unsafe { (header.vtable.dealloc)(ptr) };
    }
}
