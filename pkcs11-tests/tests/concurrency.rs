//! Threads: eight threads with their own sessions sign and verify at once, store token objects at once,
//! and a long key generation in one session does not hold up signing or token queries in another.

mod common;

use common::*;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const THREADS: usize = 8;

#[derive(Clone, Copy)]
enum Family {
    Ecdsa,
    Rsa,
    Eddsa,
}

impl Family {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Family::Ecdsa => Mechanism::EcdsaSha256,
            Family::Rsa => Mechanism::Sha256RsaPkcs,
            Family::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        }
    }
}

#[test]
fn eight_threads_sign_and_verify_with_their_own_sessions() {
    let (slot, session) = user_session("threads");
    // (mechanism, public, private, signatures per round); mechanisms are made per thread.
    let keys: Vec<(Family, ObjectHandle, ObjectHandle, usize)> = vec![
        {
            let (public, private) = ec_pair(&session, P256);
            (Family::Ecdsa, public, private, 60)
        },
        {
            let (public, private) = rsa_pair(&session, 2048);
            (Family::Rsa, public, private, 10)
        },
        {
            let (public, private) = ed25519_pair(&session);
            (Family::Eddsa, public, private, 60)
        },
    ];
    let keys = Arc::new(keys);
    let start = Arc::new(Barrier::new(THREADS));
    let signed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (keys, start, signed) = (keys.clone(), start.clone(), signed.clone());
            std::thread::spawn(move || {
                let own = pkcs11().open_ro_session(slot).unwrap();
                start.wait();
                for round in 0..2 {
                    for (family, public, private, count) in keys.iter() {
                        let mechanism = &family.mechanism();
                        for i in 0..*count {
                            let message = format!("thread {thread} round {round} message {i}");
                            let signature =
                                own.sign(mechanism, *private, message.as_bytes()).unwrap();
                            own.verify(mechanism, *public, message.as_bytes(), &signature)
                                .unwrap();
                            signed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a signing thread failed");
    }
    assert_eq!(signed.load(Ordering::Relaxed), THREADS * 2 * (60 + 10 + 60));
    // The session that made the keys is still logged in and usable.
    session
        .sign(&Mechanism::EcdsaSha256, keys[0].2, b"still fine")
        .unwrap();
}

#[test]
fn threads_storing_token_objects_at_once_lose_none() {
    let (slot, session) = user_session("threads-store");
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let start = start.clone();
            std::thread::spawn(move || {
                let own = pkcs11().open_rw_session(slot).unwrap();
                start.wait();
                let mut handles = Vec::new();
                for i in 0..10 {
                    let handle = own
                        .create_object(&[
                            Attribute::Class(ObjectClass::DATA),
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Label(format!("t{thread}-{i}").into_bytes()),
                            Attribute::Value(vec![thread as u8; 16]),
                        ])
                        .unwrap();
                    handles.push(handle.handle());
                    if i % 3 == 0 {
                        own.find_objects(&[Attribute::Class(ObjectClass::DATA)])
                            .unwrap();
                    }
                }
                handles
            })
        })
        .collect();
    let mut all = HashSet::new();
    for worker in workers {
        for handle in worker.join().expect("a storing thread failed") {
            assert!(all.insert(handle), "handle {handle} handed out twice");
        }
    }
    assert_eq!(all.len(), THREADS * 10);
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(true)])
        .unwrap();
    assert_eq!(found.len(), THREADS * 10);
}

#[test]
fn a_long_key_generation_does_not_block_other_sessions() {
    let (slot, session) = user_session("no-global-lock");
    let (_, signing_key) = ec_pair(&session, P256);
    let in_keygen = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (in_keygen, finished, stop) = (in_keygen.clone(), finished.clone(), stop.clone());
        std::thread::spawn(move || {
            let own = pkcs11().open_rw_session(slot).unwrap();
            while !stop.load(Ordering::SeqCst) && finished.load(Ordering::SeqCst) < 8 {
                in_keygen.store(true, Ordering::SeqCst);
                rsa_pair(&own, 4096);
                in_keygen.store(false, Ordering::SeqCst);
                finished.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let other = pkcs11().open_ro_session(slot).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut overlapped = 0;
    while overlapped < 3 && Instant::now() < deadline && !generator.is_finished() {
        let before = finished.load(Ordering::SeqCst);
        if !in_keygen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        other
            .sign(&Mechanism::EcdsaSha256, signing_key, b"meanwhile")
            .unwrap();
        pkcs11().get_token_info(slot).unwrap();
        other.get_session_info().unwrap();
        // Still inside the same generation: the calls above did not wait for it.
        if in_keygen.load(Ordering::SeqCst) && finished.load(Ordering::SeqCst) == before {
            overlapped += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    generator.join().expect("the generating thread failed");
    assert!(
        overlapped >= 3,
        "signing and token queries completed during key generation only {overlapped} times"
    );
}
