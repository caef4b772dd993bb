//! Tasks: a spawned future in one allocation, a state word, wakers, join handles, cancellation.
//!
//! - [`raw`]: the allocation (header, scheduler handle, future/output, join waker) and its vtable.
//! - [`state`]: the state word and its transitions; the protocol is written down there.
//! - [`list`]: the owned-tasks lists that let shutdown find and cancel idle tasks (no leaks).
//! - [`storage`]: where task memory comes from: the global allocator, or a slab reserved at start-up.
//!
//! The scheduler plugs in through [`Schedule`]; the rest of the crate sees [`Task`] (a counted reference),
//! [`Notified`] (a reference that sits in a run queue) and [`JoinHandle`].

pub(crate) mod list;
pub(crate) mod raw;
pub(crate) mod state;
pub(crate) mod storage;

use core::alloc::Layout;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};

pub(crate) use raw::{Header, Placement, UNPINNED};

/// A task's id: unique within its runtime, increasing in spawn order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How the scheduler hooks into tasks.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Push a woken task onto a run queue.
    fn schedule(&self, task: Notified);

    /// Push a task that woke itself while it ran (e.g. `yield_now`): behind other ready work.
    fn yield_now(&self, task: Notified) {
        self.schedule(task);
    }

    /// The task completed: take it out of its owned list, returning the list's reference if it was there.
    fn release(&self, task: &Task) -> Option<Task>;

    /// Give the task's memory back.
    ///
    /// # Safety
    /// `ptr` came from this scheduler's storage for `layout`, and nothing refers to it any more.
    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout);
}

/// One counted reference to a task. Dropping it drops the reference.
pub(crate) struct Task {
    ptr: NonNull<Header>,
}

// SAFETY: a `Task` only touches the header's atomics and dispatches through the vtable; the future itself is only
// polled through `Notified::run`, which the scheduler keeps on the right thread for local tasks.
unsafe impl Send for Task {}
// SAFETY: as above; `&Task` exposes only atomic state and immutable header fields.
unsafe impl Sync for Task {}

impl Task {
    /// # Safety
    /// The caller hands over one reference it owns for `ptr`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Task {
        Task { ptr }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: our reference keeps the header alive.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    pub(crate) fn id(&self) -> TaskId {
        self.header().id
    }

    /// Give up the reference without dropping it.
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.ptr;
        core::mem::forget(self);
        ptr
    }

    /// Runtime shutdown: cancel the task if it is idle, else mark it so its owner cancels it; consumes this
    /// reference.
    pub(crate) fn shutdown(self) {
        let ptr = self.into_raw();
        // SAFETY: the header is live (we held a reference, now handed to `shutdown`).
        unsafe { (ptr.as_ref().vtable.shutdown)(ptr) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.header().state.ref_dec() {
            // SAFETY: that was the last reference.
            unsafe { (self.header().vtable.dealloc)(self.ptr) }
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("id", &self.id()).field("state", &self.header().state.load()).finish()
    }
}

/// A task reference that sits in a run queue: running it consumes it.
#[derive(Debug)]
pub(crate) struct Notified(Task);

impl Notified {
    /// # Safety
    /// The caller hands over one reference for which `NOTIFIED` was set.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(Task { ptr })
    }

    pub(crate) fn into_raw(self) -> NonNull<Header> {
        self.0.into_raw()
    }

    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Poll the task (or cancel it, or drop a stale entry).
    pub(crate) fn run(self) {
        let ptr = self.into_raw();
        // SAFETY: the header is live; `poll` consumes the reference we hand it.
        unsafe { (ptr.as_ref().vtable.poll)(ptr) }
    }

    /// Runtime shutdown: the entry is dropped without polling; the owned-list sweep cancels the task itself.
    pub(crate) fn drop_unpolled(self) {
        drop(self.0)
    }
}

/// Create a task in `memory`: returns the owned-list reference, the first `Notified` and the `JoinHandle`.
///
/// # Safety
/// As [`raw::new_task`]: `memory` fits `raw::layout_of::<F, S>()` and is returned through `S::dealloc`; a `!Send`
/// future must only be run and cancelled on the spawning thread.
pub(crate) unsafe fn new_task<F, S>(
    memory: NonNull<u8>,
    future: F,
    scheduler: S,
    placement: Placement,
) -> (Task, Notified, JoinHandle<F::Output>)
where
    F: Future + 'static,
    S: Schedule,
{
    // SAFETY: forwarded contract.
    let ptr = unsafe { raw::new_task(memory, future, scheduler, placement) };
    // SAFETY: `State::new` counts exactly these three references.
    unsafe { (Task::from_raw(ptr), Notified::from_raw(ptr), JoinHandle::from_raw(ptr)) }
}

/// Awaits a task's output: `Ok(output)`, or `Err` if it was cancelled or panicked.
///
/// Dropping the handle detaches the task (it keeps running). [`JoinHandle::abort`] cancels it.
pub struct JoinHandle<T> {
    ptr: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the handle moves the output to whichever thread polls it, so `T: Send` is required; everything else it
// touches is atomic.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only offers `abort`, `is_finished` and `id`, which touch atomics.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// Hands over the join-handle reference of a task whose output type is `T`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        JoinHandle { ptr, _output: PhantomData }
    }

    fn header(&self) -> &Header {
        // SAFETY: our reference keeps the header alive.
        unsafe { self.ptr.as_ref() }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// True once the task finished, was cancelled, or panicked.
    pub fn is_finished(&self) -> bool {
        self.header().state.load().is_complete()
    }

    /// Cancel the task: it is dropped (on its own worker) at its next scheduling point, and this handle resolves to
    /// a cancelled [`JoinError`]. No effect on a finished task.
    pub fn abort(&self) {
        if self.header().state.transition_to_cancelled_remote() {
            // SAFETY: the transition set `NOTIFIED` and counted a reference for the `Notified`.
            unsafe { (self.header().vtable.schedule)(self.ptr) };
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: `out` has the type the task's harness writes for output `T`.
        unsafe { (self.header().vtable.try_read_output)(self.ptr, &mut out as *mut _ as *mut (), cx.waker()) };
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: hands our reference to the harness.
        unsafe { (self.header().vtable.drop_join_handle)(self.ptr) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id()).finish()
    }
}

/// Why a task gave no output.
pub struct JoinError {
    id: TaskId,
    repr: Repr,
}

enum Repr {
    Cancelled,
    #[cfg(feature = "std")]
    Panic(alloc::boxed::Box<dyn core::any::Any + Send + 'static>),
}

impl JoinError {
    pub(crate) fn cancelled(id: TaskId) -> Self {
        JoinError { id, repr: Repr::Cancelled }
    }

    #[cfg(feature = "std")]
    pub(crate) fn panic(id: TaskId, payload: alloc::boxed::Box<dyn core::any::Any + Send + 'static>) -> Self {
        JoinError { id, repr: Repr::Panic(payload) }
    }

    /// The task it is about.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancelled by `abort` or by runtime shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        !self.is_cancelled()
    }

    /// The panic payload, to resume it or read its message; `Err(self)` if the task was cancelled.
    #[cfg(feature = "std")]
    pub fn try_into_panic(self) -> Result<alloc::boxed::Box<dyn core::any::Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Cancelled => None,
            #[cfg(feature = "std")]
            Repr::Panic(payload) => Some(
                payload
                    .downcast_ref::<&'static str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<alloc::string::String>().map(|s| s.as_str()))
                    .unwrap_or("(non-string payload)"),
            ),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.panic_message() {
            None => write!(f, "task {} was cancelled", self.id),
            Some(message) => write!(f, "task {} panicked: {message}", self.id),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::error::Error for JoinError {}
