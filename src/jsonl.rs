//! One JSON object per IEX message: the `--emit jsonl` format.
//!
//! Keys are IEX.md's field names in snake_case. Prices are the raw integers (1/10,000 dollars),
//! timestamps integer ns, ids 64-bit integers written exactly (never through a float), flag bytes
//! the raw byte, codes the one-character string IEX sends (binary ones as integers).

use std::io::{self, Write};

use weir_feeds::iex::MsgContext;
use weir_feeds::iex::message::{Message, Symbol};

/// Builds one JSON object in a reusable buffer.
struct Obj<'b> {
    out: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Obj<'b> {
    fn new(out: &'b mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    fn int(&mut self, k: &str, v: impl itoa::Integer) -> &mut Self {
        self.key(k);
        self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }
    fn str_bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        self.out.push(b'"');
        for &b in v {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                0x20..=0x7e => self.out.push(b),
                _ => {
                    let _ = write!(self.out, "\\u{:04x}", b);
                }
            }
        }
        self.out.push(b'"');
        self
    }
    fn code(&mut self, k: &str, raw: u8) -> &mut Self {
        self.str_bytes(k, &[raw])
    }
    fn symbol(&mut self, s: Symbol) -> &mut Self {
        self.str_bytes("symbol", s.as_bytes())
    }
    fn finish(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

/// Appends one message as a JSON line to `out`.
pub fn write_message(out: &mut Vec<u8>, ctx: &MsgContext, msg: &Message<'_>) {
    let mut o = Obj::new(out);
    o.int("seq", ctx.seq).int("session", ctx.session);
    let t = msg.type_byte();
    o.code("type", t);
    if ctx.late {
        o.key("late");
        o.out.extend_from_slice(b"true");
    }
    match msg {
        Message::SystemEvent(m) => {
            o.int("timestamp", m.timestamp()).code("system_event", m.event().raw());
        }
        Message::SecurityDirectory(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.int("round_lot_size", m.round_lot_size()).int("adjusted_poc_price", m.adjusted_poc_price());
            o.int("luld_tier", m.luld_tier().raw());
        }
        Message::TradingStatus(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("trading_status", m.status().raw());
            o.str_bytes("reason", m.reason());
        }
        Message::RetailLiquidityIndicator(m) => {
            o.int("timestamp", m.timestamp())
                .symbol(m.symbol())
                .code("retail_liquidity_indicator", m.indicator().raw());
        }
        Message::OperationalHaltStatus(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("operational_halt_status", m.status().raw());
        }
        Message::ShortSalePriceTest(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("short_sale_price_test_status", m.status());
            o.code("detail", m.detail().raw());
        }
        Message::SecurityEvent(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("security_event", m.event().raw());
        }
        Message::QuoteUpdate(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.int("bid_size", m.bid_size()).int("bid_price", m.bid_price());
            o.int("ask_price", m.ask_price()).int("ask_size", m.ask_size());
        }
        Message::Trade(m) | Message::HiddenTrade(m) | Message::TradeBreak(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.int("size", m.size()).int("price", m.price()).int("trade_id", m.trade_id());
        }
        Message::OfficialPrice(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("price_type", m.price_type().raw());
            o.int("price", m.price());
        }
        Message::AuctionInformation(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("auction_type", m.auction_type().raw());
            o.int("paired_shares", m.paired_shares()).int("reference_price", m.reference_price());
            o.int("indicative_clearing_price", m.indicative_clearing_price());
            o.int("imbalance_shares", m.imbalance_shares()).code("imbalance_side", m.imbalance_side().raw());
            o.int("extension_number", m.extension_number()).int("scheduled_auction_time", m.scheduled_auction_time());
            o.int("auction_book_clearing_price", m.auction_book_clearing_price());
            o.int("collar_reference_price", m.collar_reference_price());
            o.int("lower_auction_collar", m.lower_auction_collar())
                .int("upper_auction_collar", m.upper_auction_collar());
        }
        Message::PriceLevelUpdate(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.code("side", m.side().raw()).int("size", m.size()).int("price", m.price());
        }
        Message::AddOrder(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).code("side", m.side().raw());
            o.int("order_id", m.order_id()).int("size", m.size()).int("price", m.price());
        }
        Message::OrderModify(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.int("order_id", m.order_id()).int("size", m.size()).int("price", m.price());
        }
        Message::OrderDelete(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("order_id", m.order_id());
        }
        Message::OrderExecuted(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol()).int("flags", m.flags_raw());
            o.int("order_id", m.order_id()).int("size", m.size()).int("price", m.price()).int("trade_id", m.trade_id());
        }
        Message::ClearBook(m) => {
            o.int("timestamp", m.timestamp()).symbol(m.symbol());
        }
        Message::Unknown { bytes, .. } => {
            o.int("length", bytes.len());
        }
        Message::Empty => {}
    }
    o.finish();
}

/// A [`MessageSink`](weir_feeds::iex::MessageSink) that writes JSON lines.
pub struct JsonlSink<W: Write> {
    out: W,
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl<W: Write> std::fmt::Debug for JsonlSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink").finish_non_exhaustive()
    }
}

impl<W: Write> JsonlSink<W> {
    /// Writes to `out` (buffer it).
    pub fn new(out: W) -> Self {
        JsonlSink { out, line: Vec::with_capacity(512), error: None }
    }

    /// Flushes, and returns the first write error, if any (e.g. a closed pipe).
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }

    /// One message.
    pub fn write(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        write_message(&mut self.line, ctx, msg);
        if let Err(e) = self.out.write_all(&self.line) {
            self.error = Some(e);
        }
    }

    /// Whether writing has failed (the consumer went away).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}
