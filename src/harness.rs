//! Wire-to-record latency harness (`weir bench latency`).
//!
//! Replays a capture open loop through the pcap backend at a fixed multiple of its recorded pace
//! (1x and 8x by default, as STAC-T1 does), runs the real poll loop over it, and records, per
//! packet that made at least one DBN record, the time from the return of the rx burst that
//! brought it to its last record reaching the sink (quanta raw TSC, converted off the hot path;
//! HdrHistogram, 1 ns .. 10 s at 3 significant digits).
//!
//! Baselines in the same run, same queue, same clock, same recording:
//! - `clock`: two back-to-back clock reads: the floor of any figure here;
//! - `peel`: the same replay, but the loop stops after the frame peel: the receive path and the
//!   measurement without the feed handler. The handler's own work is `full − peel`.
//!
//! The pcap backend hands the loop a packet when it is due; a burst that returns late (the loop
//! was busy) starts its clock late, so this measures the handler, not the queueing in front of it
//! (a NIC ring's). `max` pace (everything as fast as polled) shows that queueing inside a burst.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use weir_feeds::frame::peel_udp;
use weir_feeds::normalize::{NormalizerConfig, RecordSink};

use crate::lcore::{Observer, PollLoop};
use crate::nic::pcap::PcapRx;
use crate::nic::spec::Pace;
use crate::nic::{Framing, RxQueue};

/// What a sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// From the return of the packet's rx burst (includes waiting behind earlier packets of the
    /// same burst): the latency a packet sees.
    SinceBurst,
    /// From the previous packet's end (or the burst's return, for the first): the handler's
    /// service time per packet.
    Service,
}

/// One histogram of per-packet latencies, in ns.
#[derive(Debug)]
pub struct Latencies {
    clock: quanta::Clock,
    measure: Measure,
    last: (u64, u64),
    /// The samples.
    pub histogram: Histogram<u64>,
}

impl Latencies {
    /// An empty histogram.
    pub fn new(clock: quanta::Clock, measure: Measure) -> Self {
        // 1 ns .. 10 s, 3 significant digits: the ECOSYSTEM.md convention.
        let histogram = Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static bounds are valid");
        Latencies { clock, measure, last: (u64::MAX, 0), histogram }
    }
}

impl Observer for Latencies {
    const TIMED: bool = true;
    #[inline]
    fn packet_done(&mut self, burst_tsc: u64) {
        let now = self.clock.raw();
        let from = match self.measure {
            Measure::SinceBurst => burst_tsc,
            Measure::Service if self.last.0 == burst_tsc => self.last.1,
            Measure::Service => burst_tsc,
        };
        self.last = (burst_tsc, now);
        self.histogram.saturating_record(self.clock.delta_as_nanos(from, now).max(1));
    }
}

/// Drops records (the sink's cost is the bus's business, measured in its own issue).
#[derive(Debug, Default)]
pub struct Discard;

impl RecordSink for Discard {
    #[inline(always)]
    fn record<R: dbn::Record>(&mut self, rec: &R) {
        std::hint::black_box(rec);
    }
}

/// One measured configuration.
#[derive(Debug)]
pub struct Case {
    /// `full x1`, `peel x8`, `clock`, ...
    pub name: String,
    /// Latencies, ns.
    pub histogram: Histogram<u64>,
    /// Wall time of the run.
    pub wall: Duration,
    /// Packets received.
    pub packets: u64,
}

impl Case {
    /// `count p50 p90 p99 p99.9 p99.99 max` as a table row.
    pub fn row(&self) -> String {
        let h = &self.histogram;
        let q = |p: f64| h.value_at_quantile(p);
        format!(
            "{:<12} {:>9} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
            self.name,
            h.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            q(0.9999),
            h.max()
        )
    }

    /// The percentiles as JSON.
    pub fn json(&self) -> serde_json::Value {
        let h = &self.histogram;
        serde_json::json!({
            "name": self.name,
            "count": h.len(),
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p99_9": h.value_at_quantile(0.999),
            "p99_99": h.value_at_quantile(0.9999),
            "max": h.max(),
            "mean": h.mean(),
            "wall_s": self.wall.as_secs_f64(),
            "packets": self.packets,
        })
    }
}

/// The header of [`Case::row`].
pub const HEADER: &str = "case             count     p50     p90     p99    p99.9   p99.99       max   (ns)";

/// Runs the full poll loop over `capture` at `pace` for at most `limit`.
pub fn full(
    capture: &Path,
    pace: Pace,
    limit: Duration,
    measure: Measure,
    name: &str,
) -> Result<Case, crate::capture::CaptureError> {
    let clock = quanta::Clock::new();
    let queue = PcapRx::open(capture, pace)?;
    let observer = Latencies::new(clock, measure);
    let mut l = PollLoop::with_observer(vec![queue], NormalizerConfig::default(), Discard, observer);
    let start = Instant::now();
    loop {
        if l.poll() == 0 && (l.lines()[0].is_finished() || start.elapsed() >= limit) {
            break;
        }
    }
    let wall = start.elapsed();
    let packets = l.report().replay.packets;
    let histogram = l.observer().histogram.clone();
    Ok(Case { name: name.to_owned(), histogram, wall, packets })
}

/// The baseline: the same queue and measurement, stopping after the frame peel.
pub fn peel_only(
    capture: &Path,
    pace: Pace,
    limit: Duration,
    measure: Measure,
    name: &str,
) -> Result<Case, crate::capture::CaptureError> {
    let clock = quanta::Clock::new();
    let mut queue = PcapRx::open(capture, pace)?;
    let mut lat = Latencies::new(clock.clone(), measure);
    let start = Instant::now();
    loop {
        let n = queue.rx_burst();
        if n == 0 {
            if queue.is_finished() || start.elapsed() >= limit {
                break;
            }
            continue;
        }
        let burst_tsc = clock.raw();
        for i in 0..n {
            let f = queue.frame(i);
            let ok = match f.framing {
                Framing::Link(link) => std::hint::black_box(peel_udp(link, f.data)).is_ok(),
                Framing::UdpPayload => true,
            };
            if ok {
                lat.packet_done(burst_tsc);
            }
        }
    }
    let wall = start.elapsed();
    Ok(Case { name: name.to_owned(), histogram: lat.histogram, wall, packets: queue.stats().packets })
}

/// The floor: back-to-back clock reads, recorded the same way.
pub fn clock_floor(samples: usize) -> Case {
    let clock = quanta::Clock::new();
    let mut lat = Latencies::new(clock.clone(), Measure::SinceBurst);
    let start = Instant::now();
    for _ in 0..samples {
        let t = clock.raw();
        lat.packet_done(t);
    }
    Case { name: "clock".into(), histogram: lat.histogram, wall: start.elapsed(), packets: 0 }
}

/// Writes the cases as an HdrHistogram interval log (`.hlog`), one tagged interval per case.
pub fn write_hlog(path: &Path, cases: &[Case]) -> std::io::Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("weir bench latency: ns from rx burst return to a packet's last DBN record")
            .with_start_time(std::time::SystemTime::now())
            .begin_log_with(&mut out, &mut ser)?;
        let mut at = Duration::ZERO;
        for c in cases {
            let tag = c.name.replace([' ', ','], "_");
            log.write_histogram(&c.histogram, at, c.wall, Tag::new(&tag))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            at += c.wall;
        }
    }
    std::fs::write(path, out)
}
