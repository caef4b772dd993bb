//! IEX-TP: the segment header and its message blocks.
//!
//! One UDP datagram carries one segment: a 40-byte header, then `message_count` blocks of
//! `[u16 length][length bytes]` that must tile the declared payload exactly.

/// Length of the IEX-TP segment header.
pub const HEADER_LEN: usize = 40;

/// The feed a segment belongs to, from its Message Protocol ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 0x8002: TOPS 1.5 (`Q`, and 42-byte `T`/`B`).
    Tops15,
    /// 0x8003: TOPS 1.6.
    Tops16,
    /// 0x8004: DEEP 1.0 (price levels).
    Deep,
    /// 0x8005: DEEP+ 1.0 (order by order).
    DeepPlus,
    /// Any other id: its messages are skipped by length and counted.
    Other(u16),
}

impl Protocol {
    /// Maps a Message Protocol ID.
    #[inline]
    pub const fn from_id(id: u16) -> Self {
        match id {
            0x8002 => Protocol::Tops15,
            0x8003 => Protocol::Tops16,
            0x8004 => Protocol::Deep,
            0x8005 => Protocol::DeepPlus,
            other => Protocol::Other(other),
        }
    }

    /// The wire id.
    #[inline]
    pub const fn id(self) -> u16 {
        match self {
            Protocol::Tops15 => 0x8002,
            Protocol::Tops16 => 0x8003,
            Protocol::Deep => 0x8004,
            Protocol::DeepPlus => 0x8005,
            Protocol::Other(id) => id,
        }
    }

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tops15 => "TOPS 1.5",
            Protocol::Tops16 => "TOPS 1.6",
            Protocol::Deep => "DEEP 1.0",
            Protocol::DeepPlus => "DEEP+ 1.0",
            Protocol::Other(_) => "unknown protocol",
        }
    }
}

/// Why a datagram is not an IEX-TP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Fewer than 40 bytes.
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// Version byte other than 1.
    BadVersion(u8),
}

impl core::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SegmentError::TooShort { len } => {
                write!(f, "IEX-TP segment of {len} bytes is shorter than its 40-byte header")
            }
            SegmentError::BadVersion(v) => write!(f, "IEX-TP version {v} at byte 0 (expected 1)"),
        }
    }
}

/// A message block that could not be read. Offsets are from the start of the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The payload ends inside block `index` (its length prefix or its body) at `offset`.
    Truncated {
        /// Zero-based block index within the segment.
        index: u16,
        /// Offset of the block's length prefix.
        offset: usize,
    },
    /// All `message_count` blocks were read but bytes remain in the declared payload.
    TrailingBytes {
        /// Offset of the first byte past the last block.
        offset: usize,
        /// How many.
        len: usize,
    },
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockError::Truncated { index, offset } => {
                write!(f, "message block {index} at segment byte {offset} runs past the payload")
            }
            BlockError::TrailingBytes { offset, len } => {
                write!(f, "{len} bytes after the last message block at segment byte {offset}")
            }
        }
    }
}

/// A view of one IEX-TP segment. Header accessors cannot panic once [`Segment::parse`] succeeded.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    header: &'a [u8; HEADER_LEN],
    /// The payload as far as it was captured (at most the declared payload length).
    payload: &'a [u8],
}

#[inline]
fn le_u16(b: &[u8; HEADER_LEN], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
fn le_u32(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn le_i64(b: &[u8; HEADER_LEN], at: usize) -> i64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(v)
}

impl<'a> Segment<'a> {
    /// Checks the header; the payload may be shorter or longer than the header declares
    /// (see [`Segment::length_mismatch`]).
    #[inline]
    pub fn parse(datagram: &'a [u8]) -> Result<Self, SegmentError> {
        let Some((header, rest)) = datagram.split_first_chunk::<HEADER_LEN>() else {
            return Err(SegmentError::TooShort { len: datagram.len() });
        };
        if header[0] != 1 {
            return Err(SegmentError::BadVersion(header[0]));
        }
        let declared = usize::from(le_u16(header, 12));
        let payload = &rest[..declared.min(rest.len())];
        Ok(Segment { header, payload })
    }

    /// Version (always 1 after `parse`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.header[0]
    }
    /// Message Protocol ID, raw.
    #[inline]
    pub fn protocol_id(&self) -> u16 {
        le_u16(self.header, 2)
    }
    /// The feed, from the protocol id.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from_id(self.protocol_id())
    }
    /// Channel ID (1, or 1–16 for multi-channel DEEP+).
    #[inline]
    pub fn channel(&self) -> u32 {
        le_u32(self.header, 4)
    }
    /// Session ID.
    #[inline]
    pub fn session(&self) -> u32 {
        le_u32(self.header, 8)
    }
    /// Payload length declared by the header.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        le_u16(self.header, 12)
    }
    /// Number of message blocks declared by the header.
    #[inline]
    pub fn message_count(&self) -> u16 {
        le_u16(self.header, 14)
    }
    /// Byte position of this payload in the channel's stream.
    #[inline]
    pub fn stream_offset(&self) -> i64 {
        le_i64(self.header, 16)
    }
    /// Sequence number of the first block.
    #[inline]
    pub fn first_seq(&self) -> i64 {
        le_i64(self.header, 24)
    }
    /// When the segment left IEX, ns since the Unix epoch.
    #[inline]
    pub fn send_time(&self) -> i64 {
        le_i64(self.header, 32)
    }
    /// A heartbeat: no messages.
    #[inline]
    pub fn is_heartbeat(&self) -> bool {
        self.message_count() == 0
    }
    /// The payload bytes present (declared length, or fewer if the datagram was cut).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// `Some((declared, present))` when the datagram does not hold exactly `40 + payload_len`
    /// bytes. `datagram_len` is the length passed to `parse`, plus any bytes the capture lost.
    #[inline]
    pub fn length_mismatch(&self, datagram_len: usize) -> Option<(usize, usize)> {
        let declared = usize::from(self.payload_len());
        let present = datagram_len.saturating_sub(HEADER_LEN);
        (declared != present).then_some((declared, present))
    }
    /// The message blocks, in order, each with its sequence number.
    #[inline]
    pub fn blocks(&self) -> Blocks<'a> {
        Blocks { rest: self.payload, offset: HEADER_LEN, index: 0, count: self.message_count(), seq: self.first_seq() }
    }
}

/// One message block: its bytes (without the length prefix) and its place in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    /// Sequence number (first_seq + index).
    pub seq: i64,
    /// Zero-based index in the segment.
    pub index: u16,
    /// Offset of the message body from the start of the segment.
    pub offset: usize,
    /// The message bytes; may be empty (a zero-length block is legal).
    pub bytes: &'a [u8],
}

/// Iterator over a segment's message blocks. Yields `Err` once, then stops, when the blocks do not
/// tile the payload: the blocks before the fault are all delivered.
#[derive(Clone, Debug)]
pub struct Blocks<'a> {
    rest: &'a [u8],
    offset: usize,
    index: u16,
    count: u16,
    seq: i64,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block<'a>, BlockError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index == self.count {
            if self.rest.is_empty() {
                return None;
            }
            let err = BlockError::TrailingBytes { offset: self.offset, len: self.rest.len() };
            self.rest = &[];
            return Some(Err(err));
        }
        let fault = BlockError::Truncated { index: self.index, offset: self.offset };
        let Some((len, body)) = self.rest.split_first_chunk::<2>() else {
            return self.fail(fault);
        };
        let len = usize::from(u16::from_le_bytes(*len));
        let Some((bytes, rest)) = body.split_at_checked(len) else {
            return self.fail(fault);
        };
        let block = Block { seq: self.seq, index: self.index, offset: self.offset + 2, bytes };
        self.rest = rest;
        self.offset += 2 + len;
        self.index += 1;
        self.seq = self.seq.wrapping_add(1);
        Some(Ok(block))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.count - self.index);
        (0, Some(left + 1))
    }
}

impl Blocks<'_> {
    #[cold]
    fn fail<T>(&mut self, err: BlockError) -> Option<Result<T, BlockError>> {
        self.index = self.count;
        self.rest = &[];
        Some(Err(err))
    }

    /// Blocks not yet yielded (those after a fault included).
    #[inline]
    pub fn remaining(&self) -> u16 {
        self.count - self.index
    }
}

/// Writes an IEX-TP gap-fill request (request type 1, sequenced) for `ranges` (inclusive
/// sequence-number pairs, increasing, not overlapping) into `out`; an empty `ranges` is the
/// liveness probe. Returns the length written, or `None` if `out` is too small (16 + 16 per range).
/// IEX answers at most 1,000 messages per UDP request.
pub fn write_gap_fill_request(
    out: &mut [u8],
    protocol: u16,
    channel: u32,
    session: u32,
    ranges: &[(i64, i64)],
) -> Option<usize> {
    let len = 16 + 16 * ranges.len();
    let out = out.get_mut(..len)?;
    out[0] = 1;
    out[1] = 1;
    out[2..4].copy_from_slice(&protocol.to_le_bytes());
    out[4..8].copy_from_slice(&channel.to_le_bytes());
    out[8..12].copy_from_slice(&session.to_le_bytes());
    out[12..16].copy_from_slice(&u32::try_from(ranges.len()).ok()?.to_le_bytes());
    for (k, &(first, last)) in ranges.iter().enumerate() {
        let at = 16 + 16 * k;
        out[at..at + 8].copy_from_slice(&first.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&last.to_le_bytes());
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::test_hex as hex;

    /// IEX.md §1.7: the transport specification's example segment.
    #[test]
    fn spec_segment_vector() {
        let bytes = hex("01000480 01000000 00008742 4800 0200 8ca6210000000000 cac3000000000000 ec45c22096866d14
             2600 5400ac63c02096866d145a4945585420202064000000241d0f0000000000968f060000000000
             1e00 3801ac63c02096866d145a49455854202020e4250000241d0f0000000000");
        assert_eq!(bytes.len(), 112);
        let seg = Segment::parse(&bytes).unwrap();
        assert_eq!(seg.version(), 1);
        assert_eq!(seg.protocol(), Protocol::Deep);
        assert_eq!(seg.channel(), 1);
        assert_eq!(seg.session(), 1_116_143_616);
        assert_eq!(seg.payload_len(), 72);
        assert_eq!(seg.message_count(), 2);
        assert_eq!(seg.stream_offset(), 2_205_324);
        assert_eq!(seg.first_seq(), 50_122);
        assert_eq!(seg.send_time(), 1_471_980_632_572_839_404);
        assert_eq!(seg.length_mismatch(bytes.len()), None);
        let blocks: Vec<_> = seg.blocks().collect::<Result<_, _>>().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].seq, blocks[0].offset, blocks[0].bytes.len()), (50_122, 42, 38));
        assert_eq!((blocks[1].seq, blocks[1].offset, blocks[1].bytes.len()), (50_123, 82, 30));
    }

    /// IEX.md §1.7: the UDP gap-fill test response (a heartbeat-shaped segment).
    #[test]
    fn heartbeat_shaped_response() {
        let bytes = hex("010002800100000000008742000000008ca6210000000000cac3000000000000ec45c22096866d14");
        let seg = Segment::parse(&bytes).unwrap();
        assert!(seg.is_heartbeat());
        assert_eq!(seg.protocol(), Protocol::Tops15);
        assert_eq!((seg.stream_offset(), seg.first_seq()), (2_205_324, 50_122));
        assert_eq!(seg.blocks().next(), None);
    }

    #[test]
    fn zero_length_blocks_are_legal_and_tiling_is_checked() {
        let mut seg = hex("01000480 01000000 00008742 0700 0300 0000000000000000 0100000000000000 0000000000000000");
        seg.extend_from_slice(&[0, 0, 1, 0, b'x', 0, 0]);
        let s = Segment::parse(&seg).unwrap();
        let blocks: Vec<_> = s.blocks().map(|b| b.unwrap().bytes.len()).collect();
        assert_eq!(blocks, [0, 1, 0]);

        // Declared 3 blocks, but the payload holds only 2 and a half.
        let cut = &seg[..seg.len() - 1];
        let s = Segment::parse(cut).unwrap();
        assert_eq!(s.length_mismatch(cut.len()), Some((7, 6)));
        let got: Vec<_> = s.blocks().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Err(BlockError::Truncated { index: 2, offset: 45 }));

        // Two blocks declared, three present.
        let mut two = seg.clone();
        two[14] = 2;
        let got: Vec<_> = Segment::parse(&two).unwrap().blocks().collect();
        assert_eq!(got[2], Err(BlockError::TrailingBytes { offset: 45, len: 2 }));
    }

    /// IEX.md §1.7: gap-fill request and the liveness probe.
    #[test]
    fn gap_fill_request_vectors() {
        let mut buf = [0u8; 64];
        let n =
            write_gap_fill_request(&mut buf, 0x8004, 1, 1_116_143_616, &[(12_340, 12_350), (56_789, 56_799)]).unwrap();
        assert_eq!(
            &buf[..n],
            hex(
                "0101 0480 01000000 00008742 02000000 3430000000000000 3e30000000000000 d5dd000000000000 dfdd000000000000"
            )
        );
        let n = write_gap_fill_request(&mut buf, 0x8004, 1, 1_116_143_616, &[]).unwrap();
        assert_eq!(&buf[..n], hex("01010480010000000000874200000000"));
        assert_eq!(write_gap_fill_request(&mut buf[..20], 0x8004, 1, 1, &[(1, 2)]), None);
    }

    /// IEX.md §1.7, real-data vectors: whole UDP payloads from the captures.
    #[test]
    fn real_data_vectors() {
        use crate::iex::message::{Message, decode};
        let one = |h: &str| {
            let bytes = hex(h);
            let seg = Segment::parse(&bytes).unwrap();
            assert_eq!(seg.length_mismatch(bytes.len()), None);
            let blocks: Vec<_> = seg.blocks().collect::<Result<_, _>>().unwrap();
            let msgs: Vec<Vec<u8>> = blocks.iter().map(|b| b.bytes.to_vec()).collect();
            (seg.protocol(), seg.session(), seg.first_seq(), seg.stream_offset(), bytes.len(), msgs)
        };
        // TOPS 1.5 segment (2017-10-28).
        let (p, session, seq, offset, _, msgs) =
            one("010002800100000000003b442c0001007cab050000000000fe20000000000000f5abe3de20baf114 \
             2a00 514049ee2fde20baf1145a49455854202020000000000000000000000000102700000000000064000000");
        assert_eq!((p, session, seq, offset), (Protocol::Tops15, 1_144_717_312, 8_446, 371_580));
        let Ok(Message::QuoteUpdate(q)) = decode(p, &msgs[0]) else { panic!() };
        assert_eq!(
            (q.flags_raw(), q.bid_size(), q.bid_price(), q.ask_price(), q.ask_size()),
            (0x40, 0, 0, 10_000, 100)
        );
        assert_eq!((q.symbol().as_str(), q.timestamp()), (Some("ZIEXT"), 1_509_192_000_475_229_769));

        // DEEP segment (2021-07-12).
        let (p, _, seq, offset, _, msgs) =
            one("01000480010000000000844920000100f6ff1e0100000000361a09000000000021d3c1b64d0e9116 \
             1e00 38017e39c1b64d0e91164e45542020202020 2c010000c0f7100000000000");
        assert_eq!((p, seq, offset), (Protocol::Deep, 596_534, 18_808_822));
        let Ok(Message::PriceLevelUpdate(u)) = decode(p, &msgs[0]) else { panic!() };
        assert_eq!((u.symbol().as_str(), u.size(), u.price(), u.event_complete()), (Some("NET"), 300, 1_112_000, true));

        // DEEP+ add order.
        let (p, _, seq, _, _, msgs) =
            one("010005800100000000001d4e28000100cd490f00000000002eb8000000000000db289e166155fa17 \
             2600 61351e7711156155fa1749424b52202020200a000000000063006400000008d4140000000000");
        assert_eq!((p, seq), (Protocol::DeepPlus, 47_150));
        let Ok(Message::AddOrder(a)) = decode(p, &msgs[0]) else { panic!() };
        assert_eq!(
            (a.order_id(), a.size(), a.price(), a.timestamp()),
            (27_866_022_694_354_954, 100, 1_365_000, 1_727_787_282_503_661_342)
        );
        assert_eq!(a.side(), crate::iex::codes::Side::Sell);

        // DEEP+ delete, reserved byte 0x20.
        let (p, _, seq, _, len, msgs) =
            one("010005800100000000001d4e1c000100f5490f00000000002fb80000000000004ff79dc56155fa17 \
             1a00 52204a97fec26155fa1749424b52202020200a00000000006300");
        assert_eq!((seq, len - 40), (47_151, 28));
        let Ok(Message::OrderDelete(r)) = decode(p, &msgs[0]) else { panic!() };
        assert_eq!(
            (r.reserved(), r.order_id(), r.timestamp()),
            (0x20, 27_866_022_694_354_954, 1_727_787_285_421_659_978)
        );

        // DEEP heartbeat.
        let (p, _, seq, offset, _, msgs) =
            one("01000480010000000000dd480000000000000000000000000100000000000000af326a0223e05d16");
        assert_eq!((p, seq, offset, msgs.len()), (Protocol::Deep, 1, 0, 0));
    }

    #[test]
    fn short_and_bad_version() {
        assert_eq!(Segment::parse(&[1; 39]).unwrap_err(), SegmentError::TooShort { len: 39 });
        assert_eq!(Segment::parse(&[2; 40]).unwrap_err(), SegmentError::BadVersion(2));
    }
}
