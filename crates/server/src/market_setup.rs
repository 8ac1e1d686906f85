//! How an operator's text becomes an engine command for an asset or a market: decimal amounts
//! in whole asset units ("0.01") to minor units, with what was not given left as it is. Shared
//! by the admin app's market page and `bourse asset add` / `bourse market add|edit`, so both
//! read the same text the same way. The engine still checks every spec and change (grid rules,
//! fee ceiling) and refuses a bad one with its reason.

use bourse_core::decimal::parse_units;
use bourse_core::{AssetId, AssetSpec, MarketChange, MarketSpec, Symbol};

/// A market's grid, limits and fees as an operator writes them: amounts in whole units of the
/// base (lot, quantities) or quote (tick, notional) asset; `None` or an empty string is "not
/// given".
#[derive(Clone, Debug, Default)]
pub struct MarketText<'a> {
    pub tick: Option<&'a str>,
    pub lot: Option<&'a str>,
    pub min_qty: Option<&'a str>,
    pub max_qty: Option<&'a str>,
    pub min_notional: Option<&'a str>,
    pub maker_fee_ppm: Option<u32>,
    pub taker_fee_ppm: Option<u32>,
}

/// An asset and its scale (decimal places of its minor unit).
#[derive(Clone, Copy, Debug)]
pub struct Side {
    pub id: AssetId,
    pub scale: u8,
}

/// Default fee rates of a new market: 0.1 % maker, 0.2 % taker.
pub const DEFAULT_MAKER_FEE_PPM: u32 = 1000;
pub const DEFAULT_TAKER_FEE_PPM: u32 = 2000;

/// `AddAsset` for `symbol` with `scale` decimal places.
pub fn asset_spec(symbol: &str, scale: u8) -> Result<AssetSpec, String> {
    let symbol = Symbol::new(symbol.trim()).map_err(|e| format!("symbol {e}"))?;
    Ok(AssetSpec { symbol, scale })
}

fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn units(name: &str, v: Option<&str>, scale: u8) -> Result<Option<u128>, String> {
    given(v).map(|v| parse_units(v, scale).map_err(|e| format!("{name}: {e}"))).transpose()
}

/// The spec of a new market. Tick and lot are required; the minimum quantity defaults to one
/// lot, the maximum to 2^30 lots, the minimum notional to 0, the fees to the defaults above.
pub fn new_market(base: Side, quote: Side, t: &MarketText) -> Result<MarketSpec, String> {
    let tick = units("tick", t.tick, quote.scale)?.ok_or("give the tick (price step)")?;
    let lot = units("lot", t.lot, base.scale)?.ok_or("give the lot (quantity step)")?;
    Ok(MarketSpec {
        base: base.id,
        quote: quote.id,
        tick,
        lot,
        min_qty: units("min quantity", t.min_qty, base.scale)?.unwrap_or(lot),
        max_qty: units("max quantity", t.max_qty, base.scale)?
            .unwrap_or(lot.saturating_mul(1 << 30)),
        min_notional: units("min notional", t.min_notional, quote.scale)?.unwrap_or(0),
        maker_fee_ppm: t.maker_fee_ppm.unwrap_or(DEFAULT_MAKER_FEE_PPM),
        taker_fee_ppm: t.taker_fee_ppm.unwrap_or(DEFAULT_TAKER_FEE_PPM),
    })
}

/// What an edit changes: the grid and limits (`ChangeMarket`), the fees (`SetFees`: maker and
/// taker ppm), each `None` when the edit leaves it alone.
pub type MarketEdit = (Option<MarketChange>, Option<(u32, u32)>);

/// What to change in an existing market: its grid and limits (`None` when none of them is
/// given) and its fees (`None` when neither rate is given; a rate not given keeps
/// `current_fees`). An edit that changes nothing is an error.
pub fn edit_market(
    base_scale: u8,
    quote_scale: u8,
    current_fees: (u32, u32),
    t: &MarketText,
) -> Result<MarketEdit, String> {
    let change = MarketChange {
        tick: units("tick", t.tick, quote_scale)?,
        lot: units("lot", t.lot, base_scale)?,
        min_qty: units("min quantity", t.min_qty, base_scale)?,
        max_qty: units("max quantity", t.max_qty, base_scale)?,
        min_notional: units("min notional", t.min_notional, quote_scale)?,
    };
    let change = (change != MarketChange::default()).then_some(change);
    let fees = (t.maker_fee_ppm.is_some() || t.taker_fee_ppm.is_some()).then(|| {
        (t.maker_fee_ppm.unwrap_or(current_fees.0), t.taker_fee_ppm.unwrap_or(current_fees.1))
    });
    if change.is_none() && fees.is_none() {
        return Err(
            "nothing to change: give a tick, lot, quantity limit, min notional or fee".into()
        );
    }
    Ok((change, fees))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTC: Side = Side { id: AssetId(1), scale: 8 };
    const USDT: Side = Side { id: AssetId(2), scale: 6 };

    #[test]
    fn a_new_market_reads_whole_units_and_fills_defaults() {
        let t = MarketText { tick: Some("0.01"), lot: Some(" 0.0001 "), ..Default::default() };
        let spec = new_market(BTC, USDT, &t).unwrap();
        assert_eq!((spec.tick, spec.lot, spec.min_qty), (10_000, 10_000, 10_000));
        assert_eq!(spec.max_qty, 10_000 << 30);
        assert_eq!((spec.min_notional, spec.maker_fee_ppm, spec.taker_fee_ppm), (0, 1000, 2000));
        let no_lot = MarketText { tick: Some("0.01"), lot: Some(""), ..Default::default() };
        assert!(new_market(BTC, USDT, &no_lot).unwrap_err().contains("lot"));
        let too_fine = MarketText { tick: Some("0.0000001"), lot: Some("1"), ..t };
        assert!(new_market(BTC, USDT, &too_fine).unwrap_err().starts_with("tick:"));
    }

    #[test]
    fn an_edit_changes_only_what_is_given() {
        let t = MarketText { min_notional: Some("5"), ..Default::default() };
        let (change, fees) = edit_market(8, 6, (1000, 2000), &t).unwrap();
        assert_eq!(
            change,
            Some(MarketChange { min_notional: Some(5_000_000), ..Default::default() })
        );
        assert_eq!(fees, None);
        let t = MarketText { taker_fee_ppm: Some(1500), ..Default::default() };
        assert_eq!(edit_market(8, 6, (1000, 2000), &t).unwrap(), (None, Some((1000, 1500))));
        assert!(edit_market(8, 6, (1000, 2000), &MarketText::default()).is_err());
        let bad = MarketText { lot: Some("-1"), ..Default::default() };
        assert!(edit_market(8, 6, (1000, 2000), &bad).unwrap_err().starts_with("lot:"));
    }
}
