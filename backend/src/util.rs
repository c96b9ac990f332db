//! Small shared helpers: the clock, random identifiers and secrets, hex, and IP truncation.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Result, ServiceError};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ServiceError::Crypto("random number generator"))?;
    Ok(bytes)
}

/// A new opaque id such as `key_3f9c0a...` (16 random hex digits after the prefix).
pub fn new_id(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}_{}", hex(&random_bytes::<8>()?)))
}

/// 32 random bytes as base64url without padding (43 characters), zeroized on drop.
pub fn new_secret() -> Result<Zeroizing<String>> {
    let bytes = Zeroizing::new(random_bytes::<32>()?);
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The client address with its host part removed (IPv4 /24, IPv6 /48), for audit records.
pub fn truncate_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return truncate_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Matches `text` against a pattern where `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let last = rest[rest.len() - 1];
    for middle in &rest[..rest.len() - 1] {
        match remaining.find(middle) {
            Some(pos) => remaining = &remaining[pos + middle.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("release-*", "release-2026"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match("release-*", "dev-1"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn ip_truncation() {
        assert_eq!(
            truncate_ip("192.0.2.77".parse().expect("ip")),
            "192.0.2.0/24"
        );
        assert_eq!(
            truncate_ip("2001:db8:1:2::5".parse().expect("ip")),
            "2001:db8:1::/48"
        );
    }
}
