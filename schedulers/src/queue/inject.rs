//! Intrusive FIFOs of notified tasks, linked through the task header's `queue_next`, so pushing never allocates.
//!
//! - [`Fifo`]: unsynchronised; a worker's own queue of ready pinned tasks.
//! - [`Inject`]: a `Fifo` behind a short lock, multi-producer and multi-consumer: the runtime's global injector and
//!   each worker's inbox of pinned tasks. `len` lives outside the lock so the every-turn empty check is one load.

use core::ptr::NonNull;

use crate::sync::{AtomicUsize, Mutex, Ordering};
use crate::task::{Header, Notified};

/// An unsynchronised intrusive FIFO that owns one `Notified` reference per entry.
#[derive(Debug, Default)]
pub(crate) struct Fifo {
    head: Option<NonNull<Header>>,
    tail: Option<NonNull<Header>>,
    len: usize,
}

// SAFETY: the pointers are task headers whose `Notified` references the FIFO owns; moving the FIFO moves them.
unsafe impl Send for Fifo {}

impl Fifo {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, task: Notified) {
        let ptr = task.into_raw();
        // SAFETY: we own this `Notified`: nobody else links the task, and the header is live.
        unsafe { ptr.as_ref().queue_next.with_mut(|next| *next = None) };
        match self.tail {
            // SAFETY: the tail is live (we own its reference) and linked only through us.
            Some(tail) => unsafe { tail.as_ref().queue_next.with_mut(|next| *next = Some(ptr)) },
            None => self.head = Some(ptr),
        }
        self.tail = Some(ptr);
        self.len += 1;
    }

    /// Move all of `other` to the back of `self`.
    pub(crate) fn append(&mut self, other: &mut Fifo) {
        let Some(first) = other.head.take() else { return };
        match self.tail {
            // SAFETY: as in `push`.
            Some(tail) => unsafe { tail.as_ref().queue_next.with_mut(|next| *next = Some(first)) },
            None => self.head = Some(first),
        }
        self.tail = other.tail.take();
        self.len += core::mem::take(&mut other.len);
    }

    pub(crate) fn pop(&mut self) -> Option<Notified> {
        let head = self.head?;
        // SAFETY: the head is live (we own its reference).
        let next = unsafe { head.as_ref().queue_next.with_mut(|next| (*next).take()) };
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
        self.len -= 1;
        // SAFETY: the entry's `Notified` reference, handed out.
        Some(unsafe { Notified::from_raw(head) })
    }

    /// Split off the first `max` entries (all, if fewer).
    pub(crate) fn split_front(&mut self, max: usize) -> Fifo {
        if max >= self.len {
            return core::mem::take(self);
        }
        let mut front = Fifo::default();
        for _ in 0..max {
            front.push(self.pop().expect("len counted"));
        }
        front
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // Entries still queued are dropped unpolled (shutdown cancels the tasks through the owned lists).
        while let Some(task) = self.pop() {
            task.drop_unpolled();
        }
    }
}

/// A locked [`Fifo`] for many producers and consumers.
#[derive(Debug, Default)]
pub(crate) struct Inject {
    locked: Mutex<Locked>,
    len: AtomicUsize,
}

#[derive(Debug, Default)]
struct Locked {
    fifo: Fifo,
    /// Set by [`Inject::take_all`] at shutdown: later pushes drop their tasks instead of queueing them, so a wake
    /// racing with shutdown cannot leave a task (and, through it, the runtime) referenced from a queue nobody
    /// will ever drain.
    closed: bool,
}

impl Inject {
    pub(crate) fn new() -> Self {
        Inject::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&self, task: Notified) {
        let mut batch = Fifo::default();
        batch.push(task);
        self.push_fifo(batch);
    }

    /// Push several tasks under one lock; they keep their order.
    pub(crate) fn push_batch(&self, tasks: impl Iterator<Item = Notified>) {
        // Link the batch outside the lock: the tasks are ours until published.
        let mut batch = Fifo::default();
        tasks.for_each(|task| batch.push(task));
        if !batch.is_empty() {
            self.push_fifo(batch);
        }
    }

    fn push_fifo(&self, mut batch: Fifo) {
        {
            let mut locked = self.locked.lock();
            if !locked.closed {
                locked.fifo.append(&mut batch);
                self.len.store(locked.fifo.len(), Ordering::Release);
            }
        }
        // Empty unless the queue was closed: dropped here, outside the lock (dropping may free tasks).
        drop(batch);
    }

    pub(crate) fn pop(&self) -> Option<Notified> {
        if self.is_empty() {
            return None;
        }
        let mut locked = self.locked.lock();
        let task = locked.fifo.pop();
        self.len.store(locked.fifo.len(), Ordering::Release);
        task
    }

    /// Take up to `max` tasks under one lock.
    pub(crate) fn pop_batch(&self, max: usize) -> Fifo {
        if max == 0 || self.is_empty() {
            return Fifo::default();
        }
        let mut locked = self.locked.lock();
        let front = locked.fifo.split_front(max);
        self.len.store(locked.fifo.len(), Ordering::Release);
        front
    }

    /// Shutdown: close the queue (later pushes drop their tasks) and take everything in it.
    pub(crate) fn take_all(&self) -> Fifo {
        let mut locked = self.locked.lock();
        locked.closed = true;
        self.len.store(0, Ordering::Release);
        core::mem::take(&mut locked.fifo)
    }
}

impl crate::queue::local::Overflow<Notified> for Inject {
    fn push_batch(&self, items: impl Iterator<Item = Notified>) {
        Inject::push_batch(self, items);
    }
}
