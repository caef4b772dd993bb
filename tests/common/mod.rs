//! Shared by the integration tests: load the UDP payloads of a real capture, and write captures
//! back in any of the formats the reader accepts.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};

use weir::capture::CaptureReader;
use weir_feeds::frame::{peel_udp, write_udp_frame};

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex");

/// A captured datagram: receive time and UDP payload.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub ts_ns: i64,
    pub payload: Vec<u8>,
}

pub fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

/// Every UDP payload of a capture, in order.
pub fn load(rel: &str) -> Vec<Datagram> {
    let mut r = CaptureReader::open(data(rel)).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        let udp = peel_udp(p.link, p.data).unwrap();
        out.push(Datagram { ts_ns: p.ts_ns, payload: udp.payload.to_vec() });
    }
    out
}

/// How to write a capture.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    /// Classic pcap; big-endian or not; ns or µs timestamps.
    Pcap { big_endian: bool, nanos: bool },
    /// pcapng: two sections (the second in the other byte order), each with two interfaces of
    /// different `if_tsresol` (`tsresol` and 10^-9; the second interface of each section also has
    /// an `if_tsoffset`), packets alternating between interfaces, every 7th as an obsolete Packet
    /// Block, every 13th as a Simple Packet Block (no timestamp), plus statistics and custom blocks
    /// to skip.
    PcapNg { big_endian: bool, tsresol: u8 },
}

fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be { v.to_be_bytes() } else { v.to_le_bytes() }
}
fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be { v.to_be_bytes() } else { v.to_le_bytes() }
}

fn ts_units(ts_ns: i64, tsresol: u8) -> u64 {
    if tsresol & 0x80 != 0 {
        (((ts_ns as u128) << (tsresol & 0x7f)) / 1_000_000_000) as u64
    } else if tsresol <= 9 {
        ts_ns as u64 / 10u64.pow(9 - u32::from(tsresol))
    } else {
        ts_ns as u64 * 10u64.pow(u32::from(tsresol) - 9)
    }
}

/// The `if_tsoffset` (seconds) of each section's second interface.
const TS_OFFSET_S: i64 = 1_600_000_000;

/// Whether packet `i` is written with a timestamp (Simple Packet Blocks have none).
pub fn has_timestamp(i: usize, format: Format) -> bool {
    !matches!(format, Format::PcapNg { .. }) || i % 13 != 12
}

/// Writes the datagrams as Ethernet/IPv4/UDP frames (one with a VLAN tag every third packet)
/// into a capture of the given format.
pub fn write_capture(path: &Path, datagrams: &[Datagram], format: Format) {
    let mut out = Vec::new();
    let mut frame = Vec::new();
    match format {
        Format::Pcap { big_endian: be, nanos } => {
            let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
            out.extend_from_slice(&u32b(magic, be));
            out.extend_from_slice(&u16b(2, be));
            out.extend_from_slice(&u16b(4, be));
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&u32b(65535, be));
            out.extend_from_slice(&u32b(1, be));
            for (i, d) in datagrams.iter().enumerate() {
                write_udp_frame(&mut frame, ([233, 215, 21, 4], 10378), usize::from(i % 3 == 2), 0, &d.payload);
                let frac = if nanos { d.ts_ns % 1_000_000_000 } else { d.ts_ns % 1_000_000_000 / 1000 };
                out.extend_from_slice(&u32b((d.ts_ns / 1_000_000_000) as u32, be));
                out.extend_from_slice(&u32b(frac as u32, be));
                out.extend_from_slice(&u32b(frame.len() as u32, be));
                out.extend_from_slice(&u32b(frame.len() as u32, be));
                out.extend_from_slice(&frame);
            }
        }
        Format::PcapNg { big_endian, tsresol } => {
            let half = datagrams.len() / 2;
            for (section, part) in [&datagrams[..half], &datagrams[half..]].into_iter().enumerate() {
                let be = big_endian ^ (section == 1);
                let block = |out: &mut Vec<u8>, ty: u32, body: &[u8]| {
                    let padded = (body.len() + 3) & !3;
                    let len = (12 + padded) as u32;
                    out.extend_from_slice(&u32b(ty, be));
                    out.extend_from_slice(&u32b(len, be));
                    out.extend_from_slice(body);
                    out.extend(std::iter::repeat_n(0u8, padded - body.len()));
                    out.extend_from_slice(&u32b(len, be));
                };
                let mut shb = Vec::new();
                shb.extend_from_slice(&u32b(0x1a2b_3c4d, be));
                shb.extend_from_slice(&u16b(1, be));
                shb.extend_from_slice(&u16b(0, be));
                shb.extend_from_slice(&[0xff; 8]);
                shb.extend_from_slice(&u16b(1, be)); // opt_comment
                shb.extend_from_slice(&u16b(5, be));
                shb.extend_from_slice(b"weir\0\0\0\0");
                shb.extend_from_slice(&[0; 4]);
                block(&mut out, 0x0a0d_0d0a, &shb);
                for (resol, offset_s) in [(tsresol, 0i64), (9, TS_OFFSET_S)] {
                    let mut idb = Vec::new();
                    idb.extend_from_slice(&u16b(1, be));
                    idb.extend_from_slice(&u16b(0, be));
                    idb.extend_from_slice(&u32b(65535, be));
                    idb.extend_from_slice(&u16b(9, be));
                    idb.extend_from_slice(&u16b(1, be));
                    idb.extend_from_slice(&[resol, 0, 0, 0]);
                    if offset_s != 0 {
                        idb.extend_from_slice(&u16b(14, be));
                        idb.extend_from_slice(&u16b(8, be));
                        idb.extend_from_slice(&if be { offset_s.to_be_bytes() } else { offset_s.to_le_bytes() });
                    }
                    idb.extend_from_slice(&[0; 4]);
                    block(&mut out, 1, &idb);
                }
                block(&mut out, 0x0000_0bad, &[1, 2, 3, 4, 5]); // a custom block: skipped
                for (k, d) in part.iter().enumerate() {
                    let i = k + section * half;
                    if k == 1 {
                        block(&mut out, 5, &[0; 12]); // Interface Statistics: skipped
                    }
                    write_udp_frame(&mut frame, ([233, 215, 21, 4], 10378), usize::from(i % 3 == 2), 0, &d.payload);
                    let iface = (i % 2) as u32;
                    let (resol, ts) =
                        if iface == 0 { (tsresol, d.ts_ns) } else { (9, d.ts_ns - TS_OFFSET_S * 1_000_000_000) };
                    let units = ts_units(ts, resol);
                    let mut pb = Vec::new();
                    if !has_timestamp(i, format) {
                        pb.extend_from_slice(&u32b(frame.len() as u32, be));
                        pb.extend_from_slice(&frame);
                        block(&mut out, 3, &pb);
                        continue;
                    }
                    let obsolete = i % 7 == 6;
                    if obsolete {
                        pb.extend_from_slice(&u16b(iface as u16, be));
                        pb.extend_from_slice(&u16b(0, be));
                    } else {
                        pb.extend_from_slice(&u32b(iface, be));
                    }
                    pb.extend_from_slice(&u32b((units >> 32) as u32, be));
                    pb.extend_from_slice(&u32b(units as u32, be));
                    pb.extend_from_slice(&u32b(frame.len() as u32, be));
                    pb.extend_from_slice(&u32b(frame.len() as u32, be));
                    pb.extend_from_slice(&frame);
                    block(&mut out, if obsolete { 2 } else { 6 }, &pb);
                }
            }
        }
    }
    std::fs::File::create(path).unwrap().write_all(&out).unwrap();
}

/// Gzips a file's bytes into `path`.
pub fn gzip_to(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap();
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
