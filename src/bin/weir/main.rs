//! `weir`: the command line.
//!
//! Exit status: 0 on success, 2 when the input cannot be used (missing file, not a capture, bad
//! arguments), 1 on any other failure (e.g. the output cannot be written).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;
mod bench_bus;
mod dag;
mod hw;
mod record;
mod run;
mod send;
mod tail;

use clap::{Parser, Subcommand, ValueEnum};
use weir::book_view::{self, BookWatch};
use weir::dbn_out::DbnFile;
use weir::jsonl::JsonlSink;
use weir::replay::{self, BooksReport, Progress, ReplayReport};
use weir_feeds::iex::message::Symbol;
use weir_feeds::iex::{FeedError, Message, MessageSink, MsgContext, SeqEvent};
use weir_feeds::normalize::{Normalizer, NormalizerConfig, Publishers, RecordCounts};

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Low-latency market data runtime: replay and inspect IEX captures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode an IEX capture (pcap or pcapng, gzip or not), build its books, summarise it, and
    /// optionally write it as DBN v3.
    Replay(ReplayArgs),
    /// Print one symbol's books (levels, sizes, order counts, BBO, status) from a capture.
    Book(BookArgs),
    /// Run a feed from a NIC queue (pcap replay, UDP multicast, DPDK) through the poll loop on an
    /// executor worker, into DBN records.
    Run(run::RunArgs),
    /// Send a capture's UDP datagrams again, as multicast to their recorded groups and ports
    /// (a test feed for `weir run --nic udp:...` or a DPDK port on another interface).
    Send(send::SendArgs),
    /// DAG computation: generate standard graphs, run them on pinned workers, explain the partition.
    #[command(subcommand)]
    Dag(dag::DagCommand),
    /// Print a bus's records as they arrive (`--json`, `--symbol`), with loss and lag on exit.
    Tail(tail::TailArgs),
    /// Capture a bus into a DBN file (waits for the bus; joins at its oldest record).
    Record(record::RecordArgs),
    /// The hardware side: topology (`show`), a layout file checked against the machine (`check`), configs
    /// generated from it (`gen`), a proposed layout (`propose`), a copy of /sys and /proc to send (`snapshot`).
    #[command(subcommand)]
    Hw(hw::HwCommand),
    /// Measurement harnesses (`weir bench latency`, `weir bench bus`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(clap::Args, Debug)]
struct BookArgs {
    /// The capture.
    file: PathBuf,
    /// The symbol (as IEX spells it, e.g. `ZIEXT`, `BRK.B`).
    #[arg(long)]
    symbol: String,
    /// Show the book at the symbol's first transaction close at or after this time: nanoseconds
    /// since the epoch, or RFC 3339 (`2017-04-17T13:30:00Z`). Default: the end of the capture.
    #[arg(long, value_name = "NS|RFC3339")]
    at: Option<String>,
    /// Price levels per side.
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    publishers: PublisherArgs,
}

#[derive(clap::Args, Debug, Clone, Copy)]
struct PublisherArgs {
    /// DBN publisher id of TOPS records (Databento's IEXG.TOPS.IEXG).
    #[arg(long, default_value_t = Publishers::default().tops)]
    tops_publisher: u16,
    /// DBN publisher id of DEEP records (private: Databento has none).
    #[arg(long, default_value_t = Publishers::default().deep)]
    deep_publisher: u16,
    /// DBN publisher id of DEEP+ records (private: Databento has none).
    #[arg(long, default_value_t = Publishers::default().deep_plus)]
    deep_plus_publisher: u16,
}

impl PublisherArgs {
    fn config(&self) -> NormalizerConfig {
        NormalizerConfig {
            publishers: Publishers {
                tops: self.tops_publisher,
                deep: self.deep_publisher,
                deep_plus: self.deep_plus_publisher,
            },
            ..NormalizerConfig::default()
        }
    }
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
    /// Write the normalized records as DBN v3 to OUT (`.dbn`, or `.dbn.zst` for zstd).
    #[arg(long, value_name = "OUT.dbn[.zst]")]
    out: Option<PathBuf>,
    /// No progress line and no summary.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    publishers: PublisherArgs,
    #[command(flatten)]
    bus: BusArgs,
}

/// Publishing the records on the bus (shared memory, for other processes).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct BusArgs {
    /// Publish the records on the bus NAME: a file under $WEIR_BUS_DIR (default /dev/shm/weir),
    /// or a path. Consumers: `weir tail NAME`, `weir record NAME OUT.dbn`, `weir::bus::Subscriber`.
    #[arg(long, value_name = "NAME")]
    bus: Option<String>,
    /// Bytes in the bus's ring: a power of two, with an optional K, M or G suffix (binary).
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_bytes)]
    bus_capacity: u64,
    /// Let the bus file's group read it (mode 0640; default 0600, the owner only).
    #[arg(long)]
    bus_group_read: bool,
    /// Lock the bus's pages in memory (mlock).
    #[arg(long)]
    bus_lock: bool,
}

impl BusArgs {
    /// The publisher, when `--bus` was given; its pages are first touched from `cpu`.
    pub(crate) fn publisher(&self, cpu: Option<u32>) -> Result<Option<weir::bus::Publisher>, String> {
        let Some(name) = &self.bus else { return Ok(None) };
        let opts = weir::bus::PublisherOptions {
            capacity: self.bus_capacity,
            group_read: self.bus_group_read,
            lock: self.bus_lock,
            first_touch_cpu: cpu,
            ..weir::bus::PublisherOptions::default()
        };
        weir::bus::Publisher::create(&weir::bus::resolve(name), &opts)
            .map(Some)
            .map_err(|e| format!("--bus {name}: {e}"))
    }
}

/// `64M`, `4096`, `1G`: bytes, with a binary suffix.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?}: bytes, e.g. 67108864 or 64M"))?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(|| format!("{text:?}: too large"))?;
    if !bytes.is_power_of_two() || !(weir::bus::MIN_CAPACITY..=weir::bus::MAX_CAPACITY).contains(&bytes) {
        return Err(format!("{text}: a power of two from 4K to 1024G"));
    }
    Ok(bytes)
}

/// One line about what went to the bus.
pub(crate) fn bus_summary(publisher: &weir::bus::Publisher) -> String {
    format!(
        "  bus: {} records ({} bytes) published to {} (epoch {}){}\n",
        publisher.published(),
        publisher.bytes_written(),
        publisher.path().display(),
        publisher.epoch(),
        if publisher.superseded() {
            "; superseded during the run by a newer producer of that name (its consumers moved on)"
        } else {
            ""
        }
    )
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
        Command::Book(args) => run_book(args),
        Command::Run(args) => run::run(args),
        Command::Send(args) => send::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Record(args) => record::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Dag(cmd) => dag::run(cmd),
        Command::Hw(cmd) => hw::run(cmd),
    }
}

/// What `weir replay` does with each message: JSONL (optional), then books and DBN records.
struct ReplaySink {
    jsonl: Option<JsonlSink<io::BufWriter<io::StdoutLock<'static>>>>,
    normalizer: Normalizer<(DbnFile, Option<weir::bus::Publisher>)>,
}

impl MessageSink for ReplaySink {
    #[inline]
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        if let Some(s) = &mut self.jsonl {
            s.write(ctx, msg);
        }
        self.normalizer.on_message(ctx, msg);
    }
    #[inline]
    fn on_event(&mut self, event: &SeqEvent) {
        self.normalizer.on_event(event);
    }
    #[inline]
    fn on_error(&mut self, error: &FeedError) {
        self.normalizer.on_error(error);
    }
}

fn run_replay(args: ReplayArgs) -> ExitCode {
    let stdout_taken = args.emit == Emit::Jsonl || args.stats_json.as_deref() == Some("-");
    // An unusable input is exit 2 even when the output is unusable too: look at it first.
    for input in std::iter::once(&args.file).chain(args.b_feed.as_ref()) {
        if let Err(e) = std::fs::File::open(input) {
            eprintln!("weir replay: {}: {e}", input.display());
            return ExitCode::from(2);
        }
    }
    let records = match &args.out {
        Some(path) => match DbnFile::create(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("weir replay: {e}");
                return ExitCode::from(1);
            }
        },
        None => DbnFile::counting(),
    };
    let publisher = match args.bus.publisher(None) {
        Ok(p) => p,
        Err(e) => {
            records.abandon();
            eprintln!("weir replay: {e}");
            return ExitCode::from(1);
        }
    };
    let mut sink = ReplaySink {
        jsonl: (args.emit == Emit::Jsonl)
            .then(|| JsonlSink::new(io::BufWriter::with_capacity(1 << 20, io::stdout().lock()))),
        normalizer: Normalizer::new(args.publishers.config(), (records, publisher)),
    };
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
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            sink.normalizer.into_sink().0.abandon();
            eprintln!("weir replay: {e}");
            return ExitCode::from(2);
        }
    };
    report.dbn_records = sink.normalizer.sink().0.counts();
    report.books = Some(BooksReport::of(&sink.normalizer));
    let ReplaySink { jsonl, normalizer } = sink;
    let (normalizer, records, publisher) = {
        let mut n = normalizer;
        let records = std::mem::replace(&mut n.sink_mut().0, DbnFile::counting());
        let publisher = n.sink_mut().1.take();
        (n, records, publisher)
    };
    // The consumers may stop reading now: the stream is complete.
    let bus_line = publisher.map(|p| {
        let line = bus_summary(&p);
        p.finish();
        line
    });
    if let Err(e) = records.finish(&normalizer) {
        eprintln!("weir replay: writing DBN: {e}");
        return ExitCode::from(1);
    }
    if let Some(s) = jsonl
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
        let text = summary(&args, &report) + bus_line.as_deref().unwrap_or("");
        let _ = if stdout_taken {
            io::stderr().write_all(text.as_bytes())
        } else {
            io::stdout().write_all(text.as_bytes())
        };
    }
    ExitCode::SUCCESS
}

/// `--at`: integer nanoseconds, or RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ns) = text.parse::<i64>() {
        return if ns >= 0 { Ok(ns) } else { Err(format!("--at {text}: a time before 1970")) };
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("--at {text}: neither nanoseconds since the epoch nor RFC 3339 ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| format!("--at {text}: out of range"))
}

fn run_book(args: BookArgs) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("weir book: {msg}");
        ExitCode::from(2)
    };
    let Some(symbol) = Symbol::from_text(&args.symbol).filter(|_| !args.symbol.is_empty()) else {
        return fail(format!("--symbol {:?}: an IEX symbol is 1 to 8 characters", args.symbol));
    };
    if args.depth == 0 {
        return fail("--depth 0: ask for at least one level".to_owned());
    }
    let at = match args.at.as_deref().map(parse_time).transpose() {
        Ok(at) => at,
        Err(e) => return fail(e),
    };
    let normalizer = Normalizer::new(args.publishers.config(), RecordCounts::default());
    let mut watch = BookWatch::new(normalizer, symbol, at, args.depth);
    if let Err(e) = replay::replay(&args.file, None, &mut watch, &mut |_| {}) {
        return fail(e.to_string());
    }
    let n = &watch.normalizer;
    if n.instrument_id(symbol).is_none() {
        let known: Vec<String> = n.symbols().iter().take(12).map(|s| s.to_string()).collect();
        let more = if n.symbols().len() > known.len() { ", ..." } else { "" };
        return fail(format!(
            "symbol {} does not appear in {} (it has {} symbols: {}{more})",
            args.symbol,
            args.file.display(),
            n.symbols().len(),
            known.join(", ")
        ));
    }
    let view = match (watch.taken.take(), at) {
        (Some(v), _) => v,
        (None, Some(at)) => {
            return fail(format!(
                "--at {at}: {} has no transaction close at or after that time in {} (its last message is at {})",
                args.symbol,
                args.file.display(),
                watch.last_ts.unwrap_or(0)
            ));
        }
        (None, None) => match book_view::view(n, symbol, args.depth, watch.last_ts.unwrap_or(0), "end") {
            Some(v) => v,
            None => return fail(format!("symbol {} has no book", args.symbol)),
        },
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&view) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("weir book: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        book_view::render(&view)
    };
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir book: {e}");
            ExitCode::from(1)
        }
    }
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
    if let Some(b) = &r.books {
        let recs: Vec<String> = r.dbn_records.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  DBN records: {}", if recs.is_empty() { "none".to_owned() } else { recs.join(", ") });
        let _ = writeln!(
            s,
            "  books: {} instruments   book errors {}   crossed {}   marked maybe-bad {}   recovered {}   cleared {}   growths {}",
            b.instruments,
            b.stats.book_errors,
            b.stats.crossed_books,
            b.stats.books_marked_bad,
            b.stats.books_recovered,
            b.stats.books_cleared,
            b.growths
        );
    }
    if let Some(out) = &args.out {
        let _ = writeln!(s, "  wrote {}", out.display());
    }
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
