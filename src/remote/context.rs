//! Who asks for a remote signature: host, operating-system user, program and CI job, sent with every
//! signing request so the service's signing record (and an approver) can tell where it came from.

use cryptera_proto::sign::{ArtifactMetadata, ClientContext, MAX_CI_ENTRIES, MAX_METADATA_LEN};
use std::collections::BTreeMap;

/// Environment variables that identify a CI job, for the CI systems in common use.
const CI_VARIABLES: [&str; 16] = [
    "GITHUB_REPOSITORY",
    "GITHUB_WORKFLOW",
    "GITHUB_RUN_ID",
    "GITHUB_SHA",
    "CI_PROJECT_PATH",
    "CI_PIPELINE_ID",
    "CI_JOB_ID",
    "CI_COMMIT_SHA",
    "JOB_NAME",
    "BUILD_NUMBER",
    "BUILD_BUILDID",
    "SYSTEM_TEAMPROJECT",
    "CIRCLE_PROJECT_REPONAME",
    "CIRCLE_BUILD_NUM",
    "BUILDKITE_PIPELINE_SLUG",
    "BUILDKITE_BUILD_NUMBER",
];

/// Environment variables a build script may set to name and describe what it signs; PKCS#11 itself
/// has no place for them.
pub const ARTIFACT_NAME_VARIABLE: &str = "CRYPTERA_ARTIFACT_NAME";
pub const ARTIFACT_DESCRIPTION_VARIABLE: &str = "CRYPTERA_ARTIFACT_DESCRIPTION";

fn bounded(mut text: String) -> String {
    if text.len() > MAX_METADATA_LEN {
        let mut end = MAX_METADATA_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(bounded)
}

/// The kernel's host name, read from /proc (no C library call outside the ABI layer).
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| variable("HOSTNAME"))
        .map(bounded)
}

fn os_user() -> Option<String> {
    variable("USER")
        .or_else(|| variable("LOGNAME"))
        .or_else(users_name_of_uid)
}

/// The name of the effective user from `/etc/passwd`, for processes started without `USER`.
fn users_name_of_uid() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
        })
        .or(Some(format!("uid {uid}")))
}

/// The context of this process, read once per process: after `fork()` the pid differs and it is read
/// again (the child may be another program after `exec`, but then the module is loaded anew).
pub fn client_context() -> ClientContext {
    static CACHED: std::sync::Mutex<Option<ClientContext>> = std::sync::Mutex::new(None);
    let pid = std::process::id();
    let Ok(mut cached) = CACHED.lock() else {
        return read_context();
    };
    match cached.as_ref() {
        Some(context) if context.pid == Some(pid) => context.clone(),
        _ => {
            let context = read_context();
            *cached = Some(context.clone());
            context
        }
    }
}

fn read_context() -> ClientContext {
    let ci: BTreeMap<String, String> = CI_VARIABLES
        .iter()
        .filter_map(|name| variable(name).map(|value| (name.to_string(), value)))
        .take(MAX_CI_ENTRIES)
        .collect();
    ClientContext {
        host: host_name(),
        os_user: os_user(),
        program: std::env::current_exe()
            .ok()
            .map(|p| bounded(p.display().to_string())),
        pid: Some(std::process::id()),
        ci,
    }
}

/// The artifact metadata of a signing request: what the environment names, and who asks.
pub fn artifact() -> ArtifactMetadata {
    ArtifactMetadata {
        name: variable(ARTIFACT_NAME_VARIABLE),
        hash: None,
        description: variable(ARTIFACT_DESCRIPTION_VARIABLE),
        client: Some(client_context()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_this_process() {
        let context = client_context();
        assert_eq!(context.pid, Some(std::process::id()));
        assert!(context.program.is_some());
        assert!(context.host.is_some_and(|h| !h.is_empty()));
        assert!(context.os_user.is_some());
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_METADATA_LEN);
        let cut = bounded(text);
        assert!(cut.len() <= MAX_METADATA_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
