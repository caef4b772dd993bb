//! Writing IEX-TP segments: for tests, fault injection (re-segmenting a real capture) and fuzz
//! seeds. Not used on the receive path.

#[cfg(feature = "std")]
use std::vec::Vec;

/// Builds consecutive segments of one stream, keeping sequence numbers and stream offsets right.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct SegmentBuilder {
    protocol: u16,
    channel: u32,
    session: u32,
    next_seq: i64,
    next_offset: i64,
    payload: Vec<u8>,
    count: u16,
}

#[cfg(feature = "std")]
impl SegmentBuilder {
    /// A builder for a stream whose first message will be seq 1 at stream offset 0.
    pub fn new(protocol: u16, channel: u32, session: u32) -> Self {
        SegmentBuilder { protocol, channel, session, next_seq: 1, next_offset: 0, payload: Vec::new(), count: 0 }
    }

    /// Starts at another sequence number and stream offset (nothing may be pending).
    pub fn starting_at(mut self, seq: i64, offset: i64) -> Self {
        self.next_seq = seq;
        self.next_offset = offset;
        self
    }

    /// Adds one message block (without its length prefix).
    pub fn push(&mut self, msg: &[u8]) {
        self.payload.extend_from_slice(&(msg.len() as u16).to_le_bytes());
        self.payload.extend_from_slice(msg);
        self.count += 1;
    }

    /// Messages added since the last `finish`.
    pub fn pending(&self) -> u16 {
        self.count
    }

    /// Payload bytes added since the last `finish`.
    pub fn pending_len(&self) -> usize {
        self.payload.len()
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> i64 {
        self.next_seq.wrapping_add(i64::from(self.count))
    }

    /// Emits the pending messages as one segment sent at `send_time`, and advances the stream.
    pub fn finish(&mut self, send_time: i64) -> Vec<u8> {
        let out = self.header(send_time, self.count, self.payload.len(), Some(&self.payload));
        self.next_seq = self.next_seq.wrapping_add(i64::from(self.count));
        self.next_offset = self.next_offset.wrapping_add(self.payload.len() as i64);
        self.payload.clear();
        self.count = 0;
        out
    }

    /// A heartbeat at the current position (nothing may be pending).
    pub fn heartbeat(&mut self, send_time: i64) -> Vec<u8> {
        self.header(send_time, 0, 0, None)
    }

    fn header(&self, send_time: i64, count: u16, len: usize, payload: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + len);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&self.protocol.to_le_bytes());
        out.extend_from_slice(&self.channel.to_le_bytes());
        out.extend_from_slice(&self.session.to_le_bytes());
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.next_seq.to_le_bytes());
        out.extend_from_slice(&send_time.to_le_bytes());
        if let Some(p) = payload {
            out.extend_from_slice(p);
        }
        out
    }
}

/// Message bodies (without the block length), for tests, benches and fuzz seeds. Prices are IEX
/// units (1e-4 dollars); `sell` picks side `5`, otherwise `8`.
#[cfg(feature = "std")]
pub mod msg {
    use std::vec::Vec;

    fn head(t: u8, b1: u8, ts: i64, symbol: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(46);
        m.extend_from_slice(&[t, b1]);
        m.extend_from_slice(&ts.to_le_bytes());
        let mut sym = [b' '; 8];
        let n = symbol.len().min(8);
        sym[..n].copy_from_slice(&symbol.as_bytes()[..n]);
        m.extend_from_slice(&sym);
        m
    }

    fn side(sell: bool) -> u8 {
        if sell { b'5' } else { b'8' }
    }

    /// A message with only the common head (type, byte 1, timestamp, symbol): `C` Clear Book,
    /// `O`/`H`/`I`/`E` with their code in byte 1 (add the tail they need).
    pub fn symbol_event(t: u8, b1: u8, ts: i64, symbol: &str) -> Vec<u8> {
        head(t, b1, ts, symbol)
    }

    /// `8`/`5` Price Level Update (DEEP); `complete` is event flag 1.
    pub fn price_level(ts: i64, symbol: &str, sell: bool, complete: bool, size: u32, price: i64) -> Vec<u8> {
        let mut m = head(side(sell), u8::from(complete), ts, symbol);
        m.extend_from_slice(&size.to_le_bytes());
        m.extend_from_slice(&price.to_le_bytes());
        m
    }

    fn order(t: u8, b1: u8, ts: i64, symbol: &str, id: u64, size: u32, price: i64) -> Vec<u8> {
        let mut m = head(t, b1, ts, symbol);
        m.extend_from_slice(&id.to_le_bytes());
        m.extend_from_slice(&size.to_le_bytes());
        m.extend_from_slice(&price.to_le_bytes());
        m
    }

    /// `a` Add Order (DEEP+).
    pub fn add_order(ts: i64, symbol: &str, id: u64, sell: bool, size: u32, price: i64) -> Vec<u8> {
        order(b'a', side(sell), ts, symbol, id, size, price)
    }

    /// `M` Order Modify (DEEP+) with the raw flag byte (0x01: keep priority as weir decodes it).
    pub fn order_modify(ts: i64, symbol: &str, id: u64, flags: u8, size: u32, price: i64) -> Vec<u8> {
        order(b'M', flags, ts, symbol, id, size, price)
    }

    /// `R` Order Delete (DEEP+).
    pub fn order_delete(ts: i64, symbol: &str, id: u64) -> Vec<u8> {
        let mut m = head(b'R', 0x20, ts, symbol);
        m.extend_from_slice(&id.to_le_bytes());
        m
    }

    /// `L` Order Executed (DEEP+).
    pub fn order_executed(ts: i64, symbol: &str, id: u64, size: u32, price: i64, trade_id: i64) -> Vec<u8> {
        let mut m = order(b'L', 0, ts, symbol, id, size, price);
        m.extend_from_slice(&trade_id.to_le_bytes());
        m
    }

    /// `T` Trade Report or `B` Trade Break (38 bytes, TOPS 1.6 / DEEP / DEEP+).
    pub fn trade(t: u8, ts: i64, symbol: &str, size: u32, price: i64, trade_id: i64) -> Vec<u8> {
        let mut m = head(t, 0, ts, symbol);
        m.extend_from_slice(&size.to_le_bytes());
        m.extend_from_slice(&price.to_le_bytes());
        m.extend_from_slice(&trade_id.to_le_bytes());
        m
    }

    /// `Q` Quote Update (TOPS): `(bid size, bid price)`, `(ask price, ask size)`.
    pub fn quote(ts: i64, symbol: &str, flags: u8, bid: (u32, i64), ask: (i64, u32)) -> Vec<u8> {
        let mut m = head(b'Q', flags, ts, symbol);
        m.extend_from_slice(&bid.0.to_le_bytes());
        m.extend_from_slice(&bid.1.to_le_bytes());
        m.extend_from_slice(&ask.0.to_le_bytes());
        m.extend_from_slice(&ask.1.to_le_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::Segment;

    #[test]
    fn builds_what_the_parser_reads() {
        let mut b = SegmentBuilder::new(0x8005, 3, 42).starting_at(100, 5000);
        b.push(b"abc");
        b.push(b"");
        let seg = b.finish(77);
        let s = Segment::parse(&seg).unwrap();
        assert_eq!((s.protocol_id(), s.channel(), s.session()), (0x8005, 3, 42));
        assert_eq!(
            (s.first_seq(), s.stream_offset(), s.message_count(), s.payload_len(), s.send_time()),
            (100, 5000, 2, 7, 77)
        );
        let hb = b.heartbeat(78);
        let h = Segment::parse(&hb).unwrap();
        assert_eq!((h.first_seq(), h.stream_offset(), h.message_count()), (102, 5007, 0));
    }
}
