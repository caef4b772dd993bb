//! Owned-task lists: every live task is linked into one, so shutdown can find the idle ones (parked on a waker
//! nobody will fire) and cancel them. Without this, an idle task and its wakers would keep each other alive: a leak.
//!
//! Intrusive and doubly linked through [`OwnedLinks`](super::raw::OwnedLinks) in the header, so linking allocates
//! nothing; sharded by task id so that workers spawning and completing at once rarely meet on a lock.

use alloc::boxed::Box;
use core::ptr::NonNull;

use super::{Header, Task};
use crate::sync::{CachePadded, Mutex};

/// One list (a shard).
#[derive(Debug, Default)]
pub(crate) struct List {
    head: Option<NonNull<Header>>,
    len: usize,
    closed: bool,
}

// SAFETY: the raw pointers are task headers, which are `Sync`-safe to link and unlink under the list's lock.
unsafe impl Send for List {}

impl List {
    /// Link a task (taking over the list's reference). Fails, handing it back, once the list is closed.
    pub(crate) fn push(&mut self, task: Task) -> Result<(), Task> {
        if self.closed {
            return Err(task);
        }
        let ptr = task.into_raw();
        // SAFETY: under the list lock; `ptr` is live (the list now holds its reference) and not linked anywhere.
        unsafe {
            ptr.as_ref().owned.with_mut(|links| {
                (*links).prev = None;
                (*links).next = self.head;
                (*links).linked = true;
            });
            if let Some(head) = self.head {
                head.as_ref().owned.with_mut(|links| (*links).prev = Some(ptr));
            }
        }
        self.head = Some(ptr);
        self.len += 1;
        Ok(())
    }

    /// Unlink `task` if it is in this list, returning the list's reference.
    pub(crate) fn remove(&mut self, task: &Task) -> Option<Task> {
        let ptr = task.header_ptr();
        // SAFETY: under the list lock; the caller's reference keeps the header alive, and linked neighbours are
        // alive because the list holds a reference to each.
        unsafe {
            let (prev, next) = ptr.as_ref().owned.with_mut(|links| {
                if !(*links).linked {
                    return None;
                }
                (*links).linked = false;
                Some(((*links).prev.take(), (*links).next.take()))
            })?;
            match prev {
                Some(prev) => prev.as_ref().owned.with_mut(|links| (*links).next = next),
                None => self.head = next,
            }
            if let Some(next) = next {
                next.as_ref().owned.with_mut(|links| (*links).prev = prev);
            }
            self.len -= 1;
            Some(Task::from_raw(ptr))
        }
    }

    /// Unlink the first task, returning the list's reference.
    pub(crate) fn pop(&mut self) -> Option<Task> {
        let head = self.head?;
        // SAFETY: the list's reference keeps `head` alive; borrowed just long enough to unlink it.
        let borrowed = core::mem::ManuallyDrop::new(unsafe { Task::from_raw(head) });
        self.remove(&borrowed)
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Sharded owned-task lists for `Send` tasks.
#[derive(Debug)]
pub(crate) struct OwnedTasks {
    shards: Box<[CachePadded<Mutex<List>>]>,
    mask: u64,
}

impl OwnedTasks {
    /// `shards` is rounded up to a power of two.
    pub(crate) fn new(shards: usize) -> Self {
        let count = shards.max(1).next_power_of_two();
        OwnedTasks {
            shards: (0..count).map(|_| CachePadded(Mutex::new(List::default()))).collect(),
            mask: count as u64 - 1,
        }
    }

    fn shard(&self, task: &Task) -> &Mutex<List> {
        &self.shards[(task.id().0 & self.mask) as usize]
    }

    pub(crate) fn push(&self, task: Task) -> Result<(), Task> {
        self.shard(&task).lock().push(task)
    }

    pub(crate) fn remove(&self, task: &Task) -> Option<Task> {
        self.shard(task).lock().remove(task)
    }

    /// Close every shard (later pushes fail) and shut down every task still linked, one at a time, outside the
    /// lock (shutting a task down may complete it, which takes the lock to unlink).
    pub(crate) fn close_and_shutdown_all(&self) {
        for shard in self.shards.iter() {
            shard.lock().close();
            loop {
                let task = shard.lock().pop();
                match task {
                    Some(task) => task.shutdown(),
                    None => break,
                }
            }
        }
    }

    /// Tasks still linked (spawned, not yet completed).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}
