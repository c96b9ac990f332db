//! The audit file's format: one JSON object per line, each carrying its sequence number, the hash of
//! the record before it and its own hash, so that editing, removing, reordering or truncating records
//! is detected (see docs/audit-format.md). Shared by the writer and the verifier.

use serde::{Deserialize, Serialize};

/// The hash the first record of a file chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record as written (without its trailing `hash`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    pub prev: String,
    pub time: String,
    pub event: String,
    pub rv: String,
    pub pid: u32,
    pub exe: String,
    pub user: String,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

fn sha256_hex(text: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text).as_ref())
}

const HASH_FIELD: &str = ",\"hash\":\"";

/// The line for `record` (no newline) and its hash.
pub fn seal(record: &Record) -> (String, String) {
    let body = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    let open = &body[..body.len().saturating_sub(1)];
    let hash = sha256_hex(open.as_bytes());
    (format!("{open}{HASH_FIELD}{hash}\"}}"), hash)
}

/// Why a line fails verification.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    Malformed,
    HashMismatch,
}

/// Parses a line and checks its own hash; returns the record and its hash.
pub fn open(line: &str) -> Result<(Record, String), LineError> {
    let suffix_len = HASH_FIELD.len() + 64 + 2;
    if line.len() < suffix_len || !line.ends_with("\"}") {
        return Err(LineError::Malformed);
    }
    let (prefix, suffix) = line.split_at(line.len() - suffix_len);
    let hash = suffix
        .strip_prefix(HASH_FIELD)
        .and_then(|s| s.strip_suffix("\"}"))
        .ok_or(LineError::Malformed)?;
    let record: Record = serde_json::from_str(line).map_err(|_| LineError::Malformed)?;
    if sha256_hex(prefix.as_bytes()) != hash {
        return Err(LineError::HashMismatch);
    }
    Ok((record, hash.to_string()))
}

/// The chain head kept beside the file: the last record's sequence number and hash.
pub fn head_line(seq: u64, hash: &str) -> String {
    format!("{seq} {hash}\n")
}

pub fn parse_head(text: &str) -> Option<(u64, String)> {
    let mut parts = text.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let hash = parts.next()?.to_string();
    (hash.len() == 64).then_some((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_lines_open_and_detect_edits() {
        let record = Record {
            v: 1,
            seq: 1,
            prev: GENESIS.into(),
            event: "sign".into(),
            ..Default::default()
        };
        let (line, hash) = seal(&record);
        let (back, back_hash) = open(&line).expect("valid");
        assert_eq!(back, record);
        assert_eq!(back_hash, hash);
        let edited = line.replace("\"sign\"", "\"sigm\"");
        assert_eq!(open(&edited).err(), Some(LineError::HashMismatch));
        assert_eq!(open("{}").err(), Some(LineError::Malformed));
    }
}
