//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second steps.
//!
//! The HMAC comes from `aws-lc-rs`; this module only does the RFC's counter encoding, dynamic truncation
//! and base32 text form. Verification accepts one step of clock drift either way and returns the step that
//! matched, so callers can refuse a code that was already used (replay).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

pub const SECRET_LEN: usize = 20;
pub const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The code for time step `step` (= unix time / 30).
pub fn code_for_step(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
    let tag = hmac::sign(&key, &counter);
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

pub fn step_at(unix_time: i64) -> i64 {
    unix_time.div_euclid(STEP_SECONDS)
}

/// The code valid at `unix_time`.
pub fn code_at(secret: &[u8], unix_time: i64) -> String {
    code_for_step(secret, step_at(unix_time))
}

/// The matching step within ±1 of `unix_time`, compared in constant time.
pub fn verify(secret: &[u8], code: &str, unix_time: i64) -> Option<i64> {
    let now = step_at(unix_time);
    let mut matched = None;
    for step in [now - 1, now, now + 1] {
        let expected = Zeroizing::new(code_for_step(secret, step));
        if verify_slices_are_equal(expected.as_bytes(), code.trim().as_bytes()).is_ok() {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn encode_base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for ch in text.trim_end_matches('=').bytes() {
        let value = BASE32.iter().position(|&c| c == ch.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1 column (the 8-digit values' last 6 digits).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
        assert_eq!(code_at(secret, 1_234_567_890), "005924");
        assert_eq!(code_at(secret, 20_000_000_000), "353130");
    }

    #[test]
    fn verify_accepts_one_step_of_drift_only() {
        let secret = b"12345678901234567890";
        let code = code_at(secret, 1_111_111_109);
        assert_eq!(
            verify(secret, &code, 1_111_111_109 + 30),
            Some(step_at(1_111_111_109))
        );
        assert_eq!(verify(secret, &code, 1_111_111_109 + 95), None);
        assert_eq!(verify(secret, "000000", 1_111_111_109), None);
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(encode_base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(decode_base32("MZXW6YTBOI").expect("decode"), b"foobar");
        let secret = [7u8; SECRET_LEN];
        assert_eq!(
            decode_base32(&encode_base32(&secret)).expect("decode"),
            secret
        );
    }
}
