//! `weir tail NAME`: print a bus's records as they arrive, one line each, with loss and lag
//! counters on exit. Also the pieces `weir record` shares: signals, joining, symbols learnt from
//! the bus, and a check that a record is whole before anything typed looks at it.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use dbn::encode::{EncodeRecordTextExt, json};
use dbn::{Record, RecordRef};
use weir::bus::{self, BusError, Join, Next, ProducerState, Subscriber, SubscriberOptions};

#[derive(clap::Args, Debug)]
pub(crate) struct TailArgs {
    /// The bus: a name (in `$WEIR_BUS_DIR`, default `/dev/shm/weir`) or a path.
    name: String,
    /// One JSON object per record (the `dbn` crate's JSON, raw integers, plus `symbol`).
    #[arg(long)]
    json: bool,
    /// Only this symbol's records (its `SymbolMappingMsg` included). Symbols travel on the bus as
    /// `SymbolMappingMsg` records, published when a symbol is first seen, so `--symbol` joins at
    /// the oldest record still in the ring (`--join oldest`) unless `--join` says otherwise; a
    /// symbol whose mapping has already left the ring is not recognised.
    #[arg(long, value_name = "SYM")]
    symbol: Option<String>,
    /// Where to start: `tail` (the next record published; the default without `--symbol`) or
    /// `oldest` (the oldest record still in the ring; the default with `--symbol`).
    #[arg(long, value_enum)]
    join: Option<JoinArg>,
    /// Exit after printing N records.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit after MS milliseconds without a record.
    #[arg(long, value_name = "MS")]
    idle_exit: Option<u64>,
    /// Wait up to MS milliseconds for the bus to appear (default: it must exist).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    wait: u64,
}

/// `--join`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum JoinArg {
    /// The next record published.
    Tail,
    /// The oldest record still in the ring.
    Oldest,
}

impl JoinArg {
    pub(crate) fn join(self) -> Join {
        match self {
            JoinArg::Tail => Join::Tail,
            JoinArg::Oldest => Join::Oldest,
        }
    }
}

/// Set by SIGINT / SIGTERM.
pub(crate) static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM set [`SIGNALLED`] (and interrupt a futex wait) instead of killing.
pub(crate) fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags, so no SA_RESTART: a
        // blocked futex wait returns EINTR); the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

pub(crate) fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

/// Opens the bus at `path`, waiting up to `wait` for it to appear (`None`: until a signal).
pub(crate) fn open(
    path: &std::path::Path,
    opts: &SubscriberOptions,
    wait: Option<Duration>,
) -> Result<Option<Subscriber>, BusError> {
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let step = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        match Subscriber::open_wait(path, opts, step) {
            Err(BusError::Missing(_)) if deadline.is_none_or(|d| Instant::now() < d) => {
                if signalled() {
                    return Ok(None);
                }
            }
            other => return other.map(Some),
        }
    }
}

/// Exit status of a bus error: 2 when the file is not a usable bus, 1 for a system failure.
pub(crate) fn status_of(e: &BusError) -> ExitCode {
    match e {
        BusError::Io { .. } => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

/// Raw symbols by instrument id, learnt from the bus's `SymbolMappingMsg`s.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    pub(crate) by_id: HashMap<u32, String>,
}

impl Symbols {
    /// Learns from `rec` if it is a symbol mapping; returns its instrument id and symbol then.
    pub(crate) fn learn(&mut self, rec: RecordRef<'_>) -> Option<(u32, &str)> {
        let m = rec.try_get::<dbn::SymbolMappingMsg>().ok()?;
        let sym = m.stype_in_symbol().ok()?;
        let id = m.hd.instrument_id;
        let slot = self.by_id.entry(id).or_default();
        if slot != sym {
            sym.clone_into(slot);
        }
        Some((id, slot.as_str()))
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }
}

/// Checks that `rec` is a record this command can print: `Subscriber::poll` already refuses
/// records shorter than their rtype (`weir::bus::min_record_len`), so what is left is an rtype
/// the `dbn` crate does not know.
pub(crate) fn check_record(rec: RecordRef<'_>) -> Result<(), String> {
    match rec.rtype() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("unknown rtype 0x{:02x} ({} bytes)", rec.header().rtype, rec.record_size())),
    }
}

/// One readable line for a record (checked by [`check_record`]): time, type, symbol, fields.
fn text_line(out: &mut Vec<u8>, rec: RecordRef<'_>, symbol: Option<&str>) {
    use dbn::pretty::{fmt_px, fmt_ts};
    let hd = rec.header();
    let ts = if hd.ts_event == dbn::UNDEF_TIMESTAMP { "-".to_owned() } else { fmt_ts(hd.ts_event) };
    let name = weir_feeds::normalize::rtype_name(hd.rtype).unwrap_or("?");
    let sym = match symbol {
        Some(s) => s.to_owned(),
        None if hd.instrument_id == 0 => "*".to_owned(),
        None => format!("#{}", hd.instrument_id),
    };
    let _ = write!(out, "{ts} {name:<14} {sym:<8} ");
    let side = |c: std::ffi::c_char| c as u8 as char;
    let level = |out: &mut Vec<u8>, l: &dbn::BidAskPair| {
        let _ = write!(out, "{} @ {} | {} @ {}", l.bid_sz, fmt_px(l.bid_px), fmt_px(l.ask_px), l.ask_sz);
    };
    if let Ok(m) = rec.try_get::<dbn::Mbp1Msg>() {
        level(out, &m.levels[0]);
        if m.price != dbn::UNDEF_PRICE {
            let _ = write!(out, "  {} {} {} @ {}", side(m.action), side(m.side), m.size, fmt_px(m.price));
        }
        let _ = write!(out, "  flags {:#04x}", m.flags.raw());
    } else if let Ok(m) = rec.try_get::<dbn::Mbp10Msg>() {
        level(out, &m.levels[0]);
        let _ = write!(out, "  (10 levels)  flags {:#04x}", m.flags.raw());
    } else if let Ok(m) = rec.try_get::<dbn::TradeMsg>() {
        let _ = write!(out, "{} {} @ {}  flags {:#04x}", side(m.side), m.size, fmt_px(m.price), m.flags.raw());
    } else if let Ok(m) = rec.try_get::<dbn::MboMsg>() {
        let _ = write!(
            out,
            "{} {} {} @ {}  order {}  flags {:#04x}",
            side(m.action),
            side(m.side),
            m.size,
            fmt_px(m.price),
            m.order_id,
            m.flags.raw()
        );
    } else if let Ok(m) = rec.try_get::<dbn::SymbolMappingMsg>() {
        let _ = write!(out, "{} = instrument {}", m.stype_in_symbol().unwrap_or("?"), hd.instrument_id);
    } else if let Ok(m) = rec.try_get::<dbn::SystemMsg>() {
        let _ = write!(out, "{}", m.msg().unwrap_or("?"));
    } else if let Ok(m) = rec.try_get::<dbn::StatusMsg>() {
        let show = |r: Result<String, dbn::Error>, raw: u16| r.unwrap_or_else(|_| raw.to_string());
        let _ = write!(
            out,
            "action {}  reason {}  event {}",
            show(m.action().map(|a| format!("{a:?}")), m.action),
            show(m.reason().map(|a| format!("{a:?}")), m.reason),
            show(m.trading_event().map(|a| format!("{a:?}")), m.trading_event),
        );
    } else if let Ok(m) = rec.try_get::<dbn::InstrumentDefMsg>() {
        let _ = write!(
            out,
            "{} {} {}  tick {}  round lot {}  {}",
            m.raw_symbol().unwrap_or("?"),
            m.security_type().unwrap_or("?"),
            m.exchange().unwrap_or("?"),
            fmt_px(m.min_price_increment),
            m.min_lot_size_round_lot,
            m.currency().unwrap_or("?")
        );
    } else if let Ok(m) = rec.try_get::<dbn::StatMsg>() {
        let kind = m.stat_type().map_or_else(|_| m.stat_type.to_string(), |t| format!("{t:?}"));
        let _ = write!(out, "{kind} {}", fmt_px(m.price));
        if m.quantity != dbn::UNDEF_STAT_QUANTITY {
            let _ = write!(out, "  quantity {}", m.quantity);
        }
    } else if let Ok(m) = rec.try_get::<dbn::ImbalanceMsg>() {
        let _ = write!(
            out,
            "ref {}  paired {}  imbalance {} {}  auction {}",
            fmt_px(m.ref_price),
            m.paired_qty,
            m.total_imbalance_qty,
            side(m.side),
            side(m.auction_type)
        );
    } else {
        fn debug<R: std::fmt::Debug>(r: &R) -> String {
            format!("{r:?}")
        }
        let text = dbn::rtype_dispatch!(rec, debug()).unwrap_or_else(|e| e.to_string());
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'\n');
}

/// Why the loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Signal,
    Ended,
    Count,
    Idle,
    Pipe,
}

/// Polls before blocking: a record that arrives within this many empty polls is seen at once.
pub(crate) const SPINS: u32 = 200;
/// Longest single block in `Subscriber::wait` (signals, idleness and the producer's state are
/// checked at least this often).
pub(crate) const WAIT: Duration = Duration::from_millis(50);

pub(crate) fn run(args: TailArgs) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("weir tail: {msg}");
        ExitCode::from(code)
    };
    if args.count == Some(0) {
        return fail(2, "--count 0: ask for at least one record".into());
    }
    let join = args.join.unwrap_or(if args.symbol.is_some() { JoinArg::Oldest } else { JoinArg::Tail });
    let opts = SubscriberOptions { join: join.join(), ..SubscriberOptions::default() };
    let path = bus::resolve(&args.name);
    catch_signals();
    let mut sub = match open(&path, &opts, Some(Duration::from_millis(args.wait))) {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir tail: {e}");
            return status_of(&e);
        }
    };
    let info = *sub.info();
    eprintln!(
        "weir tail: {} (epoch {}, producer pid {}, {} MiB ring), joined at the {}",
        path.display(),
        info.epoch,
        info.pid,
        info.capacity >> 20,
        if join == JoinArg::Oldest { "oldest record" } else { "tail" }
    );

    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = Vec::with_capacity(512);
    let mut json = json::Encoder::new(Vec::with_capacity(512), false, false, false);
    let mut symbols = Symbols::default();
    let mut wanted: Option<u32> = None;
    let mut shown = 0u64;
    let mut malformed = 0u64;
    let mut max_lag = 0u64;
    let mut spins = 0u32;
    let mut last_record = Instant::now();
    let mut dead_reported = false;
    let mut epoch = info.epoch;
    let idle_exit = args.idle_exit.map(Duration::from_millis);
    let mut write_error = None;

    let stop = 'poll: loop {
        if signalled() {
            break Stop::Signal;
        }
        max_lag = max_lag.max(sub.lag_bytes());
        match sub.poll() {
            Next::Record(d) => {
                spins = 0;
                last_record = Instant::now();
                let rec = d.record;
                if d.lost > 0 {
                    eprintln!("weir tail: lost {} records before record {} (lapped)", d.lost, d.seq);
                }
                if let Err(what) = check_record(rec) {
                    malformed += 1;
                    eprintln!("weir tail: record {} (epoch {epoch}): {what}; skipped", d.seq);
                    continue;
                }
                if let Some((id, sym)) = symbols.learn(rec)
                    && args.symbol.as_deref() == Some(sym)
                {
                    wanted = Some(id);
                }
                let id = rec.header().instrument_id;
                if args.symbol.is_some() && wanted != Some(id) {
                    continue;
                }
                let sym = symbols.get(id);
                let written = if args.json {
                    json.encode_ref_with_sym(rec, sym).map_err(|e| io::Error::other(e.to_string())).and_then(|()| {
                        let buf = json.get_mut();
                        let r = out.write_all(buf);
                        buf.clear();
                        r
                    })
                } else {
                    line.clear();
                    text_line(&mut line, rec, sym);
                    out.write_all(&line)
                };
                if let Err(e) = written {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        break Stop::Pipe;
                    }
                    write_error = Some(e);
                    break Stop::Pipe;
                }
                shown += 1;
                if args.count.is_some_and(|n| shown >= n) {
                    break Stop::Count;
                }
                continue;
            }
            Next::Lapped => continue,
            Next::Corrupt { position, what } => {
                eprintln!("weir tail: {}: {what} at stream position {position}; skipped", path.display());
                continue;
            }
            Next::Empty => {}
        }
        if spins == 0
            && let Err(e) = out.flush()
        {
            if e.kind() != io::ErrorKind::BrokenPipe {
                write_error = Some(e);
            }
            break Stop::Pipe;
        }
        spins += 1;
        if spins < SPINS {
            std::hint::spin_loop();
            continue;
        }
        let state = sub.producer();
        match state {
            ProducerState::Ended => break Stop::Ended,
            ProducerState::Superseded | ProducerState::Dead { .. } => {
                if let ProducerState::Dead { heartbeat_age_ns } = state
                    && !dead_reported
                {
                    dead_reported = true;
                    eprintln!(
                        "weir tail: producer pid {} looks dead (no heartbeat for {:.1} s); waiting for a restart",
                        sub.info().pid,
                        heartbeat_age_ns as f64 / 1e9
                    );
                }
                match sub.reopen() {
                    Ok(Some(new)) => {
                        dead_reported = false;
                        epoch = new.epoch;
                        symbols = Symbols::default();
                        wanted = None;
                        eprintln!(
                            "weir tail: producer restarted: epoch {}, pid {} (joined at its oldest record; instrument ids are the new producer's)",
                            new.epoch, new.pid
                        );
                        spins = 0;
                        continue 'poll;
                    }
                    Ok(None) => {
                        // Superseded but the new file is gone, or dead: nothing to block on.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => {
                        let _ = out.flush();
                        eprintln!("weir tail: following the restarted producer: {e}");
                        print_stats(&sub, shown, malformed, max_lag);
                        return status_of(&e);
                    }
                }
            }
            ProducerState::Live | ProducerState::Quiet { .. } => {
                if dead_reported {
                    dead_reported = false;
                    eprintln!("weir tail: producer pid {} is beating again", sub.info().pid);
                }
            }
        }
        let mut timeout = WAIT;
        if let Some(idle) = idle_exit {
            let quiet = last_record.elapsed();
            if quiet >= idle {
                break Stop::Idle;
            }
            timeout = timeout.min(idle - quiet);
        }
        sub.wait(timeout);
        // After a wait, poll once more, then check the producer and wait again.
        spins = SPINS - 1;
    };
    let flushed = if stop == Stop::Pipe { Ok(()) } else { out.flush() };
    drop(out);
    let why = match stop {
        Stop::Signal => "signalled",
        Stop::Ended => "the producer ended its stream",
        Stop::Count => "--count reached",
        Stop::Idle => "--idle-exit reached",
        Stop::Pipe => "output closed",
    };
    eprintln!("weir tail: stopped: {why}");
    if let Some(s) = &args.symbol
        && wanted.is_none()
    {
        eprintln!(
            "weir tail: symbol {s} was not seen: no SymbolMappingMsg for it on the bus (its mapping may have left the ring; {} symbols seen)",
            symbols.by_id.len()
        );
    }
    print_stats(&sub, shown, malformed, max_lag);
    match write_error.map_or(flushed, Err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("writing stdout: {e}")),
    }
}

fn print_stats(sub: &Subscriber, shown: u64, malformed: u64, max_lag: u64) {
    let s = sub.stats();
    eprintln!(
        "weir tail: received {}  shown {shown}  lost {}  laps {}  overwritten {}  corrupt {}  malformed {malformed}  reopens {}  lag at exit {} bytes (max seen {} bytes)",
        s.received,
        s.lost,
        s.laps,
        s.overwritten,
        s.corrupt,
        s.reopens,
        sub.lag_bytes(),
        max_lag.max(sub.lag_bytes())
    );
}
