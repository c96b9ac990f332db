//! The JSON-lines sink: appends records to one file that several processes share. Each append takes
//! an exclusive lock on the file, continues the chain from the file's last record (or the head file
//! if the file lost its tail), writes all pending lines in one `write`, and updates the head file.

use super::chain::{self, Record, GENESIS};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct JsonlFile {
    path: PathBuf,
    head: PathBuf,
    /// After this process's last append: the file's length and the chain's end. When the file still has
    /// that length at the next append, no other process wrote in between and the end is known without
    /// reading the file.
    last: std::sync::Mutex<Option<(u64, u64, String)>>,
    /// Flush each append to the disk before returning (mandatory audit). Without it, appended records
    /// survive a crash of the process (they are in the kernel's cache) but not a power cut.
    durable: bool,
}

/// The head file that goes with an audit file.
pub fn head_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".head");
    path.with_file_name(name)
}

/// The last complete record of the file: (sequence number, hash).
fn tail(file: &mut File) -> std::io::Result<Option<(u64, String)>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let last = text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or_default();
    Ok(chain::open(last)
        .ok()
        .map(|(record, hash)| (record.seq, hash)))
}

impl JsonlFile {
    pub fn new(path: PathBuf, durable: bool) -> JsonlFile {
        let head = head_path(&path);
        JsonlFile {
            path,
            head,
            last: std::sync::Mutex::new(None),
            durable,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `records`, numbering and chaining them; all or nothing as far as the file system allows.
    pub fn append(&self, records: &mut [Record]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            // Usually the store directory: owner-only, as the token files' own code makes it.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path)?;
        file.lock()?;
        let outcome = self.append_locked(&mut file, records);
        let unlocked = file.unlock();
        outcome.and(unlocked)
    }

    fn append_locked(&self, file: &mut File, records: &mut [Record]) -> std::io::Result<()> {
        let length = file.metadata()?.len();
        let known = self.last.lock().ok().and_then(|last| last.clone());
        let (mut seq, mut prev) = match known {
            Some((known_length, seq, hash)) if known_length == length => (seq, hash),
            _ => {
                let from_head = std::fs::read_to_string(&self.head)
                    .ok()
                    .and_then(|t| chain::parse_head(&t));
                match (tail(file)?, from_head) {
                    (Some(f), Some(h)) if h.0 > f.0 => h,
                    (Some(f), _) => f,
                    (None, Some(h)) => h,
                    (None, None) => (0, GENESIS.to_string()),
                }
            }
        };
        let mut text = String::with_capacity(records.len() * 512);
        let mut hash = String::with_capacity(64);
        for record in records.iter_mut() {
            seq += 1;
            record.seq = seq;
            record.prev.clear();
            record.prev.push_str(&prev);
            chain::seal_into_hash(&mut text, record, &mut hash);
            std::mem::swap(&mut prev, &mut hash);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        if self.durable {
            file.sync_data()?;
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Some((length + text.len() as u64, seq, prev.clone()));
        }
        // The head is rewritten in place, under the audit file's lock: one `pwrite` of a fixed-length
        // line at offset 0 (no temporary file, no rename: the rename alone cost a busy writer more
        // than all its records' hashing). A head left torn by a power cut does not parse and the next
        // append continues from the file's tail instead.
        let mut options = OpenOptions::new();
        options.write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let head = options.open(&self.head)?;
        let line = chain::head_line(seq, &prev);
        #[cfg(unix)]
        std::os::unix::fs::FileExt::write_all_at(&head, line.as_bytes(), 0)?;
        #[cfg(not(unix))]
        (&head).write_all(line.as_bytes())?;
        Ok(())
    }
}
