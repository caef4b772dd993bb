//! Enumerations and flag bytes (IEX.md §1.5).
//!
//! Every enumeration keeps codes it does not know as `Other(raw)`, and every one converts back to
//! its raw byte with `raw()`: a new code from IEX is reported, never a decode failure. Flag bytes
//! are bit sets (`bitflags`) that retain unknown bits.

macro_rules! byte_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A code the specification does not list; the raw byte.
            Other(u8),
        }

        impl $name {
            /// Decodes a raw byte.
            #[inline]
            pub const fn from_raw(raw: u8) -> Self {
                match raw {
                    $($code => $name::$variant,)+
                    other => $name::Other(other),
                }
            }

            /// The raw byte on the wire.
            #[inline]
            pub const fn raw(self) -> u8 {
                match self {
                    $($name::$variant => $code,)+
                    $name::Other(raw) => raw,
                }
            }
        }
    };
}

byte_enum! {
    /// System Event code (`S`).
    SystemEventCode {
        /// `O`: start of messages.
        StartOfMessages = b'O',
        /// `S`: start of system hours.
        StartOfSystemHours = b'S',
        /// `R`: start of regular market hours.
        StartOfRegularHours = b'R',
        /// `M`: end of regular market hours.
        EndOfRegularHours = b'M',
        /// `E`: end of system hours.
        EndOfSystemHours = b'E',
        /// `C`: end of messages (the last message of a session).
        EndOfMessages = b'C',
    }
}

byte_enum! {
    /// Trading Status (`H`).
    TradingStatusCode {
        /// `H`: halted across all US markets.
        Halted = b'H',
        /// `O`: halt released into an order-acceptance period (IEX-listed only).
        OrderAcceptance = b'O',
        /// `P`: paused, orders accepted (IEX-listed only).
        Paused = b'P',
        /// `T`: trading on IEX.
        Trading = b'T',
    }
}

byte_enum! {
    /// Operational Halt Status (`O`).
    OperationalHaltCode {
        /// `O`: IEX operational halt.
        Halted = b'O',
        /// `N`: not operationally halted.
        NotHalted = b'N',
    }
}

byte_enum! {
    /// Short Sale Price Test detail (`P`, byte 18).
    ShortSaleDetail {
        /// `' '`: no price test in place.
        NoTest = b' ',
        /// `A`: activated.
        Activated = b'A',
        /// `C`: continued.
        Continued = b'C',
        /// `D`: deactivated.
        Deactivated = b'D',
        /// `N`: detail not available (non-IEX-listed).
        NotAvailable = b'N',
    }
}

byte_enum! {
    /// Retail Liquidity Indicator (`I`).
    RetailLiquidityCode {
        /// `' '`: no retail interest.
        None = b' ',
        /// `A`: retail buy interest.
        Buy = b'A',
        /// `B`: retail sell interest.
        Sell = b'B',
        /// `C`: both.
        BuyAndSell = b'C',
    }
}

byte_enum! {
    /// Security Event (`E`).
    SecurityEventCode {
        /// `O`: opening process complete.
        OpeningProcessComplete = b'O',
        /// `C`: closing process complete.
        ClosingProcessComplete = b'C',
    }
}

byte_enum! {
    /// Official Price type (`X`).
    OfficialPriceType {
        /// `Q`: official opening price.
        Open = b'Q',
        /// `M`: official closing price.
        Close = b'M',
    }
}

byte_enum! {
    /// Auction type (`A`).
    AuctionType {
        /// `O`: opening auction.
        Opening = b'O',
        /// `C`: closing auction.
        Closing = b'C',
        /// `I`: IPO auction.
        Ipo = b'I',
        /// `H`: halt auction.
        Halt = b'H',
        /// `V`: volatility auction.
        Volatility = b'V',
    }
}

byte_enum! {
    /// Imbalance side (`A`, byte 42).
    ImbalanceSide {
        /// `B`: buy-side imbalance.
        Buy = b'B',
        /// `S`: sell-side imbalance.
        Sell = b'S',
        /// `N`: no imbalance.
        None = b'N',
    }
}

byte_enum! {
    /// Limit Up-Limit Down tier (`D`, byte 30, binary).
    LuldTier {
        /// 0: not applicable.
        NotApplicable = 0,
        /// 1: Tier 1 NMS stock.
        Tier1 = 1,
        /// 2: Tier 2 NMS stock.
        Tier2 = 2,
    }
}

byte_enum! {
    /// Side of a DEEP+ Add Order, or of a DEEP price level (`8` buy, `5` sell).
    Side {
        /// `8`: buy.
        Buy = b'8',
        /// `5`: sell.
        Sell = b'5',
    }
}

bitflags::bitflags! {
    /// Security Directory flags (`D`, byte 1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SecurityDirectoryFlags: u8 {
        /// 0x80: test security.
        const TEST_SECURITY = 0x80;
        /// 0x40: when-issued security.
        const WHEN_ISSUED = 0x40;
        /// 0x20: exchange-traded product.
        const ETP = 0x20;
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// Quote Update flags (`Q`, byte 1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct QuoteFlags: u8 {
        /// 0x80: symbol not available for trading (halted, paused, ...).
        const SYMBOL_UNAVAILABLE = 0x80;
        /// 0x40: pre- or post-market session.
        const PRE_POST_MARKET = 0x40;
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// Sale Condition flags (`T`, `B`, DEEP+ `L`, byte 1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SaleConditions: u8 {
        /// 0x80: intermarket sweep order.
        const INTERMARKET_SWEEP = 0x80;
        /// 0x40: extended-hours trade (Form T).
        const EXTENDED_HOURS = 0x40;
        /// 0x20: odd lot.
        const ODD_LOT = 0x20;
        /// 0x10: trade-through exempt (Rule 611).
        const TRADE_THROUGH_EXEMPT = 0x10;
        /// 0x08: single-price cross (TOPS 1.6 and later).
        const SINGLE_PRICE_CROSS = 0x08;
        const _ = !0;
    }
}

impl SaleConditions {
    /// Last-sale and high/low eligible: neither extended hours nor odd lot.
    #[inline]
    pub const fn last_sale_eligible(self) -> bool {
        !self.intersects(SaleConditions::EXTENDED_HOURS.union(SaleConditions::ODD_LOT))
    }
}

bitflags::bitflags! {
    /// DEEP Price Level Update event flags (byte 1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct EventFlags: u8 {
        /// 1: event processing complete; 0: the symbol's book is in transition.
        const EVENT_COMPLETE = 0x01;
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// DEEP+ Order Modify flags (byte 1). Which bit carries "keep priority" is disputed
    /// (IEX.md §1.8 #2): both candidates are exposed, and the raw byte is kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ModifyFlags: u8 {
        /// 0x01: "bit 0" as IEX numbers bits 7..0; 1 = keep priority.
        const KEEP_PRIORITY_BIT0 = 0x01;
        /// 0x80: where some public decoders read the priority bit.
        const KEEP_PRIORITY_BIT7 = 0x80;
        const _ = !0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_every_byte() {
        for raw in 0..=255u8 {
            assert_eq!(SystemEventCode::from_raw(raw).raw(), raw);
            assert_eq!(TradingStatusCode::from_raw(raw).raw(), raw);
            assert_eq!(AuctionType::from_raw(raw).raw(), raw);
            assert_eq!(LuldTier::from_raw(raw).raw(), raw);
            assert_eq!(SaleConditions::from_bits_retain(raw).bits(), raw);
        }
        assert_eq!(SystemEventCode::from_raw(b'C'), SystemEventCode::EndOfMessages);
        assert_eq!(ShortSaleDetail::from_raw(b' '), ShortSaleDetail::NoTest);
        assert_eq!(Side::from_raw(b'X'), Side::Other(b'X'));
    }

    #[test]
    fn sale_condition_bitmask_not_enum() {
        // iextrading4j-hist#7: 0x90 is ISO | trade-through exempt, not an unknown enum value.
        let f = SaleConditions::from_bits_retain(0x90);
        assert!(f.contains(SaleConditions::INTERMARKET_SWEEP | SaleConditions::TRADE_THROUGH_EXEMPT));
        assert!(f.last_sale_eligible());
        assert!(!SaleConditions::from_bits_retain(0x60).last_sale_eligible());
    }
}
