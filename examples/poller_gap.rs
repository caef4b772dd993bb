//! How long does a poller wait between two calls while its worker also runs tasks? The delay a NIC queue sees.
//!
//! A poller on worker 0 stamps the TSC on every call and records the gap since its previous call in an HDR
//! histogram. Scenarios, in one run:
//!
//! - `baseline`: the same recording function in a plain loop on a thread of its own (no runtime): the floor.
//! - `idle`: worker 0 busy-polls with no tasks: the runtime's own per-turn cost.
//! - `flood/budget=N`: worker 0 runs a stream of small pinned tasks (each yields 10 times) while polling, with a task
//!   budget of N per turn: the gap grows with N, which is the knob.
//!
//! `cargo run --release --example poller_gap [SECONDS_PER_SCENARIO]` (default 2). Prints p50/p99/p99.9/max in ns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use weir_schedulers::Idle;
use weir_schedulers::rt::{self, Runtime};

/// Records gaps between consecutive calls.
struct GapRecorder {
    clock: quanta::Clock,
    last: u64,
    histogram: Histogram<u64>,
}

impl GapRecorder {
    fn new(clock: quanta::Clock) -> Self {
        GapRecorder { clock, last: 0, histogram: Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap() }
    }

    #[inline]
    fn tick(&mut self) {
        let now = self.clock.raw();
        if self.last != 0 {
            let gap = self.clock.delta_as_nanos(self.last, now).max(1);
            self.histogram.saturating_record(gap);
        }
        self.last = now;
    }
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<22} calls {:>11}  p50 {:>7} ns  p99 {:>7} ns  p99.9 {:>8} ns  max {:>10} ns",
        h.len(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

fn baseline(clock: &quanta::Clock, seconds: u64) -> Histogram<u64> {
    let mut recorder = GapRecorder::new(clock.clone());
    let until = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut n = 0u64;
    loop {
        recorder.tick();
        n += 1;
        if n.is_multiple_of(1024) && std::time::Instant::now() >= until {
            break;
        }
    }
    recorder.histogram
}

fn on_runtime(clock: &quanta::Clock, seconds: u64, budget: Option<u32>) -> Histogram<u64> {
    let out: Arc<Mutex<Option<Histogram<u64>>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let mut recorder = GapRecorder::new(clock.clone());
    let (slot, stop_flag) = (out.clone(), stop.clone());
    let runtime = Runtime::builder()
        .unpinned_workers(2)
        .task_budget(budget.unwrap_or(64))
        .idle_on(0, Idle::BusyPoll)
        .poller(0, move || {
            if stop_flag.load(Ordering::Relaxed) {
                if !recorder.histogram.is_empty() {
                    let h = std::mem::replace(&mut recorder.histogram, Histogram::new(3).unwrap());
                    *slot.lock().unwrap() = Some(h);
                }
                return false;
            }
            recorder.tick();
            false
        })
        .build()
        .unwrap();
    let flooding = Arc::new(AtomicBool::new(budget.is_some()));
    if budget.is_some() {
        // Keep ~1,000 pinned tasks alive on worker 0: each yields 10 times, then respawns itself.
        fn spawn_one(handle: weir_schedulers::Handle, flooding: Arc<AtomicBool>) {
            let h = handle.clone();
            let _ = handle.spawn_on(0, async move {
                for _ in 0..10 {
                    rt::yield_now().await;
                }
                if flooding.load(Ordering::Relaxed) {
                    spawn_one(h, flooding);
                }
            });
        }
        for _ in 0..1000 {
            spawn_one(runtime.handle().clone(), flooding.clone());
        }
    }
    std::thread::sleep(Duration::from_secs(seconds));
    flooding.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    while out.lock().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = runtime.stats()[0];
    drop(runtime);
    println!(
        "{:<22} worker 0: {} turns, {} tasks polled, busy ratio {:.2}",
        "",
        stats.turns,
        stats.tasks_polled,
        stats.busy_ratio()
    );
    out.lock().unwrap().take().unwrap()
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let clock = quanta::Clock::new();
    println!("poller gap (time between two calls of the same poller), {seconds} s per scenario");
    report("baseline (plain loop)", &baseline(&clock, seconds));
    report("idle", &on_runtime(&clock, seconds, None));
    for budget in [16, 64, 256] {
        report(&format!("flood/budget={budget}"), &on_runtime(&clock, seconds, Some(budget)));
    }
}
