//! JSON-RPC quantities: `0x`-prefixed hex integers (`"0x0"`, `"0x1bc16d674ec80000"`), read
//! exactly into integers. A value that does not fit is an error, never a wrapped or truncated
//! number; there is no float on the way.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;

/// A quantity the node wrote that is not one, or does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not `0x` followed by 1 or more hex digits.
    #[error("a quantity is `0x` and hex digits")]
    Syntax,
    /// More than the integer type holds.
    #[error("the quantity is over {0} bits")]
    Overflow(u32),
}

/// Reads a quantity into a u128. Leading zeros are accepted (the value is still exact); an
/// empty `0x` is not a quantity.
pub fn parse_quantity(text: &str) -> Result<u128, QuantityError> {
    let digits = text.strip_prefix("0x").ok_or(QuantityError::Syntax)?;
    if digits.is_empty() {
        return Err(QuantityError::Syntax);
    }
    let mut value: u128 = 0;
    for c in digits.chars() {
        let digit = c.to_digit(16).ok_or(QuantityError::Syntax)?;
        value = value
            .checked_mul(16)
            .and_then(|v| v.checked_add(u128::from(digit)))
            .ok_or(QuantityError::Overflow(128))?;
    }
    Ok(value)
}

/// Reads a quantity into a u64 (block numbers, nonces, gas, chain ids).
pub fn parse_quantity_u64(text: &str) -> Result<u64, QuantityError> {
    u64::try_from(parse_quantity(text)?).map_err(|_| QuantityError::Overflow(64))
}

/// A quantity as nodes read it: `0x` and minimal lower-case hex digits (`0x0` for zero).
pub fn quantity(value: u128) -> String {
    format!("{value:#x}")
}

/// Serde adapters for quantities inside the node's replies.
pub(crate) mod de {
    use super::*;

    pub(crate) fn u128<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        parse_quantity(&text).map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }

    pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        parse_quantity_u64(&text).map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }

    pub(crate) fn opt_u128<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        match Option::<Cow<'de, str>>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse_quantity(&text)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{text:?}: {e}"))),
        }
    }

    pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Cow<'de, str>>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse_quantity_u64(&text)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{text:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_exact() {
        assert_eq!(parse_quantity("0x0"), Ok(0));
        assert_eq!(parse_quantity("0x1bc16d674ec80000"), Ok(2_000_000_000_000_000_000));
        assert_eq!(parse_quantity("0xDE0B6B3A7640000"), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_quantity("0x00ff"), Ok(255));
        assert_eq!(parse_quantity(&format!("0x{}", "f".repeat(32))), Ok(u128::MAX));
        assert_eq!(parse_quantity(&format!("0x0000{}", "f".repeat(32))), Ok(u128::MAX));
        assert_eq!(
            parse_quantity(&format!("0x1{}", "0".repeat(32))),
            Err(QuantityError::Overflow(128))
        );
        assert_eq!(
            parse_quantity(&format!("0x{}", "f".repeat(64))),
            Err(QuantityError::Overflow(128))
        );
        for bad in ["", "0x", "12", "0x-1", "0x1.5", "0xg", " 0x1", "0x1 ", "1e18", "0X1", "0x+1"] {
            assert_eq!(parse_quantity(bad), Err(QuantityError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_quantity_u64("0xffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(parse_quantity_u64("0x10000000000000000"), Err(QuantityError::Overflow(64)));
    }

    #[test]
    fn quantities_print_minimal() {
        assert_eq!(quantity(0), "0x0");
        assert_eq!(quantity(255), "0xff");
        assert_eq!(quantity(u128::MAX), format!("0x{}", "f".repeat(32)));
        for v in [0, 1, 15, 16, 1 << 64, u128::MAX - 1] {
            assert_eq!(parse_quantity(&quantity(v)), Ok(v));
        }
    }
}
