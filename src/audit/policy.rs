//! The policy hook: an external command asked before each signing operation. It reads the event as
//! JSON on its standard input and answers with its exit status: 0 allows, anything else rejects. No
//! answer within the timeout, a crash, or a command that cannot start all reject: the hook fails
//! closed.

use std::io::{Seek, Write};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

pub struct Policy {
    command: Vec<String>,
    timeout: Duration,
}

impl Policy {
    pub fn new(command: Vec<String>, timeout: Duration) -> Policy {
        Policy { command, timeout }
    }

    /// Whether the command allows the operation described by `event_json`.
    pub fn allows(&self, event_json: &str) -> bool {
        let Some((program, args)) = self.command.split_first() else {
            return false;
        };
        // The event reaches the command through an unlinked temporary file, not a pipe: writing to a
        // pipe whose reader exited would raise SIGPIPE in the host program, which a module must not
        // do to its host.
        let Ok(mut input) = tempfile::tempfile() else {
            return false;
        };
        if input.write_all(event_json.as_bytes()).is_err() || input.rewind().is_err() {
            return false;
        }
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::from(input))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            return false;
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }
}
