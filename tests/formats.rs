//! The capture reader on every container it accepts: the real DEEP sample written back as pcap
//! (µs/ns, both byte orders) and pcapng (two interfaces, several `if_tsresol`, both byte orders),
//! gzipped or not, must replay to the same counts and timestamps; truncation and garbage must be
//! reported, never panic.

mod common;

use common::*;
use weir::capture::{CaptureError, CaptureReader, Container};
use weir::replay::{ReplayReport, replay};

const DEEP: &str = "Sai271828-iex-parser/test.pcap.gz";

fn run(path: &std::path::Path) -> ReplayReport {
    replay(path, None, &mut (), &mut |_| {}).unwrap()
}

#[test]
fn every_container_replays_identically() {
    let datagrams = load(DEEP);
    let reference = run(&data(DEEP));
    assert_eq!(reference.messages, 48_325);
    let dir = scratch("formats");
    let formats = [
        Format::Pcap { big_endian: false, nanos: false },
        Format::Pcap { big_endian: true, nanos: false },
        Format::Pcap { big_endian: false, nanos: true },
        Format::Pcap { big_endian: true, nanos: true },
        Format::PcapNg { big_endian: false, tsresol: 6 },
        Format::PcapNg { big_endian: true, tsresol: 9 },
        Format::PcapNg { big_endian: false, tsresol: 0x80 | 30 },
    ];
    for (i, format) in formats.into_iter().enumerate() {
        let plain = dir.join(format!("f{i}.cap"));
        write_capture(&plain, &datagrams, format);
        let gz = dir.join(format!("f{i}.gz.anything"));
        gzip_to(&gz, &std::fs::read(&plain).unwrap());
        for path in [&plain, &gz] {
            let r = run(path);
            assert_eq!(r.packets, 5_000, "{format:?} {}", path.display());
            assert_eq!(r.messages, reference.messages, "{format:?}");
            assert_eq!(r.messages_by_type, reference.messages_by_type, "{format:?}");
            assert_eq!((r.gaps.count, r.truncated_records, r.errors), (0, 0, 0), "{format:?}");
            // Timestamps survive (the sample is µs; 2^-30 s units round down by < 1 ns per µs).
            let mut reader = CaptureReader::open(path).unwrap();
            let expected_container =
                if matches!(format, Format::PcapNg { .. }) { Container::PcapNg } else { Container::Pcap };
            assert_eq!(reader.container(), expected_container);
            let mut timed = 0;
            for (i, d) in datagrams.iter().enumerate() {
                let p = reader.next_packet().unwrap().unwrap();
                if has_timestamp(i, format) {
                    assert!((p.ts_ns - d.ts_ns).abs() <= 1, "{format:?} packet {i}: {} vs {}", p.ts_ns, d.ts_ns);
                    timed += 1;
                }
            }
            assert!(timed > 4_000);
        }
    }
}

#[test]
fn truncation_anywhere_is_counted_and_keeps_what_came_before() {
    let datagrams: Vec<_> = load(DEEP).into_iter().take(40).collect();
    let dir = scratch("truncate");
    for format in [Format::Pcap { big_endian: false, nanos: false }, Format::PcapNg { big_endian: false, tsresol: 6 }] {
        let whole = dir.join("whole");
        write_capture(&whole, &datagrams, format);
        let bytes = std::fs::read(&whole).unwrap();
        // Where each packet's record or block ends in the file.
        let mut ends = Vec::new();
        let mut r = CaptureReader::open(&whole).unwrap();
        while let Some(p) = r.next_packet().unwrap() {
            let end = match format {
                Format::Pcap { .. } => p.file_offset as usize + 16 + p.data.len(),
                Format::PcapNg { .. } => {
                    // The block's length, in whichever byte order its section uses.
                    let at = p.file_offset as usize;
                    let le = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                    let be = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                    let fits = |n: usize| {
                        n >= 12 && at + n <= bytes.len() && bytes[at + n - 4..at + n] == bytes[at + 4..at + 8]
                    };
                    at + if fits(le) { le } else { be }
                }
            };
            ends.push(end);
        }
        assert_eq!(ends.len(), 40);
        // Every place where a record or block (of any kind) ends: a cut there is a clean end.
        let mut boundaries = vec![24usize];
        if let Format::PcapNg { .. } = format {
            boundaries.clear();
            let mut at = 0;
            while at < bytes.len() {
                let le = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                let be = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                let fits =
                    |n: usize| n >= 12 && at + n <= bytes.len() && bytes[at + n - 4..at + n] == bytes[at + 4..at + 8];
                at += if fits(le) { le } else { be };
                boundaries.push(at);
            }
        }
        boundaries.extend(&ends);
        let cut_path = dir.join("cut");
        for cut in (0..=bytes.len()).step_by(37) {
            std::fs::write(&cut_path, &bytes[..cut]).unwrap();
            match replay(&cut_path, None, &mut (), &mut |_| {}) {
                Ok(r) => {
                    let whole_records = ends.iter().filter(|&&e| e <= cut).count() as u64;
                    assert_eq!(r.packets, whole_records, "{format:?} cut at {cut}");
                    let expected: u64 = datagrams[..whole_records as usize]
                        .iter()
                        .map(|d| u64::from(weir_feeds::iex::Segment::parse(&d.payload).unwrap().message_count()))
                        .sum();
                    assert_eq!(r.messages, expected, "{format:?} cut at {cut}");
                    let on_boundary = boundaries.contains(&cut);
                    assert_eq!(r.truncated_records, u64::from(!on_boundary), "{format:?} cut at {cut}");
                }
                // Too short to hold even the file header.
                Err(e) => assert!(cut < 40, "cut at {cut}: {e}"),
            }
        }
    }
}

#[test]
fn a_gzip_stream_cut_between_two_records_is_still_a_cut() {
    let datagrams: Vec<_> = load(DEEP).into_iter().take(200).collect();
    let dir = scratch("gzboundary");
    let plain = dir.join("p.pcap");
    write_capture(&plain, &datagrams, Format::Pcap { big_endian: false, nanos: false });
    let bytes = std::fs::read(&plain).unwrap();
    // Compress the first 100 records as a complete member, then a second member cut short.
    let mut r = CaptureReader::open(&plain).unwrap();
    let mut boundary = 0;
    for _ in 0..100 {
        let p = r.next_packet().unwrap().unwrap();
        boundary = p.file_offset as usize + 16 + p.data.len();
    }
    let gz = dir.join("cut.gz");
    gzip_to(&gz, &bytes[..boundary]);
    let mut whole = std::fs::read(&gz).unwrap();
    let second = dir.join("second.gz");
    gzip_to(&second, &bytes[boundary..]);
    let second = std::fs::read(&second).unwrap();
    whole.extend_from_slice(&second[..12]); // a member header and a few bytes: no whole record
    std::fs::write(&gz, &whole).unwrap();
    let rep = run(&gz);
    assert_eq!((rep.packets, rep.truncated_records), (100, 1));
    assert!(rep.first_errors.iter().any(|e| e.contains("input ends early")), "{:?}", rep.first_errors);
}

#[test]
fn a_tiny_simple_packet_block_is_an_error_not_a_panic() {
    let dir = scratch("spb");
    let p = dir.join("spb.pcapng");
    let datagrams: Vec<_> = load(DEEP).into_iter().take(2).collect();
    // Big-endian first section, so the last one (where the bytes below land) is little-endian.
    write_capture(&p, &datagrams, Format::PcapNg { big_endian: true, tsresol: 6 });
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend_from_slice(&[3, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0]);
    std::fs::write(&p, &bytes).unwrap();
    let r = run(&p);
    assert_eq!(r.packets, 2);
    assert!(r.first_errors.iter().any(|e| e.contains("simple packet block shorter")), "{:?}", r.first_errors);
}

#[test]
fn the_real_hist_head_ends_in_a_truncated_block() {
    let r = run(&data("lvfrazao-IEXTools/example1.pcap"));
    assert_eq!((r.packets, r.messages, r.truncated_records), (2, 53, 1));
}

#[test]
fn bad_input_names_what_and_where() {
    let dir = scratch("bad");
    let missing = dir.join("nope.pcap");
    let e = CaptureReader::open(&missing).unwrap_err();
    assert!(matches!(e, CaptureError::Io { .. }));
    assert!(e.to_string().contains("nope.pcap"), "{e}");

    let text = dir.join("notes.pcap");
    std::fs::write(&text, b"hello world").unwrap();
    let e = CaptureReader::open(&text).unwrap_err().to_string();
    assert!(e.contains("68 65 6c 6c") && e.contains("notes.pcap"), "{e}");

    let gz = dir.join("text.gz");
    gzip_to(&gz, b"not a capture");
    let e = CaptureReader::open(&gz).unwrap_err().to_string();
    assert!(e.contains("inside gzip"), "{e}");

    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(CaptureReader::open(&empty).unwrap_err().to_string().contains("empty"));

    // A pcapng block with an impossible length: an error with its byte offset, after the good ones.
    let good = dir.join("good.pcapng");
    let datagrams: Vec<_> = load(DEEP).into_iter().take(3).collect();
    // Big-endian first section, so the last one (where the bytes below land) is little-endian.
    write_capture(&good, &datagrams, Format::PcapNg { big_endian: true, tsresol: 6 });
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len();
    bytes.extend_from_slice(&[6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&good, &bytes).unwrap();
    let mut r = CaptureReader::open(&good).unwrap();
    for _ in 0..3 {
        assert!(r.next_packet().unwrap().is_some());
    }
    let e = r.next_packet().unwrap_err().to_string();
    assert!(e.contains(&format!("byte {at}")) && e.contains("invalid length 7"), "{e}");
}

#[test]
fn a_cut_gzip_stream_keeps_every_whole_record_and_says_where_it_stopped() {
    let datagrams = load(DEEP);
    let gz = std::fs::read(data(DEEP)).unwrap();
    let dir = scratch("cutgz");
    let cut = dir.join("cut.pcap.gz");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    let r = run(&cut);
    assert_eq!(r.truncated_records, 1);
    assert!(r.packets > 1_000 && r.packets < 5_000, "{}", r.packets);
    let whole: u64 = datagrams[..r.packets as usize]
        .iter()
        .map(|d| u64::from(weir_feeds::iex::Segment::parse(&d.payload).unwrap().message_count()))
        .sum();
    assert_eq!(r.messages, whole);
    assert!(
        r.first_errors.iter().any(|e| e.contains("cut.pcap.gz") && e.contains("input ends early")),
        "{:?}",
        r.first_errors
    );
}
