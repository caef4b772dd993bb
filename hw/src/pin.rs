//! Thread pinning on Linux: `sched_setaffinity` / `sched_getaffinity` for the calling thread, safely wrapped.
//!
//! The only `unsafe` in this crate: the `cpu_set_t` macros and the two syscalls.

use std::io;

/// The largest CPU number `cpu_set_t` can hold (glibc's `CPU_SETSIZE`, 1024).
pub const MAX_CPUS: u32 = libc::CPU_SETSIZE as u32;

/// Pin the calling thread to exactly `cpu`, then read the mask back and check that it says so.
///
/// Errors name the CPU: out of range, refused by the kernel (not in the process's cpuset, offline), or a
/// read-back that disagrees.
pub fn pin_current_thread(cpu: u32) -> io::Result<()> {
    set_current_thread_affinity(&[cpu])?;
    let now = current_thread_affinity()?;
    if now != [cpu] {
        return Err(io::Error::other(format!("pinned to cpu {cpu} but the affinity reads back as {now:?}")));
    }
    Ok(())
}

/// Allow the calling thread to run on `cpus` only.
pub fn set_current_thread_affinity(cpus: &[u32]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= MAX_CPUS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} is beyond CPU_SETSIZE")));
        }
        // SAFETY: `cpu` < CPU_SETSIZE, checked above, so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is a valid, initialised cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("sched_setaffinity to cpus {cpus:?}: {err}")));
    }
    Ok(())
}

/// The CPUs the calling thread may run on, ascending.
pub fn current_thread_affinity() -> io::Result<Vec<u32>> {
    // SAFETY: as above, all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the kernel writes at most `size_of::<cpu_set_t>()` bytes into `set`.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every index is < CPU_SETSIZE, inside `set`.
    Ok((0..MAX_CPUS).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu as usize, &set) }).collect())
}

/// The CPU the calling thread is running on right now (`sched_getcpu`), if the kernel says.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: no arguments, no memory touched.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_and_read_back() {
        let allowed = current_thread_affinity().unwrap();
        assert!(!allowed.is_empty());
        let cpu = *allowed.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(current_thread_affinity().unwrap(), vec![cpu]);
            assert_eq!(current_cpu(), Some(cpu));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn bad_cpu_is_an_error_naming_it() {
        let err = set_current_thread_affinity(&[MAX_CPUS + 5]).unwrap_err();
        assert!(err.to_string().contains(&format!("cpu {}", MAX_CPUS + 5)), "{err}");
    }
}
