//! Binance's request parameters: `name=value` pairs from the query string and, for POST and
//! DELETE, a form body (ccxt puts everything, the signature included, in the body); a name in
//! both is the query's. Missing and malformed parameters are Binance's `-1102` and `-1100`.

use super::error::{BinanceError, BinanceResult};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Params {
    pairs: BTreeMap<String, String>,
}

impl Params {
    pub fn parse(query: Option<&str>, body: &[u8]) -> Params {
        let mut pairs = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            pairs.insert(k.into_owned(), v.into_owned());
        }
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            pairs.insert(k.into_owned(), v.into_owned());
        }
        Params { pairs }
    }

    /// The value of `name`, unless absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> BinanceResult<&str> {
        self.get(name).ok_or_else(|| BinanceError::mandatory(name))
    }

    pub fn u64(&self, name: &str) -> BinanceResult<Option<u64>> {
        self.get(name)
            .map(|v| v.parse::<u64>().map_err(|_| BinanceError::illegal(name, "0^64")))
            .transpose()
    }

    /// A time in ms (`startTime`, `endTime`).
    pub fn time(&self, name: &str) -> BinanceResult<Option<i64>> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| BinanceError::illegal(name, "0^63")))
            .transpose()
    }

    /// `limit`: `default` when absent, at most `max`.
    pub fn limit(&self, default: u32, max: u32) -> BinanceResult<u32> {
        match self.u64("limit")? {
            None | Some(0) => Ok(default),
            Some(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX).min(max)),
        }
    }

    /// `symbols=["BTCUSDT","ETHUSDT"]` (JSON, percent-encoded), if given.
    pub fn symbols(&self) -> BinanceResult<Option<Vec<String>>> {
        self.get("symbols")
            .map(|v| {
                serde_json::from_str::<Vec<String>>(v)
                    .map_err(|_| BinanceError::illegal("symbols", "[\"SYMBOL\",...]"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_over_the_body_and_values_are_decoded() {
        let p = Params::parse(Some("symbol=BTCUSDT&limit=5"), b"symbol=ETHUSDT&side=BUY&x=%2F");
        assert_eq!(p.get("symbol"), Some("BTCUSDT"));
        assert_eq!(p.get("side"), Some("BUY"));
        assert_eq!(p.get("x"), Some("/"));
        assert_eq!(p.limit(100, 1000).ok(), Some(5));
        assert_eq!(p.required("price").err().map(|e| e.code), Some(-1102));
        let p = Params::parse(Some("limit=x&symbols=%5B%22A%22%2C%22B%22%5D"), b"");
        assert_eq!(p.limit(1, 2).err().map(|e| e.code), Some(-1100));
        assert_eq!(p.symbols().ok().flatten(), Some(vec!["A".to_string(), "B".to_string()]));
    }
}
