//! Keys and addresses: the hot wallet's BIP-39 seed, the BIP-32 keys derived from it on
//! Ethereum's path `m/44'/60'/0'/0/index`, and EIP-55 checksummed addresses.
//!
//! A [`Seed`] and a [`Phrase`] are secrets: their `Debug` is redacted, they are zeroed when
//! dropped, and nothing here logs them.

use crate::hash::keccak256;
use bip32::{ChildNumber, XPrv};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

pub use k256::ecdsa::SigningKey;

/// A 20-byte account address: the last 20 bytes of the Keccak-256 of the account's public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

/// Text that is not an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Addresses are written `0x` and 40 hex digits.
    #[error("an address starts with `0x`")]
    Prefix,
    /// Not 40 hex digits after `0x`.
    #[error("an address is 40 hex digits after `0x`")]
    Length,
    /// A character that is not a hex digit.
    #[error("an address is hex digits")]
    NotHex,
    /// Mixed case that is not the EIP-55 checksum: a typo, or a copy gone wrong.
    #[error("the address's mixed case is not its EIP-55 checksum (a typo?)")]
    Checksum,
}

impl Address {
    /// The address's bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Reads `0x` and 40 hex digits. All lower-case or all upper-case digits carry no checksum
    /// and are taken as they are; mixed case must be the EIP-55 checksum.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let digits = text.strip_prefix("0x").ok_or(AddressError::Prefix)?;
        if digits.len() != 40 {
            return Err(AddressError::Length);
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| AddressError::NotHex)?;
        let address = Address(bytes);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper && address.checksummed().get(2..) != Some(digits) {
            return Err(AddressError::Checksum);
        }
        Ok(address)
    }

    /// The EIP-55 form: `0x` and 40 hex digits, a letter upper-case where the matching nibble of
    /// the Keccak-256 of the lower-case hex is 8 or more.
    pub fn checksummed(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let byte = hash.get(i / 2).copied().unwrap_or(0);
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Address, AddressError> {
        Address::parse(text)
    }
}

/// The EIP-55 checksummed form.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.checksummed())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Address::parse(&text).map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }
}

/// The address that `key` signs for.
pub fn address_of(key: &SigningKey) -> Address {
    address_of_verifying(key.verifying_key())
}

/// The address of a public key.
pub(crate) fn address_of_verifying(key: &k256::ecdsa::VerifyingKey) -> Address {
    // The uncompressed SEC1 point is 0x04 || x || y; the address hashes x || y.
    let point = key.to_sec1_point(false);
    let xy = point.as_bytes().get(1..).unwrap_or_default();
    let hash = keccak256(xy);
    let mut address = [0u8; 20];
    for (a, h) in address.iter_mut().zip(hash.iter().skip(12)) {
        *a = *h;
    }
    Address(address)
}

/// A seed or phrase that cannot make keys, or a key that cannot be derived.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a BIP-39 English phrase: an unknown word, a wrong word count or a failed checksum.
    #[error("not a BIP-39 mnemonic phrase: {0}")]
    Phrase(String),
    /// A hex seed that is not hex.
    #[error("the seed is not hex")]
    SeedHex,
    /// BIP-32 seeds are 16, 32 or 64 bytes.
    #[error("a seed is 16, 32 or 64 bytes, not {0}")]
    SeedLength(usize),
    /// Indexes are under 2^31 (the higher half is for hardened derivation).
    #[error("the key index {0} is not under 2^31")]
    Index(u32),
    /// The derivation hit a key that does not exist (about 1 chance in 2^127 per step).
    #[error("BIP-32 derivation failed: {0}")]
    Derivation(String),
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// A BIP-39 mnemonic phrase: the words an operator writes down. A secret.
#[derive(Clone)]
pub struct Phrase(Zeroizing<String>);

impl Phrase {
    /// A new 24-word English phrase from 256 bits of the operating system's randomness.
    pub fn generate() -> Result<Phrase, KeyError> {
        let mut entropy = Zeroizing::new([0u8; 32]);
        getrandom::fill(entropy.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
        let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_slice())
            .map_err(|e| KeyError::Phrase(e.to_string()))?;
        Ok(Phrase(Zeroizing::new(mnemonic.to_string())))
    }

    /// Takes `words` as a phrase after checking it is one (English words and checksum).
    pub fn new(words: &str) -> Result<Phrase, KeyError> {
        let mnemonic =
            bip39::Mnemonic::parse(words).map_err(|e| KeyError::Phrase(e.to_string()))?;
        Ok(Phrase(Zeroizing::new(mnemonic.to_string())))
    }

    /// The words, space-separated: to show the operator once, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phrase(<redacted>)")
    }
}

/// A BIP-32 master seed, the root of every key of the wallet. A secret.
#[derive(Clone)]
pub struct Seed(Zeroizing<Vec<u8>>);

impl Seed {
    /// The BIP-39 seed of an English `phrase` and its optional `passphrase` ("" for none):
    /// PBKDF2-HMAC-SHA512 over the normalised words, 64 bytes.
    pub fn from_phrase(phrase: &str, passphrase: &str) -> Result<Seed, KeyError> {
        let mnemonic =
            bip39::Mnemonic::parse(phrase).map_err(|e| KeyError::Phrase(e.to_string()))?;
        let seed = Zeroizing::new(mnemonic.to_seed(passphrase));
        Seed::from_bytes(seed.as_slice())
    }

    /// A seed written as hex (`0x` optional): 16, 32 or 64 bytes.
    pub fn from_hex(text: &str) -> Result<Seed, KeyError> {
        let digits = text.trim();
        let digits = digits.strip_prefix("0x").unwrap_or(digits);
        let bytes = Zeroizing::new(hex::decode(digits).map_err(|_| KeyError::SeedHex)?);
        Seed::from_bytes(&bytes)
    }

    /// A seed of 16, 32 or 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Seed, KeyError> {
        if ![16, 32, 64].contains(&bytes.len()) {
            return Err(KeyError::SeedLength(bytes.len()));
        }
        Ok(Seed(Zeroizing::new(bytes.to_vec())))
    }

    /// The key at `m/44'/60'/0'/0/index` (BIP-44, Ethereum's coin type 60), as MetaMask,
    /// hardware wallets and anvil derive them. `index` is under 2^31.
    pub fn derive(&self, index: u32) -> Result<SigningKey, KeyError> {
        if index >= ChildNumber::HARDENED_FLAG {
            return Err(KeyError::Index(index));
        }
        let derivation = |e: bip32::Error| KeyError::Derivation(e.to_string());
        let mut key = XPrv::new(self.0.as_slice()).map_err(derivation)?;
        for (number, hardened) in [(44, true), (60, true), (0, true), (0, false), (index, false)] {
            let child = ChildNumber::new(number, hardened).map_err(derivation)?;
            key = key.derive_child(child).map_err(derivation)?;
        }
        Ok(key.private_key().clone())
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ANVIL_MNEMONIC: &str = "test test test test test test test test test test test junk";

    #[test]
    fn anvil_default_accounts() {
        // anvil's (and hardhat's) well-known dev accounts, from its default mnemonic.
        let seed = Seed::from_phrase(ANVIL_MNEMONIC, "").unwrap();
        let key = seed.derive(0).unwrap();
        assert_eq!(address_of(&key).to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert_eq!(
            hex::encode(key.to_bytes()),
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        );
        let one = address_of(&seed.derive(1).unwrap());
        assert_eq!(one.to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        assert_eq!(
            seed.derive(1 << 31).unwrap_err().to_string(),
            KeyError::Index(1 << 31).to_string()
        );
    }

    #[test]
    fn seeds_from_phrase_and_hex_agree() {
        let seed = Seed::from_phrase(ANVIL_MNEMONIC, "").unwrap();
        let hex_seed = Seed::from_hex(&format!("0x{}", hex::encode(seed.0.as_slice()))).unwrap();
        assert_eq!(hex_seed.derive(3).unwrap().to_bytes(), seed.derive(3).unwrap().to_bytes());
        // A passphrase is part of the seed.
        let other = Seed::from_phrase(ANVIL_MNEMONIC, "passphrase").unwrap();
        assert_ne!(address_of(&other.derive(0).unwrap()), address_of(&seed.derive(0).unwrap()));
        assert!(matches!(Seed::from_hex("abcd"), Err(KeyError::SeedLength(2))));
        assert!(matches!(Seed::from_hex("zz"), Err(KeyError::SeedHex)));
        assert!(matches!(Seed::from_phrase("test test test", ""), Err(KeyError::Phrase(_))));
        // Twelve valid words with a wrong checksum word.
        let bad = ANVIL_MNEMONIC.replace("junk", "test");
        assert!(matches!(Seed::from_phrase(&bad, ""), Err(KeyError::Phrase(_))));
    }

    #[test]
    fn secrets_do_not_print() {
        let seed = Seed::from_phrase(ANVIL_MNEMONIC, "").unwrap();
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
        let phrase = Phrase::generate().unwrap();
        assert_eq!(format!("{phrase:?}"), "Phrase(<redacted>)");
        assert_eq!(phrase.expose().split(' ').count(), 24);
        // A generated phrase is a valid one, and two are different.
        assert_eq!(Phrase::new(phrase.expose()).unwrap().expose(), phrase.expose());
        assert_ne!(Phrase::generate().unwrap().expose(), phrase.expose());
    }

    #[test]
    fn eip55_checksums() {
        // The examples of EIP-55.
        for text in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let address = Address::parse(text).unwrap();
            assert_eq!(address.to_string(), text);
            assert_eq!(Address::parse(&text.to_lowercase()), Ok(address));
            assert_eq!(Address::parse(&format!("0x{}", text[2..].to_uppercase())), Ok(address));
            // One letter's case flipped breaks the checksum.
            let i = text[2..].find(|c: char| c.is_ascii_alphabetic()).unwrap() + 2;
            let mut flipped = text.to_string().into_bytes();
            flipped[i] ^= 0x20;
            let flipped = String::from_utf8(flipped).unwrap();
            assert_eq!(Address::parse(&flipped), Err(AddressError::Checksum), "{flipped}");
        }
        assert_eq!(
            Address::parse("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(AddressError::Prefix)
        );
        assert_eq!(
            Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA"),
            Err(AddressError::Length)
        );
        assert_eq!(
            Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd"),
            Err(AddressError::Length)
        );
        assert_eq!(
            Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"),
            Err(AddressError::NotHex)
        );
        assert_eq!(
            Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BéAe"),
            Err(AddressError::NotHex)
        );
        let json = serde_json::to_string(
            &Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap(),
        )
        .unwrap();
        assert_eq!(json, "\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"");
    }
}
