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
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    // 32 bytes at a time through a stack buffer: one append per chunk instead of two per byte.
    for chunk in bytes.chunks(32) {
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out.push_str(std::str::from_utf8(&text[..2 * chunk.len()]).unwrap_or_default());
    }
}

fn sha256_hex(text: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text).as_ref())
}

const HASH_FIELD: &str = ",\"hash\":\"";

/// The line for `record` (no newline) and its hash.
pub fn seal(record: &Record) -> (String, String) {
    let mut line = String::with_capacity(512);
    let hash = seal_into(&mut line, record);
    (line, hash)
}

/// Appends the line for `record` (no newline) to `out` and returns its hash. The JSON is written
/// directly, byte for byte what `serde_json` makes of a `Record` (a test holds them equal), without the
/// intermediate strings: the audit writer seals every record of a busy signer.
pub fn seal_into(out: &mut String, record: &Record) -> String {
    let mut hash = String::with_capacity(64);
    seal_into_hash(out, record, &mut hash);
    hash
}

/// [`seal_into`] with the hash written into `hash` (cleared first), whose buffer a writer reuses.
pub fn seal_into_hash(out: &mut String, record: &Record, hash: &mut String) {
    let start = out.len();
    out.push_str("{\"v\":");
    push_number(out, u64::from(record.v));
    out.push_str(",\"seq\":");
    push_number(out, record.seq);
    field(out, "prev", &record.prev);
    field(out, "time", &record.time);
    field(out, "event", &record.event);
    field(out, "rv", &record.rv);
    out.push_str(",\"pid\":");
    push_number(out, u64::from(record.pid));
    field(out, "exe", &record.exe);
    field(out, "user", &record.user);
    out.push_str(",\"uid\":");
    push_number(out, u64::from(record.uid));
    if let Some(slot) = record.slot {
        out.push_str(",\"slot\":");
        push_number(out, slot);
    }
    let optional = [
        ("token", &record.token),
        ("key_id", &record.key_id),
        ("key_label", &record.key_label),
        ("mechanism", &record.mechanism),
        ("data_sha256", &record.data_sha256),
        ("user_type", &record.user_type),
        ("request_id", &record.request_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            field(out, name, value);
        }
    }
    hash.clear();
    push_hex(
        hash,
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &out.as_bytes()[start..]).as_ref(),
    );
    out.push_str(HASH_FIELD);
    out.push_str(hash);
    out.push_str("\"}");
}

fn push_number(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// `,"name":"value"` with JSON string escaping.
fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    // Without an early exit, so that the check runs over many bytes at a time.
    let needs_escaping = value.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escaping {
        // Rare (labels with quotes or control characters): serde_json's escaping.
        out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into()));
    } else {
        out.push('"');
        out.push_str(value);
        out.push('"');
    }
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
/// The head file's content: always the same length (the sequence number zero-padded to 20 digits,
/// the widest `u64`), so that rewriting it in place leaves nothing of the previous one behind.
pub fn head_line(seq: u64, hash: &str) -> String {
    format!("{seq:020} {hash}\n")
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

    #[test]
    fn the_direct_writer_writes_what_serde_json_writes() {
        let full = Record {
            v: 1,
            seq: u64::MAX,
            prev: GENESIS.into(),
            time: "2026-11-27T03:00:00.000001Z".into(),
            event: "sign".into(),
            rv: "CKR_OK".into(),
            pid: 4242,
            exe: "/usr/bin/osslsigncode".into(),
            user: "build\"er\\x\u{1}\n é ✓".into(),
            uid: 1000,
            slot: Some(10),
            token: Some("acme/development".into()),
            key_id: Some("0a0b".into()),
            key_label: Some("label \"quoted\"\t".into()),
            mechanism: Some("CKM_EDDSA".into()),
            data_sha256: Some("00".repeat(32)),
            user_type: Some("user".into()),
            request_id: Some("req_1".into()),
        };
        for record in [full, Record::default()] {
            let mut line = String::new();
            let hash = seal_into(&mut line, &record);
            let serde = serde_json::to_string(&record).expect("serialise");
            let prefix = &serde[..serde.len() - 1];
            assert_eq!(line, format!("{prefix}{HASH_FIELD}{hash}\"}}"));
            assert_eq!(hash, sha256_hex(prefix.as_bytes()));
            assert_eq!(open(&line).expect("opens").0, record);
        }
    }

    #[test]
    fn edits_are_still_caught() {
        let record = Record {
            event: "sign".into(),
            ..Default::default()
        };
        let (line, _) = seal(&record);
        let edited = line.replace("\"sign\"", "\"sigm\"");
        assert_eq!(open(&edited).err(), Some(LineError::HashMismatch));
        assert_eq!(open("{}").err(), Some(LineError::Malformed));
    }
}
