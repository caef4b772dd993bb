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
