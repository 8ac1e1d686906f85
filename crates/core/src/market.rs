//! Assets and markets: their specifications, the validation that keeps every amount on an exact
//! integer grid, and the fee and cost arithmetic the matcher uses.
//!
//! Prices are quote minor units per one whole base unit; quantities are base minor units. A
//! market's `tick` and `lot` are its price and quantity steps in those units. Inside the book a
//! price is a count of ticks and a quantity a count of lots (`u64`), and the cost of one lot at one
//! tick, `tick_lot_cost = tick * lot / 10^base_scale`, must be a whole number of quote minor units:
//! a market whose grid would need rounding is refused at creation, so no trade ever rounds.

use crate::decimal::{SCALE_MAX, pow10};
use crate::ids::{AssetId, Symbol};
use serde::{Deserialize, Serialize};

/// Fee rates are parts per million of the notional (1000 ppm = 0.1 %).
pub const PPM: u128 = 1_000_000;
/// The highest fee rate a market may charge (10 %).
pub const FEE_PPM_MAX: u32 = 100_000;
/// The most lots one order may have: with at most a few million resting orders, a price
/// level's total (a `u64` of lots) can never overflow.
pub const ORDER_LOTS_MAX: u64 = 1 << 40;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetSpec {
    pub symbol: Symbol,
    /// Decimal places of one minor unit (BTC 8, ETH 18).
    pub scale: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketStatus {
    Trading,
    /// Accepts cancels only.
    Halted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSpec {
    pub base: AssetId,
    pub quote: AssetId,
    /// Price step, in quote minor units per whole base unit.
    pub tick: u128,
    /// Quantity step, in base minor units.
    pub lot: u128,
    /// Smallest and largest order quantity, in base minor units (multiples of `lot`).
    pub min_qty: u128,
    pub max_qty: u128,
    /// Smallest notional of a limit order, in quote minor units.
    pub min_notional: u128,
    pub maker_fee_ppm: u32,
    pub taker_fee_ppm: u32,
}

/// Why a market specification was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SpecError {
    #[error("base and quote must be different assets")]
    SameAsset,
    #[error("tick and lot must be positive")]
    ZeroStep,
    #[error("one lot at one tick must cost a whole number of quote minor units")]
    InexactGrid,
    #[error("min and max quantity must be multiples of the lot with 0 < min <= max <= 2^40 lots")]
    BadQuantityLimits,
    #[error("fee rates must be at most {FEE_PPM_MAX} ppm")]
    FeeTooHigh,
    #[error("the grid is too large to compute with")]
    Overflow,
}

/// A market spec checked against its assets, with the derived integer grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Quote minor units for one lot at one tick.
    pub tick_lot_cost: u128,
    pub min_lots: u64,
    pub max_lots: u64,
}

impl MarketSpec {
    /// Validates the spec against the base asset's scale and derives the grid.
    pub fn grid(&self, base_scale: u8) -> Result<Grid, SpecError> {
        if self.base == self.quote {
            return Err(SpecError::SameAsset);
        }
        if self.tick == 0 || self.lot == 0 {
            return Err(SpecError::ZeroStep);
        }
        if self.maker_fee_ppm > FEE_PPM_MAX || self.taker_fee_ppm > FEE_PPM_MAX {
            return Err(SpecError::FeeTooHigh);
        }
        let unit = pow10(base_scale.min(SCALE_MAX)).ok_or(SpecError::Overflow)?;
        let product = self.tick.checked_mul(self.lot).ok_or(SpecError::Overflow)?;
        if product % unit != 0 {
            return Err(SpecError::InexactGrid);
        }
        let tick_lot_cost = product / unit;
        let lots = |qty: u128| -> Result<u64, SpecError> {
            if !qty.is_multiple_of(self.lot) {
                return Err(SpecError::BadQuantityLimits);
            }
            u64::try_from(qty / self.lot).map_err(|_| SpecError::Overflow)
        };
        let min_lots = lots(self.min_qty)?;
        let max_lots = lots(self.max_qty)?;
        if min_lots == 0 || min_lots > max_lots || max_lots > ORDER_LOTS_MAX {
            return Err(SpecError::BadQuantityLimits);
        }
        // The largest possible order must be computable: max price ticks * max lots * cost fits
        // when ticks are u64; prices are checked per order, so only the cost factor is bounded.
        u128::from(max_lots).checked_mul(tick_lot_cost).ok_or(SpecError::Overflow)?;
        Ok(Grid { tick_lot_cost, min_lots, max_lots })
    }

    pub fn fee_ppm_max(&self) -> u32 {
        self.maker_fee_ppm.max(self.taker_fee_ppm)
    }
}

/// `a / b` and `a % b` for `b > 0`, through 64-bit division when both fit: 128-bit division is
/// a library call several times slower, and almost every amount fits.
#[inline]
pub fn div_rem(a: u128, b: u128) -> (u128, u128) {
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) if b > 0 => (u128::from(a / b), u128::from(a % b)),
        _ => (a.checked_div(b).unwrap_or(0), a.checked_rem(b).unwrap_or(0)),
    }
}

/// Fees round down to the minor unit: a trader is never charged more than the exact rate, and the
/// sum of the fees of many fills never exceeds the fee on their total, which is what lets a
/// resting buy order's lock (rounded up) always cover every fill.
pub fn fee(notional: u128, rate_ppm: u32) -> u128 {
    div_rem(notional.saturating_mul(u128::from(rate_ppm)), PPM).0
}

/// The fee reserved when locking funds for a buy: rounded up, so it covers every fill.
pub fn fee_reserve(notional: u128, rate_ppm: u32) -> Option<u128> {
    let (q, r) = div_rem(notional.checked_mul(u128::from(rate_ppm))?, PPM);
    Some(if r > 0 { q + 1 } else { q })
}

/// The quote a buy of `lots` at `ticks` needs locked: notional plus the fee reserve.
pub fn buy_need(ticks: u64, lots: u64, tick_lot_cost: u128, rate_ppm: u32) -> Option<u128> {
    let notional = notional(ticks, lots, tick_lot_cost)?;
    notional.checked_add(fee_reserve(notional, rate_ppm)?)
}

/// Quote minor units of `lots` at `ticks`.
pub fn notional(ticks: u64, lots: u64, tick_lot_cost: u128) -> Option<u128> {
    (u128::from(ticks) * u128::from(lots)).checked_mul(tick_lot_cost)
}

/// The most lots a buyer with `budget` can take at `ticks` when fees at `rate_ppm` come on top.
pub fn affordable_lots(budget: u128, ticks: u64, tick_lot_cost: u128, rate_ppm: u32) -> u64 {
    let Some(lot_cost) = u128::from(ticks).checked_mul(tick_lot_cost) else { return 0 };
    if lot_cost == 0 {
        return u64::MAX;
    }
    let cost = |lots: u128| {
        let n = lots.checked_mul(lot_cost)?;
        n.checked_add(fee(n, rate_ppm))
    };
    // A first estimate from the exact rate, then at most two steps: fees round down, so the true
    // answer is at most two lots above the estimate.
    let per_lot_with_fee = lot_cost.saturating_mul(PPM + u128::from(rate_ppm));
    let mut lots = budget.saturating_mul(PPM) / per_lot_with_fee.max(1);
    if budget > u128::MAX / PPM {
        lots = budget / lot_cost;
    }
    while lots > 0 && cost(lots).is_none_or(|c| c > budget) {
        lots -= 1;
    }
    while cost(lots + 1).is_some_and(|c| c <= budget) {
        lots += 1;
    }
    u64::try_from(lots).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn btc_usdt() -> MarketSpec {
        MarketSpec {
            base: AssetId(1),
            quote: AssetId(2),
            tick: 1_000_000, // 0.01 USDT at scale 8
            lot: 1_000,      // 0.00001 BTC
            min_qty: 1_000,
            max_qty: 100_000_000_000,
            min_notional: 1_000_000_000,
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_000,
        }
    }

    #[test]
    fn grid_is_exact() {
        let grid = btc_usdt().grid(8).unwrap();
        assert_eq!(grid.tick_lot_cost, 10);
        assert_eq!(grid.min_lots, 1);
        assert_eq!(grid.max_lots, 100_000_000);
        let inexact = MarketSpec { tick: 100, lot: 1_000_000_000_000_000, ..btc_usdt() };
        assert_eq!(inexact.grid(18), Err(SpecError::InexactGrid));
        assert_eq!(
            MarketSpec { min_qty: 1_500, ..btc_usdt() }.grid(8),
            Err(SpecError::BadQuantityLimits)
        );
        assert_eq!(
            MarketSpec { quote: AssetId(1), ..btc_usdt() }.grid(8),
            Err(SpecError::SameAsset)
        );
        assert_eq!(
            MarketSpec { taker_fee_ppm: 100_001, ..btc_usdt() }.grid(8),
            Err(SpecError::FeeTooHigh)
        );
    }

    #[test]
    fn fees_round_down_reserves_round_up() {
        assert_eq!(fee(999, 1_000), 0);
        assert_eq!(fee(1_000, 1_000), 1);
        assert_eq!(fee_reserve(999, 1_000), Some(1));
        assert_eq!(fee_reserve(1_000, 1_000), Some(1));
    }

    proptest! {
        #[test]
        fn affordable_lots_is_the_maximum(budget in 0u128..10_000_000_000, ticks in 1u64..1_000_000, cost in 1u128..1_000, rate in 0u32..=FEE_PPM_MAX) {
            let lots = u128::from(affordable_lots(budget, ticks, cost, rate));
            let spend = |l: u128| { let n = l * u128::from(ticks) * cost; n + fee(n, rate) };
            prop_assert!(spend(lots) <= budget);
            prop_assert!(spend(lots + 1) > budget);
        }

        #[test]
        fn fills_never_exceed_the_reserve(fills in proptest::collection::vec(1u64..1_000, 1..20), ticks in 1u64..100_000, cost in 1u128..100, rate in 0u32..=FEE_PPM_MAX) {
            let total: u64 = fills.iter().sum();
            let reserve = buy_need(ticks, total, cost, rate).unwrap();
            let spent: u128 = fills.iter().map(|&q| { let n = notional(ticks, q, cost).unwrap(); n + fee(n, rate) }).sum();
            prop_assert!(spent <= reserve);
        }
    }
}
