//! `weir run`: a feed from a NIC queue (or an A/B pair) through the poll loop on a pinned
//! executor worker, into DBN records.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir::dbn_out::DbnFile;
use weir::lcore::{PollLoop, RunReport, StopWhen};
use weir::nic::RxQueue;
use weir::nic::any::AnyRx;
use weir::nic::spec::{Group, NicSpec};
use weir_schedulers::rt::{Runtime, Shutdown};

use crate::{BusArgs, PublisherArgs, bus_summary};

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// The A line: `pcap:FILE[,pace=max|recorded|xN]`, `udp:GROUP:PORT[,iface=NAME]` or
    /// `dpdk:DEVICE[,queue=0][,group=GROUP:PORT]` (queue 0 only: no traffic steering yet).
    /// Required unless `--layout` gives it.
    #[arg(long, value_name = "SPEC", required_unless_present = "layout")]
    nic: Option<String>,
    /// The B line of the same feed: the first copy of each segment wins.
    #[arg(long = "b-nic", value_name = "SPEC")]
    b_nic: Option<String>,
    /// Pin the poll loop's worker to this CPU (unpinned by default).
    #[arg(long, value_name = "N", conflicts_with = "layout")]
    cpu: Option<u32>,
    /// Start from a layout file, checked against this machine first (any error: nothing starts, exit 2): the
    /// rx core's CPU, its NIC (`source`, or `dpdk:PCI`) and the ring it produces (`--bus` default) come
    /// from it.
    #[arg(long, value_name = "LAYOUT.toml")]
    layout: Option<PathBuf>,
    /// With `--layout`: which rx core to run (its CPU; default: the layout's first rx core).
    #[arg(long, value_name = "CPU", requires = "layout")]
    rx_cpu: Option<u32>,
    /// Write the DBN records to OUT (`.dbn`, or `.dbn.zst` for zstd).
    #[arg(long, value_name = "OUT.dbn[.zst]")]
    out: Option<PathBuf>,
    /// Write the counters as one JSON object to PATH (`-` for stdout): `weir replay`'s keys plus
    /// `nic` (per queue) and `filtered`.
    #[arg(long = "stats-json", value_name = "PATH|-")]
    stats_json: Option<String>,
    /// End the run after MS milliseconds without a frame (a drained device, a quiet feed).
    #[arg(long = "idle-exit", value_name = "MS")]
    idle_exit: Option<u64>,
    /// DPDK EAL arguments, one string (default: `-l 0 --no-huge -m 256 --no-shconf --no-pci
    /// --no-telemetry --log-level=lib.eal:error`).
    #[arg(long, value_name = "'EAL ARGS'", allow_hyphen_values = true)]
    eal: Option<String>,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 1.0)]
    progress_every: f64,
    /// No progress and no summary.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    publishers: PublisherArgs,
    #[command(flatten)]
    bus: BusArgs,
}

/// Set by SIGINT / SIGTERM: the run ends cleanly (DBN header written, stats reported).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGNALLED.store(true, Ordering::Relaxed);
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the handler only stores
        // to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

pub(crate) fn run(mut args: RunArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("weir run: {msg}");
        ExitCode::from(code)
    };
    let mut specs: Vec<NicSpec> = Vec::new();
    if let Some(path) = args.layout.clone() {
        match from_layout(&path, &mut args) {
            Ok(spec) => specs.push(spec),
            Err(e) => return fail(2, e),
        }
    }
    for text in args.nic.iter().chain(&args.b_nic) {
        match NicSpec::parse(text) {
            Ok(spec) => specs.push(spec),
            Err(e) => return fail(2, e.to_string()),
        }
    }
    if let Some(cpu) = args.cpu
        && let Err(e) = check_cpu(cpu)
    {
        return fail(2, e);
    }
    let eal: Vec<String> =
        args.eal.as_deref().map(|e| e.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let mut lines = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for spec in &specs {
        if let NicSpec::Dpdk { groups: g, .. } = spec {
            groups.extend(g);
        }
        match AnyRx::open(spec, &eal) {
            Ok(q) => lines.push(q),
            Err(e) => return fail(2, e.to_string()),
        }
    }
    let records = match &args.out {
        Some(path) => match DbnFile::create(path) {
            Ok(f) => f,
            Err(e) => return fail(1, e.to_string()),
        },
        None => DbnFile::counting(),
    };
    // Created here, its pages first touched from the poll loop's CPU (its NUMA node).
    let publisher = match args.bus.publisher(args.cpu) {
        Ok(p) => p,
        Err(e) => {
            records.abandon();
            return fail(1, e);
        }
    };
    let poll_loop = PollLoop::with_observer(lines, args.publishers.config(), (records, publisher), ())
        .admit(&groups)
        .stop_when(StopWhen { idle_ns: args.idle_exit.map(|ms| ms * 1_000_000) });
    let live = poll_loop.live();
    let names: Vec<String> = poll_loop.lines().iter().map(|q| q.name()).collect();

    // One worker runs the poll loop as its poller: pinned with --cpu, busy-polling.
    let (done_tx, done_rx) = mpsc::channel();
    let builder = Runtime::builder().name("weir-lcore");
    let builder = match args.cpu {
        Some(cpu) => builder.workers([cpu]),
        None => builder.unpinned_workers(1),
    };
    let runtime = match builder.poller(0, poll_loop.into_poller(done_tx)).build() {
        Ok(rt) => rt,
        Err(e) => return fail(1, format!("starting the worker: {e}")),
    };
    // The worker's thread, watched for the run: pinned where it should be, and how often it was preempted.
    let pin_watch = args.cpu.and_then(|cpu| {
        let tid = runtime.spawn_on(0, async { weir_hw::pin::current_tid() }).ok()?;
        weir_hw::pin::PinWatch::start(runtime.block_on(tid).ok()?, cpu).ok()
    });
    if !args.quiet {
        eprintln!(
            "weir run: {} on {}",
            names.join(" + "),
            args.cpu.map(|c| format!("cpu {c}")).unwrap_or_else(|| "an unpinned worker".into())
        );
    }
    catch_signals();
    let start = Instant::now();
    let every = Duration::from_secs_f64(args.progress_every.max(0.0));
    let tick = if every.is_zero() { Duration::from_millis(50) } else { every.min(Duration::from_millis(50)) };
    let mut next_progress = start + every;
    let mut last = (0u64, start);
    let mut finished = loop {
        match done_rx.recv_timeout(tick) {
            Ok(l) => break l,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if SIGNALLED.load(Ordering::Relaxed) {
                    // The loop sees it at its next poll and hands itself back.
                    live.stop.store(true, Ordering::Relaxed);
                }
                if !args.quiet && !every.is_zero() && Instant::now() >= next_progress {
                    next_progress += every;
                    let now = Instant::now();
                    let packets = live.packets.load(Ordering::Relaxed);
                    let pps = (packets - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
                    eprintln!(
                        "{:>7.1}s  {packets} packets ({pps:.0}/s)  {} messages  {} records",
                        now.duration_since(start).as_secs_f64(),
                        live.messages.load(Ordering::Relaxed),
                        live.records.load(Ordering::Relaxed)
                    );
                    last = (packets, now);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = runtime.shutdown(Shutdown::Cancel);
                // The loop (and its DBN file) went down with the worker: its drop leaves
                // OUT.partial; say so.
                let partial = args.out.as_ref().map(|o| format!(" ({}.partial holds the records made)", o.display()));
                return fail(
                    1,
                    format!(
                        "the poll loop's worker ended without handing back its state{}",
                        partial.unwrap_or_default()
                    ),
                );
            }
        }
    };
    let pin_line = pin_watch.as_ref().and_then(|w| w.report().ok()).map(|r| pin_summary(&r));
    let _ = runtime.shutdown(Shutdown::Cancel);
    let mut report: RunReport = finished.report();
    report.replay.dbn_records = finished.books().sink().inner.0.counts();
    let records = std::mem::replace(&mut finished.books_mut().sink_mut().inner.0, DbnFile::counting());
    let bus_line = finished.books_mut().sink_mut().inner.1.take().map(|p| {
        let line = bus_summary(&p);
        p.finish();
        line
    });
    if let Err(e) = records.finish(finished.books()) {
        return fail(1, format!("writing DBN: {e}"));
    }
    if let Some(dest) = &args.stats_json {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(j) => j,
            Err(e) => return fail(1, format!("serialising stats: {e}")),
        };
        let written =
            if dest == "-" { writeln!(io::stdout().lock(), "{json}") } else { std::fs::write(dest, json + "\n") };
        if let Err(e) = written {
            return fail(1, format!("writing {dest}: {e}"));
        }
    }
    if !args.quiet {
        let text = summary(&report, args.out.as_deref())
            + bus_line.as_deref().unwrap_or("")
            + pin_line.as_deref().unwrap_or("");
        // Like `weir replay`: the summary on stdout, unless the JSON has it.
        let _ = if args.stats_json.as_deref() == Some("-") {
            io::stderr().write_all(text.as_bytes())
        } else {
            io::stdout().write_all(text.as_bytes())
        };
    }
    ExitCode::SUCCESS
}

/// Check the layout on this machine and take the rx core's CPU, NIC and ring from it. `--nic` with `--layout`
/// is refused: one source of truth.
fn from_layout(path: &std::path::Path, args: &mut RunArgs) -> Result<NicSpec, String> {
    if args.nic.is_some() {
        return Err("--nic and --layout: the layout names the NIC; give one or the other".into());
    }
    let validated = crate::hw::validated_layout(path, args.quiet)?;
    let rx = validated.rx()?;
    let plan = match args.rx_cpu {
        Some(cpu) => rx
            .into_iter()
            .find(|p| p.cpu == cpu)
            .ok_or_else(|| format!("--rx-cpu {cpu}: no rx core on that CPU in {}", path.display()))?,
        None => rx.into_iter().next().ok_or_else(|| format!("{}: no [[core]] with role = \"rx\"", path.display()))?,
    };
    args.cpu = Some(plan.cpu);
    if args.bus.bus.is_none()
        && let Some(ring) = &plan.ring
    {
        args.bus.bus = Some(ring.clone());
        if let Some(bytes) = validated.ring_capacity(ring) {
            args.bus.bus_capacity = bytes;
        }
    }
    Ok(plan.spec)
}

/// The poll loop's thread over the run: where it may run and ran, and how often something else took its CPU.
fn pin_summary(r: &weir_hw::pin::PinReport) -> String {
    let mut s = format!(
        "  pinning: thread {} on cpu {} (allowed {}, last ran on {}), {} preemptions, {} voluntary switches and \
         {} interrupts on cpu {} in {:.3} s\n",
        r.tid,
        r.expect_cpu,
        r.allowed,
        r.last_cpu,
        r.nonvoluntary_ctxt_switches_delta,
        r.voluntary_ctxt_switches_delta,
        r.cpu_interrupts_delta.map_or("?".to_string(), |n| n.to_string()),
        r.expect_cpu,
        r.window.as_secs_f64()
    );
    for problem in r.problems(r.expect_cpu) {
        s += &format!("  pinning problem: {problem}\n");
    }
    s
}

fn check_cpu(cpu: u32) -> Result<(), String> {
    let allowed = weir_hw::pin::current_thread_affinity().map_err(|e| format!("--cpu {cpu}: {e}"))?;
    if allowed.contains(&cpu) {
        Ok(())
    } else {
        Err(format!("--cpu {cpu}: not a CPU this process may run on (allowed: {allowed:?})"))
    }
}

fn summary(r: &RunReport, out: Option<&std::path::Path>) -> String {
    use std::fmt::Write as _;
    let p = &r.replay;
    let mut s = String::new();
    for q in &r.nic {
        let st = &q.stats;
        let _ = writeln!(
            s,
            "  {}: {} packets, {} bytes, {} bursts, missed {}, no buffer {}, errors {}",
            q.name, st.packets, st.bytes, st.bursts, st.missed, st.no_buffer, st.errors
        );
    }
    let _ = writeln!(
        s,
        "  packets {}   segments {} ({} heartbeats)   messages {}   records {}   filtered {}",
        p.packets, p.segments, p.heartbeats, p.messages, r.records, r.filtered
    );
    let _ = writeln!(
        s,
        "  gaps {} ({} messages missing)   late fills {}   duplicates {} messages   other traffic {}   errors {}",
        p.gaps.count, p.gaps.messages_missing, p.late_fill_messages, p.duplicates.messages, p.other_traffic, p.errors
    );
    let recs: Vec<String> = p.dbn_records.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  DBN records: {}", if recs.is_empty() { "none".to_owned() } else { recs.join(", ") });
    if let Some(b) = &p.books {
        let _ = writeln!(
            s,
            "  books: {} instruments   book errors {}   crossed {}   marked maybe-bad {}   growths {}",
            b.instruments, b.stats.book_errors, b.stats.crossed_books, b.stats.books_marked_bad, b.growths
        );
    }
    if let Some(a) = &p.arbitration {
        let _ = writeln!(
            s,
            "  A/B: {} segments from A, {} from B, {} dropped as already seen",
            a.taken_a, a.taken_b, a.dropped
        );
    }
    if let Some(out) = out {
        let _ = writeln!(s, "  wrote {}", out.display());
    }
    let _ = writeln!(s, "  {:.3} s   {:.0} messages/s", p.elapsed_s, p.messages_per_s);
    for e in &p.first_errors {
        let _ = writeln!(s, "  error: {e}");
    }
    s
}
