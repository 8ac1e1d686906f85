//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second
//! steps, a code of the step before or after the current one accepted too (clock drift). Which
//! step was used last is the store's business: the caller records it, so each code works once.
//! Also the recovery codes that stand in for a lost authenticator.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_S: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a secret (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;
/// Recovery codes made when two-factor authentication is turned on.
pub const RECOVERY_CODES: usize = 10;

/// The HOTP value of `counter` under `secret`.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let word = digest
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) & 0x7fff_ffff)
        .unwrap_or(0);
    word % 10u32.pow(DIGITS)
}

/// The step a Unix time (seconds) falls in.
pub fn step_of(unix_s: i64) -> i64 {
    unix_s.div_euclid(STEP_S)
}

/// The code of `step`, zero-padded.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let value = hotp(secret, u64::try_from(step).unwrap_or(0));
    format!("{value:0width$}", width = DIGITS as usize)
}

/// The step whose code `code` is, among the step of `unix_s` and the one before and after it;
/// `None` for anything else (a stale or wrong code, or not six digits). The comparison does not
/// stop at the first differing digit.
pub fn matching_step(secret: &[u8], code: &str, unix_s: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_s);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let expected = code_at(secret, step);
        let same = expected.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A secret in base32 without padding: what an authenticator app is given by hand.
pub fn secret_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        enc(issuer),
        enc(account),
        secret_base32(secret),
        enc(issuer),
    )
}

/// A recovery code from 8 random bytes: `xxxx-xxxx-xxxx-x` in lowercase base32 (64 bits).
pub fn recovery_code(random: [u8; 8]) -> String {
    let raw = data_encoding::BASE32_NOPAD.encode(&random).to_ascii_lowercase();
    let chars: Vec<char> = raw.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A typed recovery code as it is hashed: lowercase, without spaces or dashes.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the 8-digit values, taken mod 10^6).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(
                hotp(secret, u64::try_from(step_of(t)).unwrap()),
                eight % 1_000_000,
                "t={t}"
            );
            assert_eq!(code_at(secret, step_of(t)), format!("{:06}", eight % 1_000_000));
        }
    }

    #[test]
    fn rfc_4226_vectors() {
        let secret = b"12345678901234567890";
        let expected =
            [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64), value);
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = [9u8; SECRET_LEN];
        let now = 1_700_000_000;
        let step = step_of(now);
        assert_eq!(matching_step(&secret, &code_at(&secret, step), now), Some(step));
        assert_eq!(matching_step(&secret, &code_at(&secret, step - 1), now), Some(step - 1));
        assert_eq!(matching_step(&secret, &code_at(&secret, step + 1), now), Some(step + 1));
        assert_eq!(matching_step(&secret, &code_at(&secret, step - 2), now), None);
        assert_eq!(matching_step(&secret, &code_at(&secret, step + 2), now), None);
        assert_eq!(matching_step(&secret, " 12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
        assert_eq!(matching_step(&secret, "1234567", now), None);
        assert_eq!(matching_step(&secret, "", now), None);
    }

    #[test]
    fn uri_and_codes() {
        let secret = b"12345678901234567890";
        assert_eq!(secret_base32(secret), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = otpauth_uri(secret, "bourse example", "a+b@x.io");
        assert_eq!(
            uri,
            "otpauth://totp/bourse%20example:a%2Bb@x.io?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=bourse%20example&algorithm=SHA1&digits=6&period=30"
        );
        let code = recovery_code([0xff; 8]);
        assert_eq!(code.len(), 16);
        assert_eq!(normalize_recovery_code(&code.to_uppercase()), code.replace('-', ""));
    }
}
