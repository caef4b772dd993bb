//! The IEX-TP segment parser and block iterator, with every message of every block decoded and
//! written out (which reads every field).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_feeds::iex::{FeedHandler, Message, MessageSink, MsgContext, Segment};

struct Json(Vec<u8>);

impl MessageSink for Json {
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        self.0.clear();
        weir::jsonl::write_message(&mut self.0, ctx, msg);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = Segment::parse(data) {
        let mut blocks = 0usize;
        for b in seg.blocks() {
            match b {
                Ok(b) => assert!(b.offset + b.bytes.len() <= data.len()),
                Err(_) => break,
            }
            blocks += 1;
        }
        assert!(blocks <= usize::from(seg.message_count()));
    }
    let mut handler = FeedHandler::new();
    let mut sink = Json(Vec::new());
    handler.on_datagram(data, 0, 0, &mut sink);
    let st = handler.stats();
    assert!(st.messages + st.decode_errors <= u64::from(u16::MAX));
});
