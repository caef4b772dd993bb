//! Thread pinning on Linux: `sched_setaffinity` / `sched_getaffinity`, safely wrapped, and [`verify`]: what
//! `/proc/self/task/<tid>/{status,stat}` say about a pinned thread over a window.
//!
//! The only `unsafe` in this crate: the `cpu_set_t` macros and the syscalls.

use std::io;
use std::time::{Duration, Instant};

use crate::cpuset::CpuSet;

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
    pin_thread(0, cpus)
}

/// The calling thread's kernel id (`gettid`), as `/proc/self/task/<tid>` and [`pin_thread`] take it.
pub fn current_tid() -> u32 {
    // SAFETY: no arguments, no memory touched; cannot fail.
    let tid = unsafe { libc::gettid() };
    // Thread ids are positive.
    tid as u32
}

/// Allow thread `tid` (a kernel thread id, [`current_tid`]; 0 = the calling thread) to run on `cpus` only.
pub fn pin_thread(tid: u32, cpus: &[u32]) -> io::Result<()> {
    let pid = libc::pid_t::try_from(tid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("thread id {tid} is out of range")))?;
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= MAX_CPUS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} is beyond CPU_SETSIZE")));
        }
        // SAFETY: `cpu` < CPU_SETSIZE, checked above, so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: `set` is a valid, initialised cpu_set_t of the size passed; the kernel only reads it.
    let rc = unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("sched_setaffinity of thread {tid} to cpus {cpus:?}: {err}")));
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

/// What the kernel says about a thread over a window: where it may run, where it last ran, and how often it
/// left the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinReport {
    /// The thread.
    pub tid: u32,
    /// The CPU it should be pinned to.
    pub expect_cpu: u32,
    /// `Cpus_allowed_list` of `/proc/<tid>/status` at the end of the window.
    pub allowed: CpuSet,
    /// Field 39 (`processor`) of `/proc/<tid>/stat` at the end of the window.
    pub last_cpu: u32,
    /// `nonvoluntary_ctxt_switches` over the window: preemptions, which must stay 0 on an isolated poll core.
    pub nonvoluntary_ctxt_switches_delta: u64,
    /// `voluntary_ctxt_switches` over the window: the thread blocked or slept.
    pub voluntary_ctxt_switches_delta: u64,
    /// Interrupts the expected CPU took over the window (its `/proc/interrupts` column, every line: device
    /// IRQs, `LOC` timer ticks, IPIs...); `None` when `/proc/interrupts` could not be read.
    pub cpu_interrupts_delta: Option<u64>,
    /// The window as measured (at least the one asked for).
    pub window: Duration,
}

impl PinReport {
    /// What is wrong for a thread pinned to `expect_cpu`: allowed elsewhere too, last ran elsewhere, or
    /// preempted. Empty when all is well.
    pub fn problems(&self, expect_cpu: u32) -> Vec<String> {
        let tid = self.tid;
        let mut problems = Vec::new();
        if self.allowed != CpuSet::new([expect_cpu]) {
            problems.push(format!(
                "thread {tid} may run on cpus {}, not only cpu {expect_cpu}: pin it (sched_setaffinity)",
                self.allowed
            ));
        }
        if self.last_cpu != expect_cpu {
            problems.push(format!("thread {tid} last ran on cpu {}, not cpu {expect_cpu}", self.last_cpu));
        }
        if let Some(n) = self.cpu_interrupts_delta.filter(|&n| n > 0) {
            problems.push(format!(
                "cpu {expect_cpu} took {n} interrupts in {:?} (timer ticks included): move IRQs off it \
                 (`weir hw gen --target irq`) and make it nohz_full",
                self.window
            ));
        }
        if self.nonvoluntary_ctxt_switches_delta > 0 {
            problems.push(format!(
                "thread {tid} was preempted {} times in {:?} (nonvoluntary_ctxt_switches): something else runs \
                 on cpu {expect_cpu}; isolate it (isolcpus, nohz_full) and move its IRQs",
                self.nonvoluntary_ctxt_switches_delta, self.window
            ));
        }
        problems
    }
}

/// Watch thread `tid`, of this process or another (0 = the calling thread, which then sleeps through the window) for
/// `window`: context switches at both ends, allowed CPUs and last CPU at the end.
pub fn verify(tid: u32, expect_cpu: u32, window: Duration) -> io::Result<PinReport> {
    let watch = PinWatch::start(tid, expect_cpu)?;
    std::thread::sleep(window);
    watch.report()
}

/// A watch on one pinned thread from [`PinWatch::start`] until each [`PinWatch::report`]: for a window as
/// long as a run (`weir run` reports the poll loop's thread this way).
#[derive(Debug, Clone)]
pub struct PinWatch {
    tid: u32,
    expect_cpu: u32,
    start: Instant,
    before: TaskStatus,
    interrupts_before: Option<u64>,
}

impl PinWatch {
    /// Start watching thread `tid`, of this process or another (0 = the calling thread), expected on `expect_cpu`.
    pub fn start(tid: u32, expect_cpu: u32) -> io::Result<PinWatch> {
        let tid = if tid == 0 { current_tid() } else { tid };
        let before = TaskStatus::parse(&read_task(tid, "status")?)?;
        let interrupts_before = cpu_interrupts(expect_cpu);
        Ok(PinWatch { tid, expect_cpu, start: Instant::now(), before, interrupts_before })
    }

    /// What happened since [`PinWatch::start`]: switches, allowed CPUs and the CPU it last ran on.
    pub fn report(&self) -> io::Result<PinReport> {
        let tid = self.tid;
        let after = TaskStatus::parse(&read_task(tid, "status")?)?;
        let stat = read_task(tid, "stat")?;
        let last_cpu = stat_processor(&stat).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("/proc/self/task/{tid}/stat: no processor field"))
        })?;
        Ok(PinReport {
            tid,
            expect_cpu: self.expect_cpu,
            allowed: after.allowed,
            last_cpu,
            nonvoluntary_ctxt_switches_delta: after.nonvoluntary.saturating_sub(self.before.nonvoluntary),
            voluntary_ctxt_switches_delta: after.voluntary.saturating_sub(self.before.voluntary),
            cpu_interrupts_delta: cpu_interrupts(self.expect_cpu)
                .zip(self.interrupts_before)
                .map(|(after, before)| after.saturating_sub(before)),
            window: self.start.elapsed(),
        })
    }
}

/// Every interrupt `/proc/interrupts` counts for `cpu` so far (the column headed `CPU<cpu>`, summed).
fn cpu_interrupts(cpu: u32) -> Option<u64> {
    interrupts_column_sum(&std::fs::read_to_string("/proc/interrupts").ok()?, cpu)
}

/// The sum of `cpu`'s column: the header names the columns (`CPU0 CPU1 ...`, offline CPUs left out), each
/// line is `NAME: count count ... description`.
fn interrupts_column_sum(text: &str, cpu: u32) -> Option<u64> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let column = header.split_whitespace().position(|h| h.strip_prefix("CPU") == Some(cpu.to_string().as_str()))?;
    Some(
        lines
            .filter_map(|line| line.split_once(':'))
            .filter_map(|(_, counts)| counts.split_whitespace().nth(column)?.parse::<u64>().ok())
            .sum(),
    )
}

/// `/proc/TID/...`: the kernel serves every thread id there, of this process or another.
fn read_task(tid: u32, name: &str) -> io::Result<String> {
    let path = format!("/proc/{tid}/{name}");
    std::fs::read_to_string(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// The lines of `/proc/<pid>/task/<tid>/status` [`verify`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskStatus {
    allowed: CpuSet,
    voluntary: u64,
    nonvoluntary: u64,
}

impl TaskStatus {
    fn parse(text: &str) -> io::Result<TaskStatus> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("task status: no `{key}:` line")))
        };
        let bad = |key: &str| io::Error::new(io::ErrorKind::InvalidData, format!("task status: bad `{key}:` line"));
        Ok(TaskStatus {
            allowed: CpuSet::parse_list(field("Cpus_allowed_list")?).map_err(|_| bad("Cpus_allowed_list"))?,
            voluntary: field("voluntary_ctxt_switches")?.parse().map_err(|_| bad("voluntary_ctxt_switches"))?,
            nonvoluntary: field("nonvoluntary_ctxt_switches")?
                .parse()
                .map_err(|_| bad("nonvoluntary_ctxt_switches"))?,
        })
    }
}

/// Field 39 (`processor`) of a `stat` line. The command (field 2) is in parentheses and may hold spaces and
/// `)`, so fields are counted after the last `)`: field 3 comes first there.
fn stat_processor(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(39 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

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

    /// A thread running `body` until told to stop, and its tid.
    fn spawn(body: fn(&AtomicBool)) -> (u32, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            tx.send(current_tid()).unwrap();
            body(&flag);
        });
        (rx.recv().unwrap(), stop, handle)
    }

    #[test]
    fn verify_a_spinning_thread_pinned_from_outside() {
        let cpu = *current_thread_affinity().unwrap().last().unwrap();
        let (tid, stop, handle) = spawn(|stop| {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        assert_ne!(tid, current_tid());
        pin_thread(tid, &[cpu]).unwrap();
        let report = verify(tid, cpu, Duration::from_millis(200)).unwrap();
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
        assert_eq!(report.tid, tid);
        assert_eq!(report.allowed, CpuSet::new([cpu]));
        assert_eq!(report.last_cpu, cpu);
        assert!(report.window >= Duration::from_millis(200));
        // This VM is shared and not isolated, so preemptions and interrupts may show; the placement checks
        // must pass.
        let problems = report.problems(cpu);
        assert!(problems.iter().all(|p| p.contains("preempted") || p.contains("interrupts")), "{problems:?}");
        let noisy = report.nonvoluntary_ctxt_switches_delta > 0 || report.cpu_interrupts_delta.unwrap() > 0;
        assert_eq!(problems.is_empty(), !noisy);
    }

    #[test]
    fn verify_counts_voluntary_switches_of_a_sleeping_thread() {
        let (tid, stop, handle) = spawn(|stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let allowed = current_thread_affinity().unwrap();
        let report = verify(tid, allowed[0], Duration::from_millis(100)).unwrap();
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
        assert!(report.voluntary_ctxt_switches_delta > 1, "{report:?}");
        assert_eq!(report.allowed, CpuSet::new(allowed.iter().copied()));
        assert!(allowed.contains(&report.last_cpu));
        if allowed.len() > 1 {
            assert!(report.problems(allowed[0]).iter().any(|p| p.contains("may run on")));
        }
    }

    #[test]
    fn interrupt_columns_are_summed_per_cpu() {
        let text = "           CPU0       CPU2       \n  0:         40          2   IO-APIC   2-edge      timer\n\
                    24:          1          0  IO-APIC   5-edge      ACPI:Ged\n\
                    LOC:     100000      70000   Local timer interrupts\n\
                    ERR:          0\n";
        assert_eq!(interrupts_column_sum(text, 0), Some(100_041));
        assert_eq!(interrupts_column_sum(text, 2), Some(70_002));
        assert_eq!(interrupts_column_sum(text, 1), None, "CPU1 is offline: no column");
        // The live file: this CPU's count only grows.
        let cpu = current_cpu().unwrap();
        let before = cpu_interrupts(cpu).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(cpu_interrupts(cpu).unwrap() >= before);
    }

    #[test]
    fn verify_the_calling_thread_and_a_missing_one() {
        let report = verify(0, 0, Duration::from_millis(5)).unwrap();
        assert_eq!(report.tid, current_tid());
        assert!(report.voluntary_ctxt_switches_delta >= 1, "the sleep itself: {report:?}");
        let err = verify(u32::MAX - 1, 0, Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains(&format!("/proc/{}/status", u32::MAX - 1)), "{err}");
    }

    #[test]
    fn stat_processor_counts_after_the_last_paren() {
        let tail: Vec<String> = (3..=52).map(|f| if f == 39 { "7".to_string() } else { f.to_string() }).collect();
        let stat = format!("1234 (a) b (c) {}\n", tail.join(" "));
        assert_eq!(stat_processor(&stat), Some(7));
        assert_eq!(stat_processor("1234 (x) S 1"), None);
    }

    #[test]
    fn task_status_and_problems() {
        let status = "Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n\
                      voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        let s = TaskStatus::parse(status).unwrap();
        assert_eq!(s, TaskStatus { allowed: CpuSet::new([0, 1]), voluntary: 12, nonvoluntary: 3 });
        assert!(TaskStatus::parse("Cpus_allowed_list:\t0\n").unwrap_err().to_string().contains("voluntary"));
        let report = PinReport {
            tid: 9,
            expect_cpu: 4,
            allowed: CpuSet::new([4, 20]),
            last_cpu: 20,
            nonvoluntary_ctxt_switches_delta: 2,
            voluntary_ctxt_switches_delta: 0,
            cpu_interrupts_delta: Some(250),
            window: Duration::from_secs(1),
        };
        let problems = report.problems(4);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("4,20") && problems[1].contains("cpu 20"), "{problems:?}");
        assert!(problems[2].contains("250 interrupts") && problems[3].contains("2 times"), "{problems:?}");
        let ok = PinReport {
            allowed: CpuSet::new([4]),
            last_cpu: 4,
            nonvoluntary_ctxt_switches_delta: 0,
            cpu_interrupts_delta: Some(0),
            ..report
        };
        assert!(ok.problems(4).is_empty());
    }
}
