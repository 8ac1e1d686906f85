//! Exact decimal strings at the edges. Amounts inside bourse are integers of minor units; these
//! functions turn `"1.25"` into `125_000_000` (scale 8) and back. Nothing is ever rounded: a
//! string with more significant decimals than the scale is refused.

/// Why a decimal string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    Syntax,
    #[error("more than {scale} decimal places")]
    TooPrecise { scale: u8 },
    #[error("number too large")]
    Overflow,
    #[error("must not be negative")]
    Negative,
}

/// The longest decimal string accepted; longer input is refused before any work.
pub const DECIMAL_LEN_MAX: usize = 80;

/// The largest scale an asset may have (ETH's wei).
pub const SCALE_MAX: u8 = 18;

/// `10^scale` for `scale <= 38`.
pub fn pow10(scale: u8) -> Option<u128> {
    10u128.checked_pow(u32::from(scale))
}

/// Parses a non-negative decimal (`"12"`, `"0.5"`, `"1.50"`) into minor units at `scale`.
/// Trailing zeros beyond the scale are accepted because they change nothing; any other extra
/// digit is refused. No sign, exponent, spaces or leading/trailing dot.
pub fn parse_units(s: &str, scale: u8) -> Result<u128, DecimalError> {
    if s.starts_with('-') {
        return Err(DecimalError::Negative);
    }
    if s.is_empty() || s.len() > DECIMAL_LEN_MAX {
        return Err(DecimalError::Syntax);
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(DecimalError::Syntax);
    }
    let frac = frac.unwrap_or("").trim_end_matches('0');
    if frac.len() > usize::from(scale) {
        return Err(DecimalError::TooPrecise { scale });
    }
    let mut value: u128 = 0;
    let push = |value: u128, b: u8| {
        value.checked_mul(10).and_then(|v| v.checked_add(u128::from(b - b'0')))
    };
    for b in int.bytes().chain(frac.bytes()) {
        value = push(value, b).ok_or(DecimalError::Overflow)?;
    }
    // `frac.len() <= scale`, so the subtraction cannot underflow.
    let missing = scale.saturating_sub(frac.len() as u8);
    let factor = pow10(missing).ok_or(DecimalError::Overflow)?;
    value.checked_mul(factor).ok_or(DecimalError::Overflow)
}

/// Parses a decimal that may carry a leading `-` (balance adjustments).
pub fn parse_signed_units(s: &str, scale: u8) -> Result<i128, DecimalError> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let magnitude = parse_units(digits, scale)?;
    let magnitude = i128::try_from(magnitude).map_err(|_| DecimalError::Overflow)?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Formats minor units with exactly `scale` decimals: `format_units(125_000_000, 8)` is
/// `"1.25000000"` (the fixed width clients such as Binance's expect).
pub fn format_units(value: u128, scale: u8) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

/// Formats signed minor units with exactly `scale` decimals.
pub fn format_signed_units(value: i128, scale: u8) -> String {
    let text = format_units(value.unsigned_abs(), scale);
    if value < 0 { format!("-{text}") } else { text }
}

/// Formats minor units without trailing zeros: `"1.25"`, `"3"`.
pub fn format_units_trimmed(value: u128, scale: u8) -> String {
    let text = format_units(value, scale);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A decimal amount in a configuration: a string (`"0.001"`) or a whole number (`5`, which is
/// also how an environment variable's value parses). Never a float: amounts are exact.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AmountText {
    Text(String),
    Whole(i64),
}

impl AmountText {
    fn text(self) -> String {
        match self {
            AmountText::Text(s) => s,
            AmountText::Whole(n) => n.to_string(),
        }
    }
}

/// `#[serde(deserialize_with)]` for a configured amount kept as its text (see [`AmountText`]).
pub fn deserialize_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    <AmountText as serde::Deserialize>::deserialize(d).map(AmountText::text).map_err(|_| {
        serde::de::Error::custom(
            "an amount is a decimal string such as \"0.001\" (or a whole number)",
        )
    })
}

/// [`deserialize_text`] for a table of amounts by name (`{ LTC = "100" }`).
pub fn deserialize_text_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let map: std::collections::BTreeMap<String, AmountText> = serde::Deserialize::deserialize(d)
        .map_err(|_: D::Error| {
            serde::de::Error::custom(
                "amounts are decimal strings such as \"0.001\" (or whole numbers), by symbol",
            )
        })?;
    Ok(map.into_iter().map(|(k, v)| (k, v.text())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_units("1.25", 8), Ok(125_000_000));
        assert_eq!(parse_units("0", 8), Ok(0));
        assert_eq!(parse_units("007", 2), Ok(700));
        assert_eq!(parse_units("1.50000000000", 1), Ok(15));
        assert_eq!(parse_units("12", 0), Ok(12));
        assert_eq!(parse_units("1.000000000000000001", 18), Ok(1_000_000_000_000_000_001));
    }

    #[test]
    fn refuses_what_it_would_have_to_round() {
        assert_eq!(parse_units("1.001", 2), Err(DecimalError::TooPrecise { scale: 2 }));
        assert_eq!(parse_units("0.5", 0), Err(DecimalError::TooPrecise { scale: 0 }));
    }

    #[test]
    fn refuses_bad_syntax() {
        for s in ["", ".", "1.", ".5", "1e5", "+1", " 1", "1 ", "1.2.3", "0x10", "١"] {
            assert_eq!(parse_units(s, 8), Err(DecimalError::Syntax), "{s:?}");
        }
        assert_eq!(parse_units("-1", 8), Err(DecimalError::Negative));
        assert_eq!(parse_units(&"9".repeat(81), 0), Err(DecimalError::Syntax));
        assert_eq!(parse_units(&"9".repeat(40), 0), Err(DecimalError::Overflow));
        assert_eq!(
            parse_units("340282366920938463463374607431768211455", 1),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_units(125_000_000, 8), "1.25000000");
        assert_eq!(format_units(5, 8), "0.00000005");
        assert_eq!(format_units(5, 0), "5");
        assert_eq!(format_units_trimmed(125_000_000, 8), "1.25");
        assert_eq!(format_units_trimmed(300, 2), "3");
        assert_eq!(format_signed_units(-5, 2), "-0.05");
        assert_eq!(parse_signed_units("-0.05", 2), Ok(-5));
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value: u128, scale in 0u8..=18) {
            prop_assert_eq!(parse_units(&format_units(value, scale), scale), Ok(value));
            prop_assert_eq!(parse_units(&format_units_trimmed(value, scale), scale), Ok(value));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,90}", scale in 0u8..=40) {
            let _ = parse_units(&s, scale);
            let _ = parse_signed_units(&s, scale);
        }
    }
}
