//! Keccak-256 and the 32-byte hashes that name transactions and blocks.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};
use std::fmt;
use std::str::FromStr;

/// Keccak-256 (the pre-standard SHA-3 that Ethereum uses), of `bytes`.
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// A hash that is not `0x` and 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a 32-byte hash is `0x` and 64 hex digits")]
pub struct HashError;

fn parse_hash(text: &str) -> Result<[u8; 32], HashError> {
    let digits = text.strip_prefix("0x").ok_or(HashError)?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digits, &mut bytes).map_err(|_| HashError)?;
    Ok(bytes)
}

macro_rules! hash_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The hash's bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = HashError;

            /// `0x` and 64 hex digits, either case.
            fn from_str(text: &str) -> Result<$name, HashError> {
                parse_hash(text).map($name)
            }
        }

        /// `0x` and 64 lower-case hex digits, as nodes write it.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
            }
        }
    };
}

hash_type!(
    /// A transaction's hash: Keccak-256 of its signed encoding, the id a node knows it by.
    TxHash
);
hash_type!(
    /// A block's hash.
    BlockHash
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_nothing() {
        // The hash every Ethereum account without code has as its code hash.
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn hashes_parse_and_print() {
        let text = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";
        let hash: TxHash = text.parse().unwrap();
        assert_eq!(hash.to_string(), text);
        assert_eq!(text.to_uppercase().replacen("0X", "0x", 1).parse::<TxHash>(), Ok(hash));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<TxHash>(&json).unwrap(), hash);
        for bad in [
            "",
            "0x",
            "88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b",
            "0x88df",
            &format!("{text}00"),
            &text.replace('8', "g"),
        ] {
            assert_eq!(bad.parse::<BlockHash>(), Err(HashError), "{bad:?}");
        }
    }
}
