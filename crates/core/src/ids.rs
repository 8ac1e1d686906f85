//! Identifiers and bounded strings. Each is a newtype so a user id can never be passed where an
//! order id is expected, and each string type checks its own grammar once, at construction.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An asset (coin or fiat currency); assigned by the engine, starting at 1.
    AssetId(u32)
);
id_type!(
    /// A market (base/quote pair); assigned by the engine, starting at 1.
    MarketId(u32)
);
id_type!(
    /// An account holder; assigned outside the engine (the accounts database).
    UserId(u64)
);
id_type!(
    /// An order; assigned by the engine, unique for ever, increasing.
    OrderId(u64)
);
id_type!(
    /// A trade; assigned by the engine per market, increasing.
    TradeId(u64)
);
id_type!(
    /// A withdrawal; assigned by the wallet role's database before it asks the engine to hold
    /// funds, so a retried request is recognised as the same withdrawal.
    WithdrawalId(u64)
);

/// Why a bounded string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} bytes")]
    TooLong { max: usize },
    #[error("contains a character that is not allowed ({allowed})")]
    BadChar { allowed: &'static str },
}

fn check_text(
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), TextError> {
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    if s.len() > max {
        return Err(TextError::TooLong { max });
    }
    if !s.bytes().all(ok) {
        return Err(TextError::BadChar { allowed });
    }
    Ok(())
}

/// A client's own id for an order (Binance's `newClientOrderId` grammar: 1–36 of
/// `A-Z a-z 0-9 . _ : / -`). Stored inline so orders and commands carry it without allocating.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientOrderId {
    len: u8,
    bytes: [u8; ClientOrderId::MAX_LEN],
}

impl ClientOrderId {
    pub const MAX_LEN: usize = 36;

    pub fn new(s: &str) -> Result<Self, TextError> {
        check_text(s, Self::MAX_LEN, "A-Z a-z 0-9 . _ : / -", |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
        })?;
        let mut bytes = [0u8; Self::MAX_LEN];
        for (dst, src) in bytes.iter_mut().zip(s.bytes()) {
            *dst = src;
        }
        // `check_text` bounded the length to MAX_LEN (36), which fits a u8.
        Ok(Self { len: s.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ASCII was ever stored.
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientOrderId({:?})", self.as_str())
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn new(s: &str) -> Result<Self, TextError> {
                check_text(s, Self::MAX_LEN, $allowed, $ok)?;
                Ok(Self(s.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// An asset's ticker, e.g. `BTC`: 1–12 of `A-Z 0-9`.
    Symbol,
    12,
    "A-Z 0-9",
    |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit()
);
text_type!(
    /// An external key that makes a command idempotent, e.g. a deposit's `txid:vout` or a
    /// bank reference: 1–128 printable ASCII characters.
    ExternalKey,
    128,
    "printable ASCII",
    |b: u8| b.is_ascii_graphic()
);
text_type!(
    /// A human reason recorded with an audited action: 1–256 printable ASCII characters or
    /// spaces.
    Reason,
    256,
    "printable ASCII and spaces",
    |b: u8| b.is_ascii_graphic() || b == b' '
);

// Serialisation goes through the checked constructors, so a decoded command or snapshot can
// never hold a string that the constructor would refuse.
macro_rules! serde_via_str {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(ClientOrderId);
serde_via_str!(Symbol);
serde_via_str!(ExternalKey);
serde_via_str!(Reason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_order_id_grammar() {
        assert_eq!(ClientOrderId::new("abc-1.2_3:4/5").unwrap().as_str(), "abc-1.2_3:4/5");
        assert_eq!(ClientOrderId::new(""), Err(TextError::Empty));
        assert!(matches!(ClientOrderId::new(&"a".repeat(37)), Err(TextError::TooLong { .. })));
        assert!(ClientOrderId::new(&"a".repeat(36)).is_ok());
        assert!(matches!(ClientOrderId::new("a b"), Err(TextError::BadChar { .. })));
        assert!(matches!(ClientOrderId::new("é"), Err(TextError::BadChar { .. })));
    }

    #[test]
    fn symbols_are_upper_case() {
        assert!(Symbol::new("BTC").is_ok());
        assert!(Symbol::new("btc").is_err());
        assert!(Symbol::new("USDT2").is_ok());
    }

    #[test]
    fn decoding_checks_the_grammar() {
        let bytes = postcard::to_allocvec(&"bad id!").unwrap();
        assert!(postcard::from_bytes::<ClientOrderId>(&bytes).is_err());
        let ok = postcard::to_allocvec(&ClientOrderId::new("ok").unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<ClientOrderId>(&ok).unwrap().as_str(), "ok");
    }
}
