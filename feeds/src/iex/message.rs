//! Zero-copy message views and the (protocol, type) dispatch.
//!
//! Each view borrows exactly the bytes of its known layout as a fixed-size array, so a field read
//! compiles to one unaligned load at a constant offset; the offsets are checked against the array
//! length at compile time. Longer messages are accepted (IEX appends fields without a version
//! change) and their extra bytes ignored; shorter ones are a [`DecodeError::TooShort`].

use super::codes::*;
use super::transport::Protocol;

/// An 8-byte, space-padded IEX symbol (Nasdaq Integrated symbology).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Symbol(pub [u8; 8]);

impl Symbol {
    /// The symbol without its padding.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        &self.0[..end]
    }

    /// The symbol as text, if it is ASCII (it always is on a sane feed).
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        let b = self.as_bytes();
        if b.is_ascii() { core::str::from_utf8(b).ok() } else { None }
    }

    /// Builds a symbol from text, padding with spaces; `None` if longer than 8 bytes.
    pub fn from_text(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() > 8 {
            return None;
        }
        let mut s = [b' '; 8];
        s[..b.len()].copy_from_slice(b);
        Some(Symbol(s))
    }
}

impl core::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Symbol({self})")
    }
}

impl Symbol {
    /// The symbol as printable ASCII, written into `out`: padding dropped, any byte that is not
    /// printable ASCII written as `\xNN` (as `Display` does). Returns the length (at most 32).
    pub fn escaped(&self, out: &mut [u8; 32]) -> usize {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut n = 0;
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() || b == b' ' {
                out[n] = b;
                n += 1;
            } else {
                out[n..n + 4].copy_from_slice(&[b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
                n += 4;
            }
        }
        n
    }
}

impl core::fmt::Display for Symbol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Why one message could not be decoded. The block is still skipped by its length, so the rest
/// of the segment decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the layout of its type in this protocol.
    TooShort {
        /// The type byte.
        msg_type: u8,
        /// The block length.
        len: u16,
        /// The layout's length.
        min: u16,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooShort { msg_type, len, min } => {
                write!(f, "message type {} is {len} bytes, its layout needs {min}", TypeByte(*msg_type))
            }
        }
    }
}

/// Displays a type byte as `'Q'` or `0x01`.
#[derive(Clone, Copy, Debug)]
pub struct TypeByte(pub u8);

impl core::fmt::Display for TypeByte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.is_ascii_graphic() { write!(f, "'{}'", self.0 as char) } else { write!(f, "0x{:02x}", self.0) }
    }
}

// --- field readers: compile-time-checked constant offsets into fixed-size arrays ---

#[inline(always)]
fn u8_at<const AT: usize, const N: usize>(b: &[u8; N]) -> u8 {
    const { assert!(AT < N) };
    b[AT]
}

#[inline(always)]
fn u32_at<const AT: usize, const N: usize>(b: &[u8; N]) -> u32 {
    const { assert!(AT + 4 <= N) };
    u32::from_le_bytes([b[AT], b[AT + 1], b[AT + 2], b[AT + 3]])
}

#[inline(always)]
fn i64_at<const AT: usize, const N: usize>(b: &[u8; N]) -> i64 {
    const { assert!(AT + 8 <= N) };
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[AT..AT + 8]);
    i64::from_le_bytes(v)
}

#[inline(always)]
fn sym_at<const AT: usize, const N: usize>(b: &[u8; N]) -> Symbol {
    const { assert!(AT + 8 <= N) };
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[AT..AT + 8]);
    Symbol(v)
}

macro_rules! read_field {
    (u8, $b:expr, $at:expr) => {
        u8_at::<$at, _>($b)
    };
    (u32, $b:expr, $at:expr) => {
        u32_at::<$at, _>($b)
    };
    (i64, $b:expr, $at:expr) => {
        i64_at::<$at, _>($b)
    };
    (Symbol, $b:expr, $at:expr) => {
        sym_at::<$at, _>($b)
    };
    ($code:ident, $b:expr, $at:expr) => {
        $code::from_raw(u8_at::<$at, _>($b))
    };
}

macro_rules! field_type {
    (u8) => {
        u8
    };
    (u32) => {
        u32
    };
    (i64) => {
        i64
    };
    (Symbol) => {
        Symbol
    };
    ($code:ident) => {
        $code
    };
}

/// Defines a view over a fixed layout: `name: kind @ offset` per field.
macro_rules! view {
    ($(#[$meta:meta])* $name:ident [$len:literal] { $($(#[$fmeta:meta])* $field:ident : $kind:ident @ $at:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<'a> {
            bytes: &'a [u8; $len],
        }

        impl<'a> $name<'a> {
            /// Length of the layout this view reads.
            pub const LEN: usize = $len;

            /// A view of the first `LEN` bytes of `msg`; `None` if `msg` is shorter.
            #[inline]
            pub fn new(msg: &'a [u8]) -> Option<Self> {
                msg.first_chunk::<$len>().map(|bytes| Self { bytes })
            }

            /// The bytes of the known layout.
            #[inline]
            pub fn bytes(&self) -> &'a [u8; $len] {
                self.bytes
            }

            $(
                $(#[$fmeta])*
                #[inline]
                pub fn $field(&self) -> field_type!($kind) {
                    read_field!($kind, self.bytes, $at)
                }
            )*
        }
    };
}

view! {
    /// `S` System Event (10 bytes; no symbol).
    SystemEvent[10] {
        /// Event code.
        event: SystemEventCode @ 1,
        /// Event time, ns since the epoch.
        timestamp: i64 @ 2,
    }
}

view! {
    /// `D` Security Directory (31 bytes).
    SecurityDirectory[31] {
        /// Flags, raw.
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Round lot size.
        round_lot_size: u32 @ 18,
        /// Adjusted previous official closing price (IPO: issue price), 1e-4 dollars.
        adjusted_poc_price: i64 @ 22,
        /// LULD tier.
        luld_tier: LuldTier @ 30,
    }
}

impl SecurityDirectory<'_> {
    /// Flags as a bit set.
    #[inline]
    pub fn flags(&self) -> SecurityDirectoryFlags {
        SecurityDirectoryFlags::from_bits_retain(self.flags_raw())
    }
}

view! {
    /// `H` Trading Status (22 bytes).
    TradingStatus[22] {
        /// Status.
        status: TradingStatusCode @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
    }
}

impl<'a> TradingStatus<'a> {
    /// The 4-byte reason, space padded (`T1`, `IPO1`, `NA`, ... or blank).
    #[inline]
    pub fn reason_raw(&self) -> &'a [u8; 4] {
        self.bytes[18..22].first_chunk::<4>().unwrap_or(&[b' '; 4])
    }

    /// The reason without its padding.
    #[inline]
    pub fn reason(&self) -> &'a [u8] {
        let r = self.reason_raw();
        let end = r.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        &r[..end]
    }
}

view! {
    /// `I` Retail Liquidity Indicator (18 bytes).
    RetailLiquidityIndicator[18] {
        /// Indicator.
        indicator: RetailLiquidityCode @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
    }
}

view! {
    /// `O` Operational Halt Status (18 bytes).
    OperationalHaltStatus[18] {
        /// Status.
        status: OperationalHaltCode @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
    }
}

view! {
    /// `P` Short Sale Price Test Status (19 bytes).
    ShortSalePriceTest[19] {
        /// Status, binary: 1 = a price test is in effect.
        status: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Detail.
        detail: ShortSaleDetail @ 18,
    }
}

view! {
    /// `E` Security Event (18 bytes; DEEP and DEEP+).
    SecurityEvent[18] {
        /// Event.
        event: SecurityEventCode @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
    }
}

view! {
    /// `Q` Quote Update (42 bytes; TOPS). Sizes and prices of 0 mean an empty side.
    QuoteUpdate[42] {
        /// Flags, raw.
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Best bid size.
        bid_size: u32 @ 18,
        /// Best bid price, 1e-4 dollars.
        bid_price: i64 @ 22,
        /// Best ask price, 1e-4 dollars.
        ask_price: i64 @ 30,
        /// Best ask size.
        ask_size: u32 @ 38,
    }
}

impl QuoteUpdate<'_> {
    /// Flags as a bit set.
    #[inline]
    pub fn flags(&self) -> QuoteFlags {
        QuoteFlags::from_bits_retain(self.flags_raw())
    }
}

view! {
    /// `T` Trade Report and `B` Trade Break (38 bytes; 42 in TOPS 1.5, whose 4 extra bytes are
    /// reserved). In DEEP+ a `T` is a hidden-against-hidden print that does not touch the book.
    TradeReport[38] {
        /// Sale condition flags, raw.
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Shares.
        size: u32 @ 18,
        /// Price, 1e-4 dollars.
        price: i64 @ 22,
        /// Trade id (for a break: the id of the trade broken).
        trade_id: i64 @ 30,
    }
}

impl TradeReport<'_> {
    /// Sale conditions as a bit set.
    #[inline]
    pub fn flags(&self) -> SaleConditions {
        SaleConditions::from_bits_retain(self.flags_raw())
    }
}

view! {
    /// `X` Official Price (26 bytes; TOPS 1.6, DEEP).
    OfficialPrice[26] {
        /// Opening or closing.
        price_type: OfficialPriceType @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Official price, 1e-4 dollars.
        price: i64 @ 18,
    }
}

view! {
    /// `A` Auction Information (80 bytes; TOPS 1.6, DEEP). Zero prices mean "not applicable".
    AuctionInformation[80] {
        /// Auction type.
        auction_type: AuctionType @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Paired shares.
        paired_shares: u32 @ 18,
        /// Reference price.
        reference_price: i64 @ 22,
        /// Indicative clearing price.
        indicative_clearing_price: i64 @ 30,
        /// Imbalance shares.
        imbalance_shares: u32 @ 38,
        /// Imbalance side.
        imbalance_side: ImbalanceSide @ 42,
        /// Extension number (count of auction extensions).
        extension_number: u8 @ 43,
        /// Scheduled auction time, **seconds** since the epoch.
        scheduled_auction_time: u32 @ 44,
        /// Auction book clearing price.
        auction_book_clearing_price: i64 @ 48,
        /// Collar reference price.
        collar_reference_price: i64 @ 56,
        /// Lower auction collar.
        lower_auction_collar: i64 @ 64,
        /// Upper auction collar.
        upper_auction_collar: i64 @ 72,
    }
}

view! {
    /// `8` / `5` Price Level Update (30 bytes; DEEP). The size is the new aggregate at the level;
    /// 0 deletes it.
    PriceLevelUpdate[30] {
        /// `8` buy or `5` sell, from the type byte.
        side: Side @ 0,
        /// Event flags, raw.
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Aggregate size at the level (absolute; 0 = level removed).
        size: u32 @ 18,
        /// Level price.
        price: i64 @ 22,
    }
}

impl PriceLevelUpdate<'_> {
    /// Event flags as a bit set.
    #[inline]
    pub fn flags(&self) -> EventFlags {
        EventFlags::from_bits_retain(self.flags_raw())
    }
    /// True when this update completes the symbol's atomic book change.
    #[inline]
    pub fn event_complete(&self) -> bool {
        self.flags_raw() & 1 != 0
    }
}

view! {
    /// `a` Add Order (38 bytes; DEEP+).
    AddOrder[38] {
        /// Side (`8` buy, `5` sell).
        side: Side @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// Order id (may exceed 2^53).
        order_id: i64 @ 18,
        /// Shares.
        size: u32 @ 26,
        /// Limit price.
        price: i64 @ 30,
    }
}

view! {
    /// `M` Order Modify (38 bytes; DEEP+): a new total size and price.
    OrderModify[38] {
        /// Modify flags, raw (see [`ModifyFlags`]).
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// The order being modified.
        order_id: i64 @ 18,
        /// New total size.
        size: u32 @ 26,
        /// New price.
        price: i64 @ 30,
    }
}

impl OrderModify<'_> {
    /// Flags as a bit set.
    #[inline]
    pub fn flags(&self) -> ModifyFlags {
        ModifyFlags::from_bits_retain(self.flags_raw())
    }
}

view! {
    /// `R` Order Delete (26 bytes; DEEP+). Byte 1 is reserved (0x20 seen in real data).
    OrderDelete[26] {
        /// Reserved byte, raw; never validated.
        reserved: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// The order deleted.
        order_id: i64 @ 18,
    }
}

view! {
    /// `L` Order Executed (46 bytes; DEEP+): a displayed order traded.
    OrderExecuted[46] {
        /// Sale condition flags, raw.
        flags_raw: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
        /// The order executed.
        order_id: i64 @ 18,
        /// Executed shares.
        size: u32 @ 26,
        /// Execution price (may differ from the resting price).
        price: i64 @ 30,
        /// Trade id.
        trade_id: i64 @ 38,
    }
}

impl OrderExecuted<'_> {
    /// Sale conditions as a bit set.
    #[inline]
    pub fn flags(&self) -> SaleConditions {
        SaleConditions::from_bits_retain(self.flags_raw())
    }
}

view! {
    /// `C` Clear Book (18 bytes; DEEP+): remove every order of the symbol.
    ClearBook[18] {
        /// Reserved byte, raw.
        reserved: u8 @ 1,
        /// Event time.
        timestamp: i64 @ 2,
        /// Symbol.
        symbol: Symbol @ 10,
    }
}

/// One decoded IEX message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `S`.
    SystemEvent(SystemEvent<'a>),
    /// `D`.
    SecurityDirectory(SecurityDirectory<'a>),
    /// `H`.
    TradingStatus(TradingStatus<'a>),
    /// `I`.
    RetailLiquidityIndicator(RetailLiquidityIndicator<'a>),
    /// `O`.
    OperationalHaltStatus(OperationalHaltStatus<'a>),
    /// `P`.
    ShortSalePriceTest(ShortSalePriceTest<'a>),
    /// `E` (DEEP, DEEP+).
    SecurityEvent(SecurityEvent<'a>),
    /// `Q` (TOPS).
    QuoteUpdate(QuoteUpdate<'a>),
    /// `T` in TOPS and DEEP: every print.
    Trade(TradeReport<'a>),
    /// `T` in DEEP+: a hidden-against-hidden print; displayed executions arrive as `L`.
    HiddenTrade(TradeReport<'a>),
    /// `B`.
    TradeBreak(TradeReport<'a>),
    /// `X` (TOPS 1.6, DEEP).
    OfficialPrice(OfficialPrice<'a>),
    /// `A` (TOPS 1.6, DEEP).
    AuctionInformation(AuctionInformation<'a>),
    /// `8` / `5` (DEEP).
    PriceLevelUpdate(PriceLevelUpdate<'a>),
    /// `a` (DEEP+).
    AddOrder(AddOrder<'a>),
    /// `M` (DEEP+).
    OrderModify(OrderModify<'a>),
    /// `R` (DEEP+).
    OrderDelete(OrderDelete<'a>),
    /// `L` (DEEP+).
    OrderExecuted(OrderExecuted<'a>),
    /// `C` (DEEP+).
    ClearBook(ClearBook<'a>),
    /// A type this protocol does not define (or a protocol weir does not know): skipped by length.
    Unknown {
        /// The type byte.
        msg_type: u8,
        /// The whole message.
        bytes: &'a [u8],
    },
    /// A zero-length block: legal, carries a sequence number, holds nothing.
    Empty,
}

impl Message<'_> {
    /// The type byte as on the wire (`8`/`5` for price levels, 0 for an empty block).
    #[inline]
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::SystemEvent(_) => b'S',
            Message::SecurityDirectory(_) => b'D',
            Message::TradingStatus(_) => b'H',
            Message::RetailLiquidityIndicator(_) => b'I',
            Message::OperationalHaltStatus(_) => b'O',
            Message::ShortSalePriceTest(_) => b'P',
            Message::SecurityEvent(_) => b'E',
            Message::QuoteUpdate(_) => b'Q',
            Message::Trade(_) | Message::HiddenTrade(_) => b'T',
            Message::TradeBreak(_) => b'B',
            Message::OfficialPrice(_) => b'X',
            Message::AuctionInformation(_) => b'A',
            Message::PriceLevelUpdate(m) => m.side().raw(),
            Message::AddOrder(_) => b'a',
            Message::OrderModify(_) => b'M',
            Message::OrderDelete(_) => b'R',
            Message::OrderExecuted(_) => b'L',
            Message::ClearBook(_) => b'C',
            Message::Unknown { msg_type, .. } => *msg_type,
            Message::Empty => 0,
        }
    }

    /// The symbol the message is about (`None` for system events, unknown and empty blocks).
    #[inline]
    pub fn symbol(&self) -> Option<Symbol> {
        Some(match self {
            Message::SecurityDirectory(m) => m.symbol(),
            Message::TradingStatus(m) => m.symbol(),
            Message::RetailLiquidityIndicator(m) => m.symbol(),
            Message::OperationalHaltStatus(m) => m.symbol(),
            Message::ShortSalePriceTest(m) => m.symbol(),
            Message::SecurityEvent(m) => m.symbol(),
            Message::QuoteUpdate(m) => m.symbol(),
            Message::Trade(m) | Message::HiddenTrade(m) | Message::TradeBreak(m) => m.symbol(),
            Message::OfficialPrice(m) => m.symbol(),
            Message::AuctionInformation(m) => m.symbol(),
            Message::PriceLevelUpdate(m) => m.symbol(),
            Message::AddOrder(m) => m.symbol(),
            Message::OrderModify(m) => m.symbol(),
            Message::OrderDelete(m) => m.symbol(),
            Message::OrderExecuted(m) => m.symbol(),
            Message::ClearBook(m) => m.symbol(),
            Message::SystemEvent(_) | Message::Unknown { .. } | Message::Empty => return None,
        })
    }

    /// The event time (ns since the epoch), for every message that has one.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        Some(match self {
            Message::SystemEvent(m) => m.timestamp(),
            Message::SecurityDirectory(m) => m.timestamp(),
            Message::TradingStatus(m) => m.timestamp(),
            Message::RetailLiquidityIndicator(m) => m.timestamp(),
            Message::OperationalHaltStatus(m) => m.timestamp(),
            Message::ShortSalePriceTest(m) => m.timestamp(),
            Message::SecurityEvent(m) => m.timestamp(),
            Message::QuoteUpdate(m) => m.timestamp(),
            Message::Trade(m) | Message::HiddenTrade(m) | Message::TradeBreak(m) => m.timestamp(),
            Message::OfficialPrice(m) => m.timestamp(),
            Message::AuctionInformation(m) => m.timestamp(),
            Message::PriceLevelUpdate(m) => m.timestamp(),
            Message::AddOrder(m) => m.timestamp(),
            Message::OrderModify(m) => m.timestamp(),
            Message::OrderDelete(m) => m.timestamp(),
            Message::OrderExecuted(m) => m.timestamp(),
            Message::ClearBook(m) => m.timestamp(),
            Message::Unknown { .. } | Message::Empty => return None,
        })
    }
}

/// The message kinds a protocol defines, with their layout lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SystemEvent,
    SecurityDirectory,
    TradingStatus,
    RetailLiquidity,
    OperationalHalt,
    ShortSale,
    SecurityEvent,
    Quote,
    Trade,
    HiddenTrade,
    TradeBreak,
    OfficialPrice,
    Auction,
    PriceLevel,
    AddOrder,
    Modify,
    Delete,
    Executed,
    ClearBook,
}

/// The (protocol, type) table of IEX.md §1.4 and its layout length.
#[inline]
const fn kind_of(protocol: Protocol, msg_type: u8) -> Option<(Kind, u16)> {
    use Protocol::*;
    let admin = matches!(protocol, Tops16 | Deep | DeepPlus);
    Some(match (msg_type, protocol) {
        (b'Q', Tops15 | Tops16) => (Kind::Quote, 42),
        (b'T', Tops15) => (Kind::Trade, 42),
        (b'B', Tops15) => (Kind::TradeBreak, 42),
        (b'T', Tops16 | Deep) => (Kind::Trade, 38),
        (b'T', DeepPlus) => (Kind::HiddenTrade, 38),
        (b'B', Tops16 | Deep | DeepPlus) => (Kind::TradeBreak, 38),
        (b'S', _) if admin => (Kind::SystemEvent, 10),
        (b'D', _) if admin => (Kind::SecurityDirectory, 31),
        (b'H', _) if admin => (Kind::TradingStatus, 22),
        (b'I', _) if admin => (Kind::RetailLiquidity, 18),
        (b'O', _) if admin => (Kind::OperationalHalt, 18),
        (b'P', _) if admin => (Kind::ShortSale, 19),
        (b'E', Deep | DeepPlus) => (Kind::SecurityEvent, 18),
        (b'X', Tops16 | Deep) => (Kind::OfficialPrice, 26),
        (b'A', Tops16 | Deep) => (Kind::Auction, 80),
        (b'8' | b'5', Deep) => (Kind::PriceLevel, 30),
        (b'a', DeepPlus) => (Kind::AddOrder, 38),
        (b'M', DeepPlus) => (Kind::Modify, 38),
        (b'R', DeepPlus) => (Kind::Delete, 26),
        (b'L', DeepPlus) => (Kind::Executed, 46),
        (b'C', DeepPlus) => (Kind::ClearBook, 18),
        _ => return None,
    })
}

/// Decodes one message block of a segment of `protocol`.
///
/// Never panics. Unknown types come back as [`Message::Unknown`] (skip and count them); a message
/// shorter than its layout is a [`DecodeError`]; bytes past the layout are ignored.
#[inline]
pub fn decode(protocol: Protocol, msg: &[u8]) -> Result<Message<'_>, DecodeError> {
    let Some(&msg_type) = msg.first() else {
        return Ok(Message::Empty);
    };
    let Some((kind, min)) = kind_of(protocol, msg_type) else {
        return Ok(Message::Unknown { msg_type, bytes: msg });
    };
    let too_short = || DecodeError::TooShort { msg_type, len: msg.len().min(u16::MAX as usize) as u16, min };
    if msg.len() < usize::from(min) {
        return Err(too_short());
    }
    // The length was checked against the table; each `new` re-checks against its own layout, and
    // the table and the layouts agree (see the `table_lengths_match_layouts` test).
    let m = match kind {
        Kind::SystemEvent => SystemEvent::new(msg).map(Message::SystemEvent),
        Kind::SecurityDirectory => SecurityDirectory::new(msg).map(Message::SecurityDirectory),
        Kind::TradingStatus => TradingStatus::new(msg).map(Message::TradingStatus),
        Kind::RetailLiquidity => RetailLiquidityIndicator::new(msg).map(Message::RetailLiquidityIndicator),
        Kind::OperationalHalt => OperationalHaltStatus::new(msg).map(Message::OperationalHaltStatus),
        Kind::ShortSale => ShortSalePriceTest::new(msg).map(Message::ShortSalePriceTest),
        Kind::SecurityEvent => SecurityEvent::new(msg).map(Message::SecurityEvent),
        Kind::Quote => QuoteUpdate::new(msg).map(Message::QuoteUpdate),
        Kind::Trade => TradeReport::new(msg).map(Message::Trade),
        Kind::HiddenTrade => TradeReport::new(msg).map(Message::HiddenTrade),
        Kind::TradeBreak => TradeReport::new(msg).map(Message::TradeBreak),
        Kind::OfficialPrice => OfficialPrice::new(msg).map(Message::OfficialPrice),
        Kind::Auction => AuctionInformation::new(msg).map(Message::AuctionInformation),
        Kind::PriceLevel => PriceLevelUpdate::new(msg).map(Message::PriceLevelUpdate),
        Kind::AddOrder => AddOrder::new(msg).map(Message::AddOrder),
        Kind::Modify => OrderModify::new(msg).map(Message::OrderModify),
        Kind::Delete => OrderDelete::new(msg).map(Message::OrderDelete),
        Kind::Executed => OrderExecuted::new(msg).map(Message::OrderExecuted),
        Kind::ClearBook => ClearBook::new(msg).map(Message::ClearBook),
    };
    m.ok_or_else(too_short)
}

/// The layout length of `msg_type` in `protocol`, if the protocol defines that type.
pub const fn layout_len(protocol: Protocol, msg_type: u8) -> Option<u16> {
    match kind_of(protocol, msg_type) {
        Some((_, len)) => Some(len),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::test_hex as hex;

    const Z: &str = "5a49455854202020";
    const P9905: &str = "241d0f0000000000";

    #[test]
    fn symbols_escape_what_is_not_printable_ascii() {
        let mut out = [0u8; 32];
        let n = Symbol(*b"BRK.B   ").escaped(&mut out);
        assert_eq!(&out[..n], b"BRK.B");
        let odd = Symbol([b'A', 0xff, b'B', 0, 0xc3, 0xa9, b' ', b' ']);
        let n = odd.escaped(&mut out);
        assert_eq!(&out[..n], br"A\xffB\x00\xc3\xa9");
        assert_eq!(odd.to_string().as_bytes(), &out[..n]);
        assert_eq!(Symbol([0xff; 8]).escaped(&mut out), 32);
    }

    fn body(parts: &[&str]) -> Vec<u8> {
        hex(&parts.concat())
    }

    #[test]
    fn table_lengths_match_layouts() {
        let protocols = [Protocol::Tops15, Protocol::Tops16, Protocol::Deep, Protocol::DeepPlus];
        for p in protocols {
            for t in 0..=255u8 {
                if let Some(len) = layout_len(p, t) {
                    let msg = {
                        let mut m = vec![0u8; usize::from(len)];
                        m[0] = t;
                        m
                    };
                    let decoded = decode(p, &msg).unwrap();
                    assert!(!matches!(decoded, Message::Unknown { .. }), "{p:?} {t}");
                    assert_eq!(decoded.type_byte(), t, "{p:?}");
                    let short = &msg[..msg.len() - 1];
                    assert_eq!(decode(p, short), Err(DecodeError::TooShort { msg_type: t, len: len - 1, min: len }));
                }
            }
        }
    }

    #[test]
    fn system_event_vector() {
        let m = hex("534500a09997e93db614");
        let Ok(Message::SystemEvent(s)) = decode(Protocol::Deep, &m) else { panic!() };
        assert_eq!(s.event(), SystemEventCode::EndOfSystemHours);
        assert_eq!(s.timestamp(), 1_492_448_400_000_000_000);
    }

    #[test]
    fn security_directory_vector() {
        let m = body(&["44800020897b5a1fb614", Z, "64000000", P9905, "01"]);
        let Ok(Message::SecurityDirectory(d)) = decode(Protocol::Tops16, &m) else { panic!() };
        assert_eq!(d.flags(), SecurityDirectoryFlags::TEST_SECURITY);
        assert_eq!(d.timestamp(), 1_492_414_800_000_000_000);
        assert_eq!(d.symbol().as_str(), Some("ZIEXT"));
        assert_eq!((d.round_lot_size(), d.adjusted_poc_price(), d.luld_tier()), (100, 990_500, LuldTier::Tier1));
    }

    #[test]
    fn trading_status_vector() {
        let m = body(&["4848ac63c02096866d14", Z, "54312020"]);
        let Ok(Message::TradingStatus(h)) = decode(Protocol::Deep, &m) else { panic!() };
        assert_eq!(h.status(), TradingStatusCode::Halted);
        assert_eq!(h.timestamp(), 1_471_980_632_572_715_948);
        assert_eq!(h.reason(), b"T1");
    }

    #[test]
    fn retail_operational_short_sale_security_event_vectors() {
        let i = body(&["4941ac63c02096866d14", Z]);
        let Ok(Message::RetailLiquidityIndicator(i)) = decode(Protocol::DeepPlus, &i) else { panic!() };
        assert_eq!(i.indicator(), RetailLiquidityCode::Buy);

        let o = body(&["4f4fac63c02096866d14", Z]);
        let Ok(Message::OperationalHaltStatus(o)) = decode(Protocol::Tops16, &o) else { panic!() };
        assert_eq!(o.status(), OperationalHaltCode::Halted);

        let p = body(&["5001ac63c02096866d14", Z, "41"]);
        let Ok(Message::ShortSalePriceTest(p)) = decode(Protocol::Deep, &p) else { panic!() };
        assert_eq!((p.status(), p.detail()), (1, ShortSaleDetail::Activated));

        let e = body(&["454f00f0302a5b25b614", Z]);
        let Ok(Message::SecurityEvent(e)) = decode(Protocol::Deep, &e) else { panic!() };
        assert_eq!(e.event(), SecurityEventCode::OpeningProcessComplete);
        assert_eq!(e.timestamp(), 1_492_421_400_000_000_000);
        // `E` is not a TOPS message.
        assert!(matches!(decode(Protocol::Tops16, &body(&["454f00f0302a5b25b614", Z])), Ok(Message::Unknown { .. })));
    }

    #[test]
    fn quote_vector() {
        let m = body(&["5100ac63c02096866d14", Z, "e4250000", P9905, "ec1d0f0000000000e8030000"]);
        let Ok(Message::QuoteUpdate(q)) = decode(Protocol::Tops16, &m) else { panic!() };
        assert_eq!(q.flags(), QuoteFlags::empty());
        assert_eq!((q.bid_size(), q.bid_price(), q.ask_price(), q.ask_size()), (9700, 990_500, 990_700, 1000));
        // DEEP has no quotes.
        assert!(matches!(decode(Protocol::Deep, &m), Ok(Message::Unknown { msg_type: b'Q', .. })));
    }

    #[test]
    fn trade_and_break_vectors() {
        let t = body(&["5400c3dff705a2866d14", Z, "64000000", P9905, "968f060000000000"]);
        let Ok(Message::Trade(t)) = decode(Protocol::Tops16, &t) else { panic!() };
        assert_eq!(t.timestamp(), 1_471_980_683_662_974_915);
        assert_eq!((t.size(), t.price(), t.trade_id()), (100, 990_500, 429_974));

        let b = body(&["4200b28fa5a0ab866d14", Z, "64000000", P9905, "968f060000000000"]);
        let Ok(Message::TradeBreak(b)) = decode(Protocol::Deep, &b) else { panic!() };
        assert_eq!(b.timestamp(), 1_471_980_724_912_754_610);
        assert_eq!((b.size(), b.price(), b.trade_id()), (100, 990_500, 429_974));
    }

    #[test]
    fn tops15_trade_needs_42_bytes() {
        let t = body(&["5400c3dff705a2866d14", Z, "64000000", P9905, "968f060000000000"]);
        assert_eq!(decode(Protocol::Tops15, &t), Err(DecodeError::TooShort { msg_type: b'T', len: 38, min: 42 }));
        let mut t42 = t.clone();
        t42.extend_from_slice(&[0; 4]);
        assert!(matches!(decode(Protocol::Tops15, &t42), Ok(Message::Trade(_))));
        // TOPS 1.5 has no system events.
        assert!(matches!(decode(Protocol::Tops15, &hex("534500a09997e93db614")), Ok(Message::Unknown { .. })));
    }

    #[test]
    fn official_price_and_auction_vectors() {
        let x = body(&["585100f0302a5b25b614", Z, P9905]);
        let Ok(Message::OfficialPrice(x)) = decode(Protocol::Tops16, &x) else { panic!() };
        assert_eq!((x.price_type(), x.price()), (OfficialPriceType::Open, 990_500));

        let a = body(&[
            "4143ddc7f09a1a3ab614",
            Z,
            "a0860100",
            P9905,
            "181f0f0000000000 10270000 42 00 80e6f458 0c210f0000000000 c01c0f0000000000 a4990d0000000000 dc9f100000000000",
        ]);
        let Ok(Message::AuctionInformation(a)) = decode(Protocol::Deep, &a) else { panic!() };
        assert_eq!(a.auction_type(), AuctionType::Closing);
        assert_eq!(a.timestamp(), 1_492_444_212_462_929_885);
        assert_eq!(
            (a.paired_shares(), a.reference_price(), a.indicative_clearing_price()),
            (100_000, 990_500, 991_000)
        );
        assert_eq!((a.imbalance_shares(), a.imbalance_side(), a.extension_number()), (10_000, ImbalanceSide::Buy, 0));
        assert_eq!(a.scheduled_auction_time(), 1_492_444_800);
        assert_eq!(a.auction_book_clearing_price(), 991_500);
        assert_eq!(a.collar_reference_price(), 990_400);
        assert_eq!((a.lower_auction_collar(), a.upper_auction_collar()), (891_300, 1_089_500));
    }

    #[test]
    fn price_level_vector() {
        let m = body(&["3801ac63c02096866d14", Z, "e4250000", P9905]);
        let Ok(Message::PriceLevelUpdate(u)) = decode(Protocol::Deep, &m) else { panic!() };
        assert_eq!((u.side(), u.event_complete(), u.size(), u.price()), (Side::Buy, true, 9700, 990_500));
        assert_eq!(Message::PriceLevelUpdate(u).type_byte(), b'8');
    }

    #[test]
    fn deep_plus_vectors() {
        let a = body(&["6138b28fa5a0ab866d14", Z, "968f060000000000 64000000", P9905]);
        let Ok(Message::AddOrder(a)) = decode(Protocol::DeepPlus, &a) else { panic!() };
        assert_eq!((a.side(), a.order_id(), a.size(), a.price()), (Side::Buy, 429_974, 100, 990_500));

        let m = body(&["4d00b28fa5a0ab866d14", Z, "968f060000000000 64000000", P9905]);
        let Ok(Message::OrderModify(m)) = decode(Protocol::DeepPlus, &m) else { panic!() };
        assert_eq!(m.flags(), ModifyFlags::empty());
        assert_eq!((m.order_id(), m.size(), m.price()), (429_974, 100, 990_500));

        let r = body(&["5200b28fa5a0ab866d14", Z, "968f060000000000"]);
        let Ok(Message::OrderDelete(r)) = decode(Protocol::DeepPlus, &r) else { panic!() };
        assert_eq!(r.order_id(), 429_974);

        let l = body(&["4c00b28fa5a0ab866d14", Z, "968f060000000000 64000000", P9905, "968f020000000000"]);
        let Ok(Message::OrderExecuted(l)) = decode(Protocol::DeepPlus, &l) else { panic!() };
        assert_eq!((l.order_id(), l.size(), l.price(), l.trade_id()), (429_974, 100, 990_500, 167_830));

        let t = body(&["5400b28fa5a0ab866d14", Z, "64000000", P9905, "968f020000000000"]);
        let Ok(Message::HiddenTrade(t)) = decode(Protocol::DeepPlus, &t) else { panic!() };
        assert_eq!(t.trade_id(), 167_830);

        let c = body(&["4300b28fa5a0ab866d14", Z]);
        let Ok(Message::ClearBook(c)) = decode(Protocol::DeepPlus, &c) else { panic!() };
        assert_eq!(c.symbol().as_str(), Some("ZIEXT"));
    }

    #[test]
    fn longer_messages_accepted_unknown_and_empty() {
        let mut m = body(&["4f4fac63c02096866d14", Z]);
        m.extend_from_slice(b"future fields");
        assert!(matches!(decode(Protocol::Deep, &m), Ok(Message::OperationalHaltStatus(_))));
        assert_eq!(decode(Protocol::Deep, b"zzz"), Ok(Message::Unknown { msg_type: b'z', bytes: b"zzz" }));
        assert_eq!(decode(Protocol::Other(0x9999), b"Q"), Ok(Message::Unknown { msg_type: b'Q', bytes: b"Q" }));
        assert_eq!(decode(Protocol::Deep, b""), Ok(Message::Empty));
    }

    #[test]
    fn symbols() {
        assert_eq!(Symbol(*b"BF.B    ").as_str(), Some("BF.B"));
        assert_eq!(Symbol(*b"        ").as_bytes(), b"");
        assert_eq!(Symbol::from_text("AIG+"), Some(Symbol(*b"AIG+    ")));
        assert_eq!(Symbol::from_text("TOOLONGXX"), None);
        assert_eq!(format!("{}", Symbol(*b"A\x01      ")), "A\\x01");
    }
}
