//! IEX decode throughput, each case beside its baseline in the same group.
//!
//! - `deep_messages` / `deep_bytes`: the real DEEP sample (48,325 messages in 5,000 UDP payloads)
//!   held in memory. `baseline_touch_every_byte` folds every byte of the same buffer;
//!   `decode` parses segments and decodes every message (reading its timestamp); `decode_sequence`
//!   is the full per-datagram path of `FeedHandler` (sequencing, decoding, counting).
//! - `pcap_gz_end_to_end`: 64 copies of the sample (each under its own session id, so nothing is
//!   a duplicate) as one gzip-compressed pcap in memory, read by `CaptureReader` → frame peel →
//!   `FeedHandler` (with the build's inflate backend); the baselines inflate the same bytes into
//!   nothing, with zlib-rs and (with `--features isal`) with ISA-L.
//!
//! - `pcap_framing`: the reader alone, against the `pcap-file` crate on the same uncompressed pcap.
//!
//! Run: `cargo bench --bench iex_decode` (add `--features isal` for the ISA-L backend).

use std::hint::black_box;
use std::io::{Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::capture::CaptureReader;
use weir_feeds::frame::peel_udp;
use weir_feeds::iex::{FeedHandler, Message, Segment, decode};

const DEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/Sai271828-iex-parser/test.pcap.gz");

/// The sample's UDP payloads, back to back, with their bounds.
struct Payloads {
    buf: Vec<u8>,
    bounds: Vec<(usize, usize)>,
    messages: u64,
}

fn load() -> Payloads {
    let mut r = CaptureReader::open(DEEP).unwrap();
    let mut p = Payloads { buf: Vec::new(), bounds: Vec::new(), messages: 0 };
    while let Some(pkt) = r.next_packet().unwrap() {
        let udp = peel_udp(pkt.link, pkt.data).unwrap();
        p.bounds.push((p.buf.len(), udp.payload.len()));
        p.buf.extend_from_slice(udp.payload);
        p.messages += u64::from(Segment::parse(udp.payload).unwrap().message_count());
    }
    p
}

fn touch_every_byte(buf: &[u8]) -> u64 {
    buf.chunks(8).fold(0u64, |acc, c| acc.rotate_left(5) ^ c.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)))
}

fn decode_only(p: &Payloads) -> i64 {
    let mut acc = 0i64;
    for &(at, len) in &p.bounds {
        let Ok(seg) = Segment::parse(&p.buf[at..at + len]) else { continue };
        let proto = seg.protocol();
        for block in seg.blocks().flatten() {
            acc = acc.wrapping_add(match decode(proto, block.bytes) {
                Ok(Message::PriceLevelUpdate(m)) => m.price(),
                Ok(Message::TradingStatus(m)) => m.timestamp(),
                Ok(Message::OperationalHaltStatus(m)) => m.timestamp(),
                Ok(Message::ShortSalePriceTest(m)) => m.timestamp(),
                Ok(Message::RetailLiquidityIndicator(m)) => m.timestamp(),
                Ok(Message::Trade(m)) => m.price(),
                Ok(m) => i64::from(m.type_byte()),
                Err(_) => -1,
            });
        }
    }
    acc
}

fn decode_sequence(p: &Payloads) -> u64 {
    let mut h = FeedHandler::new();
    for &(at, len) in &p.bounds {
        h.on_datagram(&p.buf[at..at + len], 0, 0, &mut ());
    }
    h.stats().messages
}

fn deep(c: &mut Criterion) {
    let p = load();
    assert_eq!(p.messages, 48_325);
    assert_eq!(decode_sequence(&p), 48_325);
    for (name, throughput) in
        [("deep_messages", Throughput::Elements(p.messages)), ("deep_bytes", Throughput::Bytes(p.buf.len() as u64))]
    {
        let mut g = c.benchmark_group(name);
        g.throughput(throughput);
        g.bench_function("baseline_touch_every_byte", |b| b.iter(|| touch_every_byte(black_box(&p.buf))));
        g.bench_function("decode", |b| b.iter(|| decode_only(black_box(&p))));
        g.bench_function("decode_sequence", |b| b.iter(|| decode_sequence(black_box(&p))));
        g.finish();
    }
}

/// The sample `copies` times over, each copy under a new session id, as one gzip pcap in memory.
fn big_gz(copies: u32) -> (Vec<u8>, u64, u64) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(DEEP).unwrap()).read_to_end(&mut raw).unwrap();
    let mut out = raw[..24].to_vec();
    let mut messages = 0u64;
    for copy in 0..copies {
        let mut at = 24;
        while at + 16 <= raw.len() {
            let caplen = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
            let start = out.len();
            out.extend_from_slice(&raw[at..at + 16 + caplen]);
            // Session id sits 8 bytes into the IEX-TP header, after 16 + 42 bytes of headers.
            let session = start + 16 + 42 + 8;
            out[session..session + 4].copy_from_slice(&(0x4000_0000 + copy).to_le_bytes());
            // Each session is sent a day after the previous one, as a real new session would be.
            let send = start + 16 + 42 + 32;
            let t = i64::from_le_bytes(out[send..send + 8].try_into().unwrap()) + i64::from(copy) * 86_400_000_000_000;
            out[send..send + 8].copy_from_slice(&t.to_le_bytes());
            messages += u64::from(u16::from_le_bytes([out[start + 16 + 42 + 14], out[start + 16 + 42 + 15]]));
            at += 16 + caplen;
        }
    }
    let raw_len = out.len() as u64;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&out).unwrap();
    (gz.finish().unwrap(), raw_len, messages)
}

fn end_to_end(c: &mut Criterion) {
    let (gz, raw_len, messages) = big_gz(64);
    let gz: &'static [u8] = Box::leak(gz.into_boxed_slice());
    let replay = || {
        let mut r = CaptureReader::from_reader("bench.pcap.gz", Box::new(gz)).unwrap();
        let mut h = FeedHandler::new();
        while let Some(pkt) = r.next_packet().unwrap() {
            if let Ok(udp) = peel_udp(pkt.link, pkt.data) {
                h.on_datagram(udp.payload, udp.missing, pkt.ts_ns, &mut ());
            }
        }
        h.stats().messages
    };
    assert_eq!(replay(), messages);
    let mut g = c.benchmark_group("pcap_gz_end_to_end");
    g.throughput(Throughput::Bytes(raw_len));
    g.sample_size(10);
    g.bench_function("baseline_inflate_only_zlib_rs", |b| {
        b.iter(|| {
            let mut d = flate2::read::MultiGzDecoder::new(gz);
            std::io::copy(&mut d, &mut std::io::sink()).unwrap()
        })
    });
    if weir::capture::GZIP_BACKEND != "zlib-rs (flate2)" {
        g.bench_function("baseline_inflate_only_isal", |b| {
            b.iter(|| {
                let mut d = weir::capture::gunzip(Box::new(gz)).unwrap();
                std::io::copy(&mut d, &mut std::io::sink()).unwrap()
            })
        });
    }
    g.bench_function("replay", |b| b.iter(replay));
    g.finish();
}

/// Framing only: our reader (streaming and mapped) against the `pcap-file` crate, over the same
/// uncompressed pcap (64 copies of the sample, 99 MB), counting packets and bytes.
fn framing(c: &mut Criterion) {
    let (gz, raw_len, _) = big_gz(64);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
    let raw: &'static [u8] = Box::leak(raw.into_boxed_slice());
    let path = std::env::temp_dir().join(format!("weir-bench-{}.pcap", std::process::id()));
    std::fs::write(&path, raw).unwrap();
    let ours = |mut r: CaptureReader| {
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(p) = r.next_packet().unwrap() {
            n += 1;
            bytes += p.data.len() as u64;
        }
        (n, bytes)
    };
    let pcap_file = || {
        let mut r = pcap_file::pcap::PcapReader::new(raw).unwrap();
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(p) = r.next_packet() {
            n += 1;
            bytes += p.unwrap().data.len() as u64;
        }
        (n, bytes)
    };
    assert_eq!(ours(CaptureReader::open(&path).unwrap()), pcap_file());
    let mut g = c.benchmark_group("pcap_framing");
    g.throughput(Throughput::Bytes(raw_len));
    g.sample_size(20);
    g.bench_function("pcap_file_crate", |b| b.iter(pcap_file));
    g.bench_function("weir_streamed", |b| b.iter(|| ours(CaptureReader::from_reader("mem", Box::new(raw)).unwrap())));
    g.bench_function("weir_mapped", |b| b.iter(|| ours(CaptureReader::open(&path).unwrap())));
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, deep, end_to_end, framing);
criterion_main!(benches);
