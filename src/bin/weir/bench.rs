//! `weir bench latency` (see `weir::harness`) and `weir bench bus` (see `bench_bus`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use weir::harness::{self, Case, Depth, HEADER, Measure, Start};
use weir::nic::spec::Pace;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Wire-to-record latency: open-loop replay at fixed multiples of recorded pace through the
    /// poll loop, per-packet latency percentiles, with a peel-only baseline and the clock's floor.
    Latency(LatencyArgs),
    /// The shared-memory bus: publish -> consumer-read latency across processes and cores, open
    /// loop at several rates and record sizes, and throughput, with an in-process SPSC ring and a
    /// Unix datagram socket as baselines in the same run.
    Bus(crate::bench_bus::BusArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct LatencyArgs {
    /// The capture to replay.
    #[arg(default_value = "tests/data/iex/timpalpant-go-iex/TOPS16.pcapng.gz")]
    file: PathBuf,
    /// Paces, as multiples of the recorded pace.
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 8.0])]
    pace: Vec<f64>,
    /// Also run at max pace (as fast as polled: shows queueing inside a burst).
    #[arg(long)]
    max: bool,
    /// Seconds per paced case at most (the capture may span longer).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Pin the measuring thread to this CPU.
    #[arg(long, value_name = "N")]
    cpu: Option<u32>,
    /// Lock and pre-fault all memory first (`mlockall`): no page fault on first touch of the
    /// books' reserved capacity. Needs root or a large RLIMIT_MEMLOCK.
    #[arg(long)]
    mlock: bool,
    /// Write the histograms as an HdrHistogram interval log.
    #[arg(long, value_name = "OUT.hlog")]
    hlog: Option<PathBuf>,
    /// Write the percentiles as JSON.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

pub(crate) fn run(cmd: BenchCommand) -> ExitCode {
    let args = match cmd {
        BenchCommand::Latency(args) => args,
        BenchCommand::Bus(args) => return crate::bench_bus::run(args),
    };
    if let Some(cpu) = args.cpu
        && let Err(e) = weir_hw::pin::pin_current_thread(cpu)
    {
        eprintln!("weir bench latency: --cpu {cpu}: {e}");
        return ExitCode::from(2);
    }
    if args.mlock {
        // SAFETY: mlockall takes flags only; it changes no memory, only whether it may be paged.
        let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
        if rc != 0 {
            eprintln!("weir bench latency: --mlock: {}", std::io::Error::last_os_error());
            return ExitCode::from(2);
        }
    }
    if let Some(bad) = args.pace.iter().find(|f| !weir::nic::spec::PACE_RANGE.contains(f)) {
        eprintln!("weir bench latency: --pace {bad}: a multiple of recorded pace from 0.001 to 1e9");
        return ExitCode::from(2);
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        eprintln!("weir bench latency: --seconds {}: a positive number", args.seconds);
        return ExitCode::from(2);
    }
    let limit = Duration::from_secs_f64(args.seconds.max(0.1));
    let mut cases: Vec<Case> = vec![harness::clock_floor(1_000_000)];
    let mut paces: Vec<(Pace, String, Measure)> =
        args.pace.iter().map(|&f| (Pace::Times(f), format!("x{f}"), Measure::SinceBurst)).collect();
    if args.max {
        paces.push((Pace::Max, "max".into(), Measure::SinceBurst));
        paces.push((Pace::Max, "svc".into(), Measure::Service));
    }
    println!("{}: per packet, rx burst return -> last DBN record reaching the sink", args.file.display());
    println!("{HEADER}");
    println!("{}", cases[0].row());
    // Start of day: the capture's first pass at the fastest pace given, books cold.
    let first = args.pace.iter().copied().fold(1.0, f64::max);
    let mut runs: Vec<(String, Pace, Measure, Result<Start, Depth>)> =
        vec![(format!("cold x{first}"), Pace::Times(first), Measure::SinceBurst, Ok(Start::Cold))];
    for (pace, label, measure) in paces {
        // The baselines and the full case back to back: same queue, same clock, same recording.
        runs.push((format!("peel {label}"), pace, measure, Err(Depth::Peel)));
        runs.push((format!("decode {label}"), pace, measure, Err(Depth::Decode)));
        runs.push((format!("full {label}"), pace, measure, Ok(Start::Warm)));
    }
    for (name, pace, measure, how) in runs {
        {
            let case = match how {
                Ok(start) => harness::full(&args.file, pace, limit, measure, start, &name),
                Err(depth) => harness::partial(&args.file, pace, limit, measure, depth, &name),
            };
            match case {
                Ok(c) => {
                    println!("{}", c.row());
                    cases.push(c);
                }
                Err(e) => {
                    eprintln!("weir bench latency: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if let Some(path) = &args.hlog
        && let Err(e) = harness::write_hlog(path, &cases)
    {
        eprintln!("weir bench latency: {}: {e}", path.display());
        return ExitCode::from(1);
    }
    if let Some(path) = &args.json {
        let v: Vec<_> = cases.iter().map(Case::json).collect();
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("weir bench latency: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
