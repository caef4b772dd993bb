//! The capture reader and everything behind it: pcap/pcapng framing (gzip or not), frame peel,
//! IEX-TP, sequencing and decoding, as `weir replay` runs them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::capture::CaptureReader;
use weir_feeds::frame::peel_udp;
use weir_feeds::iex::FeedHandler;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut handler = FeedHandler::new();
    let mut packets = 0u64;
    while let Ok(Some(pkt)) = reader.next_packet() {
        assert!(pkt.data.len() <= data.len().max(1 << 20));
        if let Ok(udp) = peel_udp(pkt.link, pkt.data) {
            handler.on_datagram(udp.payload, udp.missing, pkt.ts_ns, &mut ());
        }
        packets += 1;
    }
    assert_eq!(reader.stats().packets, packets);
});
