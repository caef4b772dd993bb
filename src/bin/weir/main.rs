//! `weir`: the command line.
//!
//! Exit status: 0 on success, 2 when the input cannot be used (missing file, not a capture, bad
//! arguments), 1 on any other failure (e.g. the output cannot be written).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use weir::jsonl::JsonlSink;
use weir::replay::{self, Progress, ReplayReport};
use weir_feeds::iex::{Message, MessageSink, MsgContext};

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Low-latency market data runtime: replay and inspect IEX captures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode an IEX capture (pcap or pcapng, gzip or not) and summarise it.
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The capture (A line).
    file: PathBuf,
    /// A capture of the B line of the same feed: the two are merged message by message.
    #[arg(long = "b-feed", value_name = "FILE2")]
    b_feed: Option<PathBuf>,
    /// Write the counters as one JSON object to PATH (`-` for stdout).
    #[arg(long = "stats-json", value_name = "PATH|-")]
    stats_json: Option<String>,
    /// Write every message to stdout.
    #[arg(long, value_enum, default_value_t = Emit::None)]
    emit: Emit,
    /// No progress line and no summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// Nothing per message.
    None,
    /// One JSON object per IEX message.
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => run_replay(args),
    }
}

struct EmitSink(Option<JsonlSink<io::BufWriter<io::StdoutLock<'static>>>>);

impl MessageSink for EmitSink {
    #[inline]
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        if let Some(s) = &mut self.0 {
            s.write(ctx, msg);
        }
    }
}

fn run_replay(args: ReplayArgs) -> ExitCode {
    let stdout_taken = args.emit == Emit::Jsonl || args.stats_json.as_deref() == Some("-");
    let mut sink = EmitSink(
        (args.emit == Emit::Jsonl).then(|| JsonlSink::new(io::BufWriter::with_capacity(1 << 20, io::stdout().lock()))),
    );
    let interactive = io::stderr().is_terminal();
    let mut shown = false;
    let mut next_plain_line = 10;
    let mut progress = |p: &Progress| {
        if args.quiet {
            return;
        }
        let line = format!(
            "{:>6.1}s  {} packets  {} messages  {:.1} MB  {:.0} msg/s",
            p.elapsed.as_secs_f64(),
            p.packets,
            p.messages,
            p.bytes as f64 / 1e6,
            p.messages as f64 / p.elapsed.as_secs_f64().max(1e-9)
        );
        if interactive {
            eprint!("\r{line}");
        } else if p.elapsed.as_secs() >= next_plain_line {
            // Not a terminal (a log file): a line every 10 s instead of a redrawn one.
            next_plain_line = p.elapsed.as_secs() + 10;
            eprintln!("{line}");
        }
        shown = true;
    };
    let result = replay::replay(&args.file, args.b_feed.as_deref(), &mut sink, &mut progress);
    if shown && interactive {
        eprintln!();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir replay: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(s) = sink.0.take()
        && let Err(e) = s.finish()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("weir replay: writing messages: {e}");
        return ExitCode::from(1);
    }
    if let Some(dest) = &args.stats_json {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("weir replay: serialising stats: {e}");
                return ExitCode::from(1);
            }
        };
        let written =
            if dest == "-" { writeln!(io::stdout().lock(), "{json}") } else { std::fs::write(dest, json + "\n") };
        if let Err(e) = written {
            eprintln!("weir replay: writing {dest}: {e}");
            return ExitCode::from(1);
        }
    }
    if !args.quiet {
        let text = summary(&args, &report);
        let _ = if stdout_taken {
            io::stderr().write_all(text.as_bytes())
        } else {
            io::stdout().write_all(text.as_bytes())
        };
    }
    ExitCode::SUCCESS
}

fn summary(args: &ReplayArgs, r: &ReplayReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{}", args.file.display());
    if let Some(b) = &args.b_feed {
        let _ = writeln!(s, "  merged with B line {}", b.display());
    }
    let _ = writeln!(
        s,
        "  packets {}   segments {} ({} heartbeats)   messages {}   sessions {}",
        r.packets, r.segments, r.heartbeats, r.messages, r.sessions
    );
    let types: Vec<String> = r.messages_by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  by type: {}", types.join(", "));
    let unknown: Vec<String> = r.unknown_by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "  unknown types {}{}",
        r.unknown_types,
        if unknown.is_empty() { String::new() } else { format!(" ({})", unknown.join(", ")) }
    );
    let _ = writeln!(
        s,
        "  gaps {} ({} messages missing)   late fills {}   duplicates {} messages   resets {}",
        r.gaps.count, r.gaps.messages_missing, r.late_fill_messages, r.duplicates.messages, r.resets
    );
    let _ = writeln!(
        s,
        "  truncated records {}   short captures {}   UDP length mismatches {}   other traffic {}   non-IEX datagrams {}",
        r.truncated_records, r.short_captures, r.udp_length_mismatches, r.other_traffic, r.non_iex_datagrams
    );
    let _ = writeln!(
        s,
        "  decode errors {}   block errors {}   messages lost in segments {}   corrupt frames {}",
        r.decode_errors, r.block_errors, r.messages_lost_in_segment, r.corrupt_frames
    );
    if let Some(a) = &r.arbitration {
        let _ = writeln!(
            s,
            "  A/B: {} segments from A, {} from B, {} dropped as already seen",
            a.taken_a, a.taken_b, a.dropped
        );
    }
    let _ = writeln!(
        s,
        "  {:.3} s   {:.0} messages/s   {:.1} MB/s ({} capture bytes{})",
        r.elapsed_s,
        r.messages_per_s,
        r.mb_per_s,
        r.capture_bytes,
        r.gzip_backend.map(|b| format!(", inflated with {b}")).unwrap_or_default()
    );
    for e in &r.first_errors {
        let _ = writeln!(s, "  error: {e}");
    }
    if r.errors > r.first_errors.len() as u64 {
        let _ = writeln!(s, "  ... {} errors in all", r.errors);
    }
    s
}
