//! Verification of an audit file: every record's own hash, the chain from record to record, the
//! numbering, and the head kept beside the file (which catches a cut-off tail). Also a summary of
//! what was signed, per key and per program.

use super::chain::{self, GENESIS};
use super::jsonl::head_path;
use std::collections::BTreeMap;
use std::path::Path;

/// The outcome of verifying a file.
#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    /// The first problem found, with the 1-based line number it concerns.
    pub first_error: Option<(u64, String)>,
    pub warnings: Vec<String>,
    pub signatures_per_key: BTreeMap<String, u64>,
    pub signatures_per_program: BTreeMap<String, u64>,
    pub failures: u64,
}

pub fn verify(path: &Path) -> std::io::Result<Report> {
    let text = std::fs::read_to_string(path)?;
    let mut report = Report::default();
    let mut prev = GENESIS.to_string();
    let mut last: Option<(u64, String)> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index as u64 + 1;
        let fail = |report: &mut Report, why: String| {
            if report.first_error.is_none() {
                report.first_error = Some((number, why));
            }
        };
        let Some(line) = line.strip_suffix('\n') else {
            fail(&mut report, "incomplete last line".into());
            break;
        };
        let (record, hash) = match chain::open(line) {
            Ok(opened) => opened,
            Err(chain::LineError::Malformed) => {
                fail(&mut report, "not an audit record".into());
                break;
            }
            Err(chain::LineError::HashMismatch) => {
                fail(
                    &mut report,
                    "record was edited (its hash does not match)".into(),
                );
                break;
            }
        };
        let expected_seq = report.records + 1;
        if record.seq != expected_seq {
            fail(
                &mut report,
                format!(
                    "sequence number {} where {} was expected (records removed or reordered)",
                    record.seq, expected_seq
                ),
            );
            break;
        }
        if record.prev != prev {
            fail(
                &mut report,
                "does not chain from the record before it (records removed, inserted or reordered)"
                    .into(),
            );
            break;
        }
        report.records += 1;
        if record.event == "sign" {
            if record.rv == "CKR_OK" {
                let key = format!(
                    "{} / {}",
                    record.token.as_deref().unwrap_or("?"),
                    record
                        .key_label
                        .as_deref()
                        .or(record.key_id.as_deref())
                        .unwrap_or("?")
                );
                *report.signatures_per_key.entry(key).or_default() += 1;
                *report
                    .signatures_per_program
                    .entry(record.exe.clone())
                    .or_default() += 1;
            } else {
                report.failures += 1;
            }
        }
        prev = hash.clone();
        last = Some((record.seq, hash));
    }
    if report.first_error.is_none() {
        check_head(path, last, &mut report);
    }
    Ok(report)
}

fn check_head(path: &Path, last: Option<(u64, String)>, report: &mut Report) {
    let head = std::fs::read_to_string(head_path(path))
        .ok()
        .and_then(|t| chain::parse_head(&t));
    match (head, last) {
        (None, None) => {}
        (None, Some(_)) => report
            .warnings
            .push("no head file beside the audit file: a cut-off tail cannot be detected".into()),
        (Some((seq, _)), None) => {
            report.first_error = Some((
                seq,
                format!("the file is empty but {seq} records were written (truncated)"),
            ))
        }
        (Some((seq, hash)), Some((last_seq, last_hash))) => {
            if seq > last_seq {
                report.first_error = Some((
                    last_seq + 1,
                    format!(
                        "records {}..={seq} are missing at the end (truncated)",
                        last_seq + 1
                    ),
                ));
            } else if seq == last_seq && hash != last_hash {
                report.first_error = Some((
                    last_seq,
                    "the last record differs from the recorded head".into(),
                ));
            } else if seq < last_seq {
                report.warnings.push(format!(
                    "the head file names record {seq} of {last_seq}: a writer stopped between appending and updating the head"
                ));
            }
        }
    }
}
