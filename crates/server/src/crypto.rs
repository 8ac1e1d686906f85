//! Small cryptographic helpers: random tokens, token hashes, the sealing of API-key secrets and
//! TOTP secrets (ChaCha20-Poly1305, each under its own key derived from the configured secret),
//! request signatures (HMAC-SHA256, hex) and password hashing (argon2id).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("sealed value does not open (wrong key or tampered)")]
    Open,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A random token of 32 bytes, hex (session cookies, e-mail links, API secrets).
pub fn random_token() -> Result<String, CryptoError> {
    Ok(hex::encode(random_bytes::<32>()?))
}

/// The hex SHA-256 of a token: what the database stores instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// HMAC-SHA256 of `payload` under `key`, hex.
pub fn hmac_hex(key: &[u8], payload: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return String::new() };
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a hex HMAC-SHA256 signature in constant time (hex case-insensitive).
pub fn hmac_verify(key: &[u8], payload: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else { return false };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return false };
    mac.update(payload);
    mac.verify_slice(&signature).is_ok()
}

/// Keys derived from the configured secret, one per purpose.
#[derive(Clone)]
pub struct Keys {
    seal: ChaCha20Poly1305,
    totp: ChaCha20Poly1305,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Keys {
        let seal_key = derive(secret, b"bourse/api-key-seal/v1");
        // A 32-byte key is always the right length.
        let seal = ChaCha20Poly1305::new(&seal_key.into());
        let totp = ChaCha20Poly1305::new(&derive(secret, b"bourse/totp-seal/v1").into());
        Keys { seal, totp }
    }

    /// Encrypts and authenticates an API secret: nonce (12 bytes) || ciphertext || tag.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.seal, plain)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.seal, sealed)
    }

    /// [`Keys::seal`] for a TOTP secret, under its own key.
    pub fn seal_totp(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.totp, plain)
    }

    pub fn open_totp(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.totp, sealed)
    }
}

fn seal_with(cipher: &ChaCha20Poly1305, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce = random_bytes::<12>()?;
    let sealed = cipher.encrypt(&nonce.into(), plain).map_err(|_| CryptoError::Open)?;
    let mut out = Vec::with_capacity(12 + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(cipher: &ChaCha20Poly1305, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (nonce, body) = sealed.split_at_checked(12).ok_or(CryptoError::Open)?;
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Open)?;
    cipher.decrypt(&nonce.into(), body).map_err(|_| CryptoError::Open)
}

fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = HmacSha256::new_from_slice(secret) {
        mac.update(purpose);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// argon2id with the crate's default parameters (19 MiB, 2 passes): a PHC string.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Hash(e.to_string()))
}

/// True if `password` matches the PHC string `hash`; false for any malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_reference_signature() {
        let secret = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let payload = b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        let expected = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        assert_eq!(hmac_hex(secret, payload), expected);
        assert!(hmac_verify(secret, payload, expected));
        assert!(hmac_verify(secret, payload, &expected.to_uppercase()));
        assert!(!hmac_verify(secret, b"symbol=LTCBTC", expected));
        assert!(!hmac_verify(secret, payload, "zz"));
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let keys = Keys::derive(&[7u8; 32]);
        let sealed = keys.seal(b"the secret").unwrap();
        assert_eq!(keys.open(&sealed).unwrap(), b"the secret");
        assert!(Keys::derive(&[8u8; 32]).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(keys.open(&tampered).is_err());
        assert!(keys.open(&[1, 2, 3]).is_err());
        // Each purpose has its own key.
        assert!(keys.open_totp(&sealed).is_err());
        assert_eq!(keys.open_totp(&keys.seal_totp(b"totp").unwrap()).unwrap(), b"totp");
    }

    #[test]
    fn passwords_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }
}
