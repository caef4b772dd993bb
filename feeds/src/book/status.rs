//! Per-symbol trading state, from every message that bears on it (IEX.md §4 "Trading state").
//!
//! Whether a symbol can trade depends on its Trading Status (`H`), its Operational Halt (`O`), the
//! feed-wide System Event phase (`S`), and (for TOPS) the quote's unavailable flag; the Short Sale
//! Price Test (`P`), Retail Liquidity Indicator (`I`) and Security Event (`E`) add to the picture.
//! Raw codes are kept next to the derived flags, so nothing IEX said is lost.

use crate::iex::codes::{
    OperationalHaltCode, RetailLiquidityCode, SecurityEventCode, ShortSaleDetail, SystemEventCode, TradingStatusCode,
};
use crate::iex::message::Message;

/// Everything known about one symbol's state. `None` where IEX has not said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolStatus {
    /// Trading Status code.
    pub trading: Option<TradingStatusCode>,
    /// Its reason, space padded (`T1`, `IPO1`, `NA`, ...).
    pub reason: [u8; 4],
    /// Operational Halt status.
    pub operational_halt: Option<OperationalHaltCode>,
    /// Short Sale Price Test in effect, and its detail.
    pub short_sale_test: Option<(bool, ShortSaleDetail)>,
    /// Retail Liquidity Indicator.
    pub retail_liquidity: Option<RetailLiquidityCode>,
    /// Last Security Event.
    pub security_event: Option<SecurityEventCode>,
    /// TOPS quote flag 0x80: symbol not available for trading.
    pub quote_unavailable: bool,
    /// Event time of the last change, ns.
    pub updated: i64,
}

impl SymbolStatus {
    /// Trading on IEX: trading status `T`, not operationally halted, quote not flagged
    /// unavailable. (A symbol missing from the pre-market spin counts as halted: `None` is not
    /// trading.)
    pub fn is_trading(&self) -> bool {
        self.trading == Some(TradingStatusCode::Trading)
            && self.operational_halt != Some(OperationalHaltCode::Halted)
            && !self.quote_unavailable
    }

    /// Orders accepted: trading, or an order-acceptance period or pause of an IEX-listed symbol.
    pub fn is_quoting(&self) -> bool {
        matches!(
            self.trading,
            Some(TradingStatusCode::Trading | TradingStatusCode::OrderAcceptance | TradingStatusCode::Paused)
        ) && self.operational_halt != Some(OperationalHaltCode::Halted)
    }

    /// Short-sale restriction in effect.
    pub fn is_short_sell_restricted(&self) -> bool {
        matches!(self.short_sale_test, Some((true, _)))
    }
}

/// What a message changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// Nothing (not a status message, or the same state again).
    None,
    /// This symbol's state changed.
    Symbol,
    /// The feed-wide phase changed.
    Phase(SystemEventCode),
}

/// Status of every symbol, indexed by instrument id, plus the system phase.
#[derive(Clone, Debug, Default)]
pub struct StatusBook {
    symbols: Vec<SymbolStatus>,
    phase: Option<SystemEventCode>,
}

impl StatusBook {
    /// Room for `symbols` before anything allocates.
    pub fn with_capacity(symbols: usize) -> Self {
        StatusBook { symbols: Vec::with_capacity(symbols), phase: None }
    }

    /// The feed-wide phase (last System Event).
    pub fn phase(&self) -> Option<SystemEventCode> {
        self.phase
    }

    /// A symbol's state.
    pub fn get(&self, id: u32) -> SymbolStatus {
        *self.get_ref(id)
    }

    /// A symbol's state, by reference (the default state for an id never seen).
    #[inline]
    pub fn get_ref(&self, id: u32) -> &SymbolStatus {
        const UNKNOWN: SymbolStatus = SymbolStatus {
            trading: None,
            reason: [0; 4],
            operational_halt: None,
            short_sale_test: None,
            retail_liquidity: None,
            security_event: None,
            quote_unavailable: false,
            updated: 0,
        };
        self.symbols.get(id as usize).unwrap_or(&UNKNOWN)
    }

    /// Applies a message about symbol `id` (ignored for messages that carry no status).
    #[inline]
    pub fn apply(&mut self, id: u32, msg: &Message<'_>) -> StatusChange {
        if let Message::SystemEvent(m) = msg {
            let phase = m.event();
            let changed = self.phase != Some(phase);
            self.phase = Some(phase);
            return if changed { StatusChange::Phase(phase) } else { StatusChange::None };
        }
        let i = id as usize;
        if i >= self.symbols.len() {
            self.grow(i + 1);
        }
        let s = &mut self.symbols[i];
        // Each message sets one field: compare that field only (the spin sends every symbol's
        // state, most of it unchanged).
        fn set<T: PartialEq>(field: &mut T, value: T) -> bool {
            let changed = *field != value;
            *field = value;
            changed
        }
        let (changed, ts) = match msg {
            Message::TradingStatus(m) => {
                let c = set(&mut s.trading, Some(m.status()));
                (set(&mut s.reason, *m.reason_raw()) | c, m.timestamp())
            }
            Message::OperationalHaltStatus(m) => (set(&mut s.operational_halt, Some(m.status())), m.timestamp()),
            Message::ShortSalePriceTest(m) => {
                (set(&mut s.short_sale_test, Some((m.status() != 0, m.detail()))), m.timestamp())
            }
            Message::RetailLiquidityIndicator(m) => (set(&mut s.retail_liquidity, Some(m.indicator())), m.timestamp()),
            Message::SecurityEvent(m) => (set(&mut s.security_event, Some(m.event())), m.timestamp()),
            Message::QuoteUpdate(m) => (set(&mut s.quote_unavailable, m.flags_raw() & 0x80 != 0), m.timestamp()),
            _ => return StatusChange::None,
        };
        if changed {
            s.updated = ts;
            StatusChange::Symbol
        } else {
            StatusChange::None
        }
    }

    #[cold]
    fn grow(&mut self, len: usize) {
        self.symbols.resize(len, SymbolStatus::default());
    }

    /// Forgets one symbol's state (its stream was reset).
    pub fn reset(&mut self, id: u32) {
        if let Some(s) = self.symbols.get_mut(id as usize) {
            *s = SymbolStatus::default();
        }
    }

    /// Forgets everything (a new session).
    pub fn clear(&mut self) {
        self.symbols.clear();
        self.phase = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::{Protocol, decode};

    fn msg(t: u8, code: u8, tail: &[u8]) -> Vec<u8> {
        let mut m = vec![t, code];
        m.extend_from_slice(&7i64.to_le_bytes());
        m.extend_from_slice(b"ZIEXT   ");
        m.extend_from_slice(tail);
        m
    }

    #[test]
    fn halt_release_and_ssr() {
        let mut b = StatusBook::with_capacity(4);
        let apply = |b: &mut StatusBook, bytes: Vec<u8>| b.apply(0, &decode(Protocol::Deep, &bytes).unwrap());
        assert!(!b.get(0).is_trading());
        assert_eq!(apply(&mut b, msg(b'H', b'T', b"    ")), StatusChange::Symbol);
        assert_eq!(apply(&mut b, msg(b'O', b'N', b"")), StatusChange::Symbol);
        assert!(b.get(0).is_trading());
        assert_eq!(apply(&mut b, msg(b'H', b'T', b"    ")), StatusChange::None);
        apply(&mut b, msg(b'H', b'H', b"T1  "));
        let s = b.get(0);
        assert!(!s.is_trading() && !s.is_quoting());
        assert_eq!(&s.reason, b"T1  ");
        apply(&mut b, msg(b'H', b'O', b"T2  "));
        assert!(b.get(0).is_quoting() && !b.get(0).is_trading());
        apply(&mut b, msg(b'P', 1, b"A"));
        assert!(b.get(0).is_short_sell_restricted());
        assert_eq!(b.get(0).short_sale_test, Some((true, ShortSaleDetail::Activated)));
        let s = decode(Protocol::Deep, &[b'S', b'R', 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(b.apply(0, &s), StatusChange::Phase(SystemEventCode::StartOfRegularHours));
        assert_eq!(b.phase(), Some(SystemEventCode::StartOfRegularHours));
    }
}
