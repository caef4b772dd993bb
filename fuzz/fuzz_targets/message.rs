//! Every message decoder: the first byte picks the protocol (TOPS 1.5, TOPS 1.6, DEEP, DEEP+ or an
//! unknown one), the rest is one message body. Every field of the result is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_feeds::iex::message::layout_len;
use weir_feeds::iex::{DecodeError, Message, MsgContext, Protocol, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&p, body)) = data.split_first() else { return };
    let protocol = match p % 5 {
        0 => Protocol::Tops15,
        1 => Protocol::Tops16,
        2 => Protocol::Deep,
        3 => Protocol::DeepPlus,
        _ => Protocol::Other(0x9000 | u16::from(p)),
    };
    match decode(protocol, body) {
        Ok(msg) => {
            match msg {
                Message::Empty => assert!(body.is_empty()),
                Message::Unknown { msg_type, .. } => assert_eq!(layout_len(protocol, msg_type), None),
                ref m => assert!(body.len() >= usize::from(layout_len(protocol, m.type_byte()).unwrap_or(0))),
            }
            let ctx = MsgContext {
                protocol,
                channel: 1,
                session: 1,
                seq: 1,
                send_time: 0,
                recv_time: 0,
                offset: 0,
                late: false,
            };
            let mut out = Vec::new();
            weir::jsonl::write_message(&mut out, &ctx, &msg);
            assert!(out.ends_with(b"}\n"));
        }
        Err(DecodeError::TooShort { len, min, .. }) => assert!(len < min),
    }
});
