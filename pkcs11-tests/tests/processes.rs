//! Processes sharing a token (the helper program `token-child` is the second process): keys made in
//! one are found and used by the other, both write at once without losing objects, and a process
//! killed with SIGKILL while generating keys (or changing the PIN) leaves a store that opens and
//! holds every key it reported as committed (and one of the two PINs).

mod common;

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn child(args: &[&str]) -> Command {
    configure();
    let mut command = Command::new(env!("CARGO_BIN_EXE_token-child"));
    command
        .args(args)
        .env("CRYPTERA_PKCS11_MODULE", module_path())
        .env("CRYPTERA_PKCS11_CONFIG", configure());
    command
}

fn run_child(args: &[&str]) -> String {
    let output = child(args).output().expect("run token-child");
    assert!(
        output.status.success(),
        "token-child {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn spawn_generator(slot: Slot, prefix: &str, count: u32) -> Child {
    child(&[
        "generate",
        &slot.id().to_string(),
        USER_PIN,
        prefix,
        &count.to_string(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn token-child")
}

/// The key pair labelled `label`, checked by signing with it.
fn assert_key_pair(session: &Session, label: &str) {
    let one = |class| {
        let found = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1, "{class:?} labelled {label}");
        found[0]
    };
    let private = one(ObjectClass::PRIVATE_KEY);
    let public = one(ObjectClass::PUBLIC_KEY);
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, label.as_bytes())
        .unwrap();
    session
        .verify(
            &Mechanism::EcdsaSha256,
            public,
            label.as_bytes(),
            &signature,
        )
        .unwrap();
}

#[test]
fn a_key_made_in_one_process_is_found_in_the_other() {
    let (slot, session) = user_session("two-processes");
    // This process already looked at the token, so it must notice the other's change.
    assert!(session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap()
        .is_empty());
    let out = run_child(&["generate", &slot.id().to_string(), USER_PIN, "child", "1"]);
    assert_eq!(out.trim(), "committed child-0");
    assert_key_pair(&session, "child-0");

    // Wrong PINs count for the token, whichever process enters them.
    let output = child(&["find", &slot.id().to_string(), "wrong-pin", "child-0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(pkcs11().get_token_info(slot).unwrap().user_pin_count_low());
    run_child(&["find", &slot.id().to_string(), USER_PIN, "child-0"]);
    assert!(!pkcs11().get_token_info(slot).unwrap().user_pin_count_low());

    key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(P256.to_vec()),
            Attribute::Token(true),
            Attribute::Label(b"parent".to_vec()),
        ],
        &[Attribute::Token(true), Attribute::Label(b"parent".to_vec())],
    );
    let out = run_child(&["find", &slot.id().to_string(), USER_PIN, "parent"]);
    assert_eq!(out.trim(), "found parent");

    // A key destroyed here is gone for the other process.
    let parent_keys = session
        .find_objects(&[Attribute::Label(b"parent".to_vec())])
        .unwrap();
    for key in parent_keys {
        session.destroy_object(key).unwrap();
    }
    let output = child(&["find", &slot.id().to_string(), USER_PIN, "parent"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    let (slot, session) = user_session("both-write");
    let mut generator = spawn_generator(slot, "theirs", 15);
    for n in 0..30 {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Label(format!("ours-{n}").into_bytes()),
            ])
            .unwrap();
    }
    assert!(generator.wait().unwrap().success());
    for n in 0..15 {
        assert_key_pair(&session, &format!("theirs-{n}"));
    }
    let ours = session
        .find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(true)])
        .unwrap();
    assert_eq!(ours.len(), 30);
}

#[test]
fn a_process_killed_while_generating_keys_leaves_every_committed_key() {
    let (slot, session) = user_session("sigkill");
    let mut committed = Vec::new();
    for (round, kill_after) in [3usize, 7, 12].into_iter().enumerate() {
        let prefix = format!("round{round}");
        let mut generator = spawn_generator(slot, &prefix, 10_000);
        let mut lines = BufReader::new(generator.stdout.take().unwrap()).lines();
        for _ in 0..kill_after {
            let line = lines.next().expect("the child stopped early").unwrap();
            committed.push(line);
        }
        // SIGKILL mid-run: the child is generating or storing its next key right now.
        generator.kill().unwrap();
        generator.wait().unwrap();
        // Lines already written were written after their commit, so they count too.
        committed.extend(lines.map_while(Result::ok));
    }
    assert!(committed.len() >= 3 + 7 + 12);
    // The store opens in this process and in a fresh one, and holds every committed key.
    let labels: Vec<&str> = committed
        .iter()
        .map(|line| line.strip_prefix("committed ").expect("committed <label>"))
        .collect();
    for label in &labels {
        assert_key_pair(&session, label);
    }
    let fresh = pkcs11().open_ro_session(slot).unwrap();
    for label in &labels {
        assert_key_pair(&fresh, label);
    }
    let last = labels.last().unwrap();
    assert_eq!(
        run_child(&["find", &slot.id().to_string(), USER_PIN, last]).trim(),
        format!("found {last}")
    );
    // And it still takes new keys.
    let out = run_child(&["generate", &slot.id().to_string(), USER_PIN, "after", "2"]);
    assert_eq!(out.lines().count(), 2);
    assert_key_pair(&session, "after-1");
}

#[test]
fn a_process_killed_while_changing_the_pin_leaves_one_of_the_two_pins() {
    let (slot, session) = user_session("sigkill-pin");
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(b"pin-survivor".to_vec()),
            Attribute::Value(b"survives PIN changes".to_vec()),
        ])
        .unwrap();
    session.logout().unwrap();
    let (first, second) = ("pin-one-1111", "pin-two-2222");
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    session.set_pin(&pin(USER_PIN), &pin(first)).unwrap();
    session.logout().unwrap();
    let mut changer = child(&["setpin", &slot.id().to_string(), first, second, "10000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(changer.stdout.take().unwrap()).lines();
    let mut last = first.to_string();
    for _ in 0..9 {
        last = lines.next().expect("the child stopped early").unwrap();
    }
    changer.kill().unwrap();
    changer.wait().unwrap();
    if let Some(Ok(line)) = lines.last() {
        last = line;
    }
    let last = last.strip_prefix("pin ").unwrap_or(&last).to_string();
    // The last PIN it reported, or the one it was changing to when killed.
    let other = if last == first { second } else { first };
    if session.login(UserType::User, Some(&pin(&last))).is_err() {
        session.login(UserType::User, Some(&pin(other))).unwrap();
    }
    // Handles to private objects end with a logout: find it again.
    let note = session
        .find_objects(&[Attribute::Label(b"pin-survivor".to_vec())])
        .unwrap()[0];
    assert_eq!(
        bytes_attr(&session, note, AttributeType::Value),
        b"survives PIN changes"
    );
}

#[test]
fn a_token_initialised_by_another_process_appears_here() {
    let context = pkcs11();
    let _turn = free_slot_turn();
    let free = free_slot(context);
    let before: Vec<u64> = context
        .get_all_slots()
        .unwrap()
        .iter()
        .map(|s| s.id())
        .collect();
    let out = run_child(&[
        "init",
        &free.id().to_string(),
        SO_PIN,
        "from-child",
        USER_PIN,
    ]);
    assert_eq!(out.trim(), "initialised from-child");
    let info = context.get_token_info(free).unwrap();
    assert!(info.token_initialized() && info.user_pin_initialized());
    assert_eq!(info.label(), "from-child");
    // This process now offers a new free slot, and uses the token.
    let after: Vec<u64> = context
        .get_all_slots()
        .unwrap()
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(after.len(), before.len() + 1);
    let new_free = free_slot(context);
    assert_ne!(new_free, free);
    let session = context.open_rw_session(free).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(P256.to_vec()),
            Attribute::Token(true),
            Attribute::Label(b"here".to_vec()),
        ],
        &[Attribute::Token(true), Attribute::Label(b"here".to_vec())],
    );
    assert_eq!(
        run_child(&["find", &free.id().to_string(), USER_PIN, "here"]).trim(),
        "found here"
    );
}
