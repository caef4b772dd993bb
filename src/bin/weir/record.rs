//! `weir record NAME OUT.dbn[.zst]`: capture a bus into a DBN file.
//!
//! Waits for the bus to appear, joins at the oldest record still in the ring (a recorder started
//! after its producer still gets the symbol mappings published so far), and writes every record
//! it reads. The DBN header comes first in the file but its symbols are known only at the end,
//! so the records stream to `OUT.partial` ([`DbnFile`]) and the header is built at the end from
//! the `SymbolMappingMsg`s seen on the bus and the records' time span.
//!
//! A producer restart (a new epoch) ends the file: the new producer numbers its instruments
//! afresh, so its records cannot share a header with the old ones. Run `weir record` again for it.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dbn::Record;
use weir::bus::{self, Next, ProducerState, SubscriberOptions};
use weir::dbn_out::{self, DbnFile};
use weir_feeds::normalize::{Feed, Publishers, RecordSink};

use crate::tail::{JoinArg, SPINS, Symbols, WAIT, catch_signals, check_record, open, signalled, status_of};

#[derive(clap::Args, Debug)]
pub(crate) struct RecordArgs {
    /// The bus: a name (in `$WEIR_BUS_DIR`, default `/dev/shm/weir`) or a path.
    name: String,
    /// The DBN v3 file to write (`.dbn`, or `.dbn.zst` for zstd).
    out: PathBuf,
    /// Stop after MS milliseconds without a record (default: at the end of the producer's stream,
    /// a producer restart, or SIGINT/SIGTERM).
    #[arg(long, value_name = "MS")]
    idle_exit: Option<u64>,
    /// Give up when the bus has not appeared after MS milliseconds (default: wait for it).
    #[arg(long, value_name = "MS")]
    wait: Option<u64>,
    /// Where to start: `oldest` (the oldest record still in the ring) or `tail` (the next
    /// record published; symbols published earlier are then missing from the header).
    #[arg(long, value_enum, default_value_t = JoinArg::Oldest)]
    join: JoinArg,
}

pub(crate) fn run(args: RecordArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("weir record: {msg}");
        ExitCode::from(code)
    };
    let mut file = match DbnFile::create(&args.out) {
        Ok(f) => f,
        Err(e) => return fail(1, e.to_string()),
    };
    let path = bus::resolve(&args.name);
    let opts = SubscriberOptions { join: args.join.join(), ..SubscriberOptions::default() };
    catch_signals();
    let mut sub = match open(&path, &opts, args.wait.map(Duration::from_millis)) {
        Ok(Some(s)) => Some(s),
        Ok(None) => None,
        Err(e) => {
            file.abandon();
            eprintln!("weir record: {e}");
            return status_of(&e);
        }
    };
    let mut symbols = Symbols::default();
    let mut span: Option<(u64, u64)> = None;
    let mut publishers = BTreeSet::new();
    let mut written = 0u64;
    let mut malformed = 0u64;
    let mut why = "signalled before the bus appeared";
    if let Some(sub) = &mut sub {
        let info = *sub.info();
        eprintln!(
            "weir record: {} (epoch {}, producer pid {}) -> {}",
            path.display(),
            info.epoch,
            info.pid,
            args.out.display()
        );
        let idle_exit = args.idle_exit.map(Duration::from_millis);
        let mut last_record = Instant::now();
        let mut spins = 0u32;
        let mut dead_reported = false;
        why = loop {
            if signalled() {
                break "signalled";
            }
            match sub.poll() {
                Next::Record(d) => {
                    spins = 0;
                    last_record = Instant::now();
                    let rec = d.record;
                    if d.lost > 0 {
                        eprintln!("weir record: lost {} records before bus record {} (lapped)", d.lost, d.seq);
                    }
                    if let Err(what) = check_record(rec) {
                        malformed += 1;
                        eprintln!("weir record: bus record {}: {what}; not written", d.seq);
                        continue;
                    }
                    symbols.learn(rec);
                    publishers.insert(rec.header().publisher_id);
                    let ts = rec.raw_index_ts();
                    if ts != dbn::UNDEF_TIMESTAMP {
                        span = Some(span.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
                    }
                    file.record(&rec);
                    written += 1;
                    continue;
                }
                Next::Lapped => continue,
                Next::Corrupt { position, what } => {
                    eprintln!("weir record: {}: {what} at stream position {position}; skipped", path.display());
                    continue;
                }
                Next::Empty => {}
            }
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
                continue;
            }
            match sub.producer() {
                ProducerState::Ended => break "the producer ended its stream",
                ProducerState::Superseded => {
                    break "the producer restarted (a new epoch numbers its instruments afresh)";
                }
                ProducerState::Dead { heartbeat_age_ns } => {
                    if !dead_reported {
                        dead_reported = true;
                        eprintln!(
                            "weir record: producer pid {} looks dead (no heartbeat for {:.1} s); waiting",
                            sub.info().pid,
                            heartbeat_age_ns as f64 / 1e9
                        );
                    }
                    // A producer restarted after its file was removed leaves this one as it was:
                    // notice the new file at the path.
                    if let Ok(Some(_)) = sub.reopen() {
                        break "the producer restarted (a new epoch numbers its instruments afresh)";
                    }
                }
                ProducerState::Live | ProducerState::Quiet { .. } => dead_reported = false,
            }
            let mut timeout = WAIT;
            if let Some(idle) = idle_exit {
                let quiet = last_record.elapsed();
                if quiet >= idle {
                    break "--idle-exit reached";
                }
                timeout = timeout.min(idle - quiet);
            }
            sub.wait(timeout);
            spins = SPINS - 1;
        };
    }
    let dataset = dataset(&publishers);
    let mut mapped: Vec<(u32, String)> = symbols.by_id.into_iter().collect();
    mapped.sort();
    let n_symbols = mapped.len();
    let metadata = dbn_out::metadata_from(dataset, span, mapped);
    if let Err(e) = file.finish_with(&metadata) {
        return fail(1, format!("writing DBN: {e}"));
    }
    let stats = sub.as_ref().map(|s| s.stats()).unwrap_or_default();
    // The file is written: a closed stdout must not turn that into a failure (or a panic).
    let _ = writeln!(
        std::io::stdout(),
        "weir record: wrote {written} records ({n_symbols} symbols, dataset {dataset}) to {}; lost {} (laps {}, overwritten {}, corrupt {}, malformed {malformed}); stopped: {why}",
        args.out.display(),
        stats.lost,
        stats.laps,
        stats.overwritten,
        stats.corrupt,
    );
    if stats.lost > 0 {
        eprintln!(
            "weir record: {} records were lost (the recorder fell a whole ring behind): the file has gaps; a larger --bus-capacity on the producer helps",
            stats.lost
        );
    }
    ExitCode::SUCCESS
}

/// The dataset of the feeds the records came from (weir's publisher ids): one feed's, or `IEXG`.
fn dataset(publishers: &BTreeSet<u16>) -> &'static str {
    let ids = Publishers::default();
    let feeds: BTreeSet<Option<Feed>> =
        publishers.iter().map(|&p| Feed::ALL.into_iter().find(|&f| ids.of(f) == p)).collect();
    match feeds.into_iter().collect::<Vec<_>>()[..] {
        [Some(one)] => one.dataset(),
        _ => "IEXG",
    }
}
