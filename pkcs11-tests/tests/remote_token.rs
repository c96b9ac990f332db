//! The remote token through the cryptoki crate, against the real Cryptera service started here on
//! 127.0.0.1 (`cryptera-backend serve`, a fresh SQLite database): the checks the local-token tests
//! make, where a remote token behaves the same, and what it rightly refuses (extracting keys, local
//! token objects, mechanisms the service does not sign with).
//!
//! Slot 10 stays logged in for the tests that sign; slot 11 (the same service) is the one the login
//! test logs in and out of, so the tests can run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

struct Service {
    child: Child,
    token: String,
    context: Pkcs11,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `cryptera-backend`, built by `cargo test --workspace` beside this test's binary.
fn backend_path() -> PathBuf {
    let path = std::env::var_os("CRYPTERA_BACKEND")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("cryptera-backend")
        });
    assert!(
        path.is_file(),
        "{} does not exist: build it with `cargo build --release -p cryptera-backend` or set \
         CRYPTERA_BACKEND",
        path.display()
    );
    path
}

fn backend(data: &Path, args: &[&str]) -> String {
    let output = Command::new(backend_path())
        .args(args)
        .env("CRYPTERA_DATA_DIR", data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cryptera-backend {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

/// The service with keys `release-rsa`, `release-ec`, `release-ed` and `release-p384`, an access
/// token for them, and the module loaded with slots 10 and 11 on it (slot 10 logged in).
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let dir = common::scratch("remote");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("service");
        backend(&data, &["init"]);
        backend(&data, &["org", "create", "--name", "acme"]);
        for (label, algorithm) in [
            ("release-rsa", "rsa2048"),
            ("release-ec", "ecdsa_p256"),
            ("release-p384", "ecdsa_p384"),
            ("release-ed", "ed25519"),
        ] {
            backend(
                &data,
                &[
                    "key",
                    "create",
                    "--org",
                    "acme",
                    "--label",
                    label,
                    "--algorithm",
                    algorithm,
                    "--environment",
                    "development",
                ],
            );
        }
        let token = backend(
            &data,
            &[
                "token",
                "create",
                "--org",
                "acme",
                "--name",
                "tests",
                "--operation",
                "sign",
                "--operation",
                "read",
                "--operation",
                "keygen",
                "--key-pattern",
                "release-*",
                "--environment",
                "development",
                "--expires-in-days",
                "1",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(backend_path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("CRYPTERA_DATA_DIR", &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !healthy(port) {
            assert!(
                started.elapsed().as_secs() < 20,
                "the service did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let config = dir.join("module.toml");
        let mut text = format!(
            "store_dir = {:?}\n",
            dir.join("store").display().to_string()
        );
        // Slot 10 has a configured label; slot 11 shows the organisation and environment.
        for (slot, label) in [(10, "label = \"acme release\"\n"), (11, "")] {
            text.push_str(&format!(
                "[[remote]]\nslot = {slot}\nurl = \"http://127.0.0.1:{port}\"\n{label}\
                 timeout_ms = 5000\nquiet = true\n"
            ));
        }
        std::fs::write(&config, text).unwrap();
        std::env::set_var("CRYPTERA_PKCS11_CONFIG", &config);
        let context = Pkcs11::new(common::module_path()).unwrap();
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let service = Service {
            child,
            token,
            context,
        };
        let session = service
            .context
            .open_rw_session(find_slot_in(&service.context, 10))
            .unwrap();
        session
            .login(
                UserType::User,
                Some(&AuthPin::new(service.token.clone().into())),
            )
            .unwrap();
        // The login holds for the token while any session is open: keep this one.
        std::mem::forget(session);
        service
    })
}

fn session() -> Session {
    let service = service();
    service.context.open_rw_session(find_slot(10)).unwrap()
}

fn find_slot(id: u64) -> Slot {
    find_slot_in(&service().context, id)
}

fn find_slot_in(context: &Pkcs11, id: u64) -> Slot {
    context
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| s.id() == id)
        .unwrap()
}

fn key(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])
        .unwrap();
    assert_eq!(found.len(), 1, "{label} {class:?}");
    found[0]
}

fn rv(result: Result<impl std::fmt::Debug, Error>) -> RvError {
    match result {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn slots_show_the_service_and_only_its_mechanisms() {
    let service = service();
    let slot = find_slot(10);
    let info = service.context.get_token_info(slot).unwrap();
    // A configured label stays the same after login.
    assert_eq!(info.label(), "acme release");
    assert!(info.login_required() && info.token_initialized());
    let mechanisms = service.context.get_mechanism_list(slot).unwrap();
    for wanted in [
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::ECDSA,
        MechanismType::EDDSA,
        MechanismType::ECC_KEY_PAIR_GEN,
    ] {
        assert!(mechanisms.contains(&wanted), "{wanted}");
    }
    assert!(!mechanisms.contains(&MechanismType::SHA1_RSA_PKCS));
    assert!(!mechanisms.contains(&MechanismType::ECDSA_SHA1));
}

#[test]
fn login_takes_the_access_token_as_the_pin() {
    let service = service();
    let session = service.context.open_rw_session(find_slot(11)).unwrap();
    // Before login, no private key is visible.
    let private = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert!(private.is_empty());
    let wrong = AuthPin::new("cryptera_at_tok_0000000000000000_wrong".into());
    assert_eq!(
        rv(session.login(UserType::User, Some(&wrong))),
        RvError::PinIncorrect
    );
    assert_eq!(
        rv(session.login(UserType::So, Some(&wrong))),
        RvError::FunctionNotSupported
    );
    let right = AuthPin::new(service.token.clone().into());
    session.login(UserType::User, Some(&right)).unwrap();
    // Without a configured label, the login tells the organisation and environment; it stays.
    let label = || {
        service
            .context
            .get_token_info(find_slot(11))
            .unwrap()
            .label()
            .to_string()
    };
    assert_eq!(label(), "acme/development");
    assert_eq!(
        rv(session.login(UserType::User, Some(&right))),
        RvError::UserAlreadyLoggedIn
    );
    let private = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    // The four made at set-up (another test may be generating one more meanwhile).
    assert!(private.len() >= 4, "{private:?}");
    session.logout().unwrap();
    assert_eq!(label(), "acme/development");
    assert_eq!(rv(session.logout()), RvError::UserNotLoggedIn);
    // Handles of private objects are not valid after logout.
    assert!(session
        .get_attributes(private[0], &[AttributeType::Label])
        .is_err());
}

#[test]
fn keys_are_sensitive_pairs_sharing_their_id() {
    let session = session();
    for label in ["release-rsa", "release-ec", "release-ed", "release-p384"] {
        let private = key(&session, ObjectClass::PRIVATE_KEY, label);
        let public = key(&session, ObjectClass::PUBLIC_KEY, label);
        let attrs = session
            .get_attributes(
                private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Id,
                ],
            )
            .unwrap();
        assert!(attrs.contains(&Attribute::Sensitive(true)), "{label}");
        assert!(attrs.contains(&Attribute::Extractable(false)), "{label}");
        let public_id = session
            .get_attributes(public, &[AttributeType::Id])
            .unwrap();
        assert_eq!(attrs[2], public_id[0], "{label}: one CKA_ID for the pair");
        // The private value never leaves the service: the attribute is sensitive.
        let value = session
            .get_attributes(private, &[AttributeType::Value])
            .unwrap();
        assert!(value.is_empty(), "{label}: {value:?}");
        // Remote keys cannot be destroyed through the module.
        assert_eq!(
            rv(session.destroy_object(private)),
            RvError::ActionProhibited
        );
    }
}

#[test]
fn every_mechanism_signs_in_the_service_and_verifies_locally() {
    let session = session();
    let data = b"release 1.2.3 firmware image".repeat(40);
    let pss = |hash: MechanismType, mgf: PkcsMgfType, len: u64| {
        Mechanism::RsaPkcsPss(PkcsPssParams {
            hash_alg: hash,
            mgf,
            s_len: len.into(),
        })
    };
    let cases: Vec<(&str, Mechanism)> = vec![
        ("release-rsa", Mechanism::Sha256RsaPkcs),
        ("release-rsa", Mechanism::Sha384RsaPkcs),
        ("release-rsa", Mechanism::Sha512RsaPkcs),
        (
            "release-rsa",
            Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32.into(),
            }),
        ),
        ("release-ec", Mechanism::EcdsaSha256),
        ("release-p384", Mechanism::EcdsaSha384),
        (
            "release-ed",
            Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
        ),
    ];
    for (label, mechanism) in cases {
        let private = key(&session, ObjectClass::PRIVATE_KEY, label);
        let public = key(&session, ObjectClass::PUBLIC_KEY, label);
        let signature = session.sign(&mechanism, private, &data).unwrap();
        session
            .verify(&mechanism, public, &data, &signature)
            .unwrap_or_else(|e| panic!("{label} {mechanism:?}: {e}"));
        let mut damaged = signature.clone();
        damaged[5] ^= 1;
        assert_eq!(
            rv(session.verify(&mechanism, public, &data, &damaged)),
            RvError::SignatureInvalid
        );
    }
    // Multi-part: the module hashes the parts, the service signs the digest.
    let private = key(&session, ObjectClass::PRIVATE_KEY, "release-ec");
    let public = key(&session, ObjectClass::PUBLIC_KEY, "release-ec");
    session.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    for part in data.chunks(100) {
        session.sign_update(part).unwrap();
    }
    let signature = session.sign_final().unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, &data, &signature)
        .unwrap();
    // Raw mechanisms forward what the caller passed: a digest for CKM_ECDSA, a DigestInfo for
    // CKM_RSA_PKCS, the digest for CKM_RSA_PKCS_PSS.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
    let raw = session
        .sign(&Mechanism::Ecdsa, private, digest.as_ref())
        .unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, &data, &raw)
        .unwrap();
    let rsa = key(&session, ObjectClass::PRIVATE_KEY, "release-rsa");
    let rsa_public = key(&session, ObjectClass::PUBLIC_KEY, "release-rsa");
    let mut info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    info.extend_from_slice(digest.as_ref());
    let signature = session.sign(&Mechanism::RsaPkcs, rsa, &info).unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, rsa_public, &data, &signature)
        .unwrap();
    let pss_params = pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32);
    let signature = session.sign(&pss_params, rsa, digest.as_ref()).unwrap();
    session
        .verify(&pss_params, rsa_public, digest.as_ref(), &signature)
        .unwrap();
}

#[test]
fn what_the_service_does_not_sign_is_refused_at_the_right_step() {
    let session = session();
    let rsa = key(&session, ObjectClass::PRIVATE_KEY, "release-rsa");
    let ec = key(&session, ObjectClass::PRIVATE_KEY, "release-ec");
    assert_eq!(
        rv(session.sign_init(&Mechanism::Sha1RsaPkcs, rsa)),
        RvError::MechanismInvalid
    );
    assert_eq!(
        rv(session.sign_init(&Mechanism::EcdsaSha512, ec)),
        RvError::MechanismInvalid
    );
    let odd_salt = Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 20.into(),
    });
    assert_eq!(
        rv(session.sign_init(&odd_salt, rsa)),
        RvError::MechanismParamInvalid
    );
    // A SHA-1 DigestInfo is only seen at C_Sign: invalid data for this token.
    let mut info = vec![
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    info.extend_from_slice(&[7u8; 20]);
    assert_eq!(
        rv(session.sign(&Mechanism::RsaPkcs, rsa, &info)),
        RvError::DataInvalid
    );
    // Keys never decrypt or get wrapped out of the service.
    assert_eq!(
        rv(session.decrypt(&Mechanism::RsaPkcs, rsa, &[0u8; 256])),
        RvError::KeyFunctionNotPermitted
    );
    // No local token objects on a remote token.
    assert_eq!(
        rv(session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Value(b"note".to_vec()),
        ])),
        RvError::TemplateInconsistent
    );
    // Session objects work as on any slot.
    let note = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Value(b"note".to_vec()),
        ])
        .unwrap();
    session.destroy_object(note).unwrap();
}

#[test]
fn the_length_query_convention_holds() {
    let session = session();
    let ec = key(&session, ObjectClass::PRIVATE_KEY, "release-ec");
    let public = key(&session, ObjectClass::PUBLIC_KEY, "release-ec");
    let raw = common::raw();
    let handle = session_handle(&session);
    let mut mechanism = cryptoki_sys::CK_MECHANISM {
        mechanism: cryptoki_sys::CKM_ECDSA_SHA256,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let data = b"length query".to_vec();
    // SAFETY: valid session, mechanism and buffers of the stated lengths.
    unsafe {
        assert_eq!(
            (raw.C_SignInit.unwrap())(handle, &mut mechanism, ec.handle()),
            cryptoki_sys::CKR_OK
        );
        let mut len: cryptoki_sys::CK_ULONG = 0;
        let rv = (raw.C_Sign.unwrap())(
            handle,
            data.as_ptr() as *mut u8,
            data.len() as _,
            std::ptr::null_mut(),
            &mut len,
        );
        assert_eq!(rv, cryptoki_sys::CKR_OK);
        assert_eq!(len, 64);
        let mut short = vec![0u8; 10];
        let mut short_len: cryptoki_sys::CK_ULONG = 10;
        let rv = (raw.C_Sign.unwrap())(
            handle,
            data.as_ptr() as *mut u8,
            data.len() as _,
            short.as_mut_ptr(),
            &mut short_len,
        );
        assert_eq!(rv, cryptoki_sys::CKR_BUFFER_TOO_SMALL);
        assert_eq!(short_len, 64);
        let mut signature = vec![0u8; 64];
        let rv = (raw.C_Sign.unwrap())(
            handle,
            data.as_ptr() as *mut u8,
            data.len() as _,
            signature.as_mut_ptr(),
            &mut len,
        );
        assert_eq!(rv, cryptoki_sys::CKR_OK);
        session
            .verify(&Mechanism::EcdsaSha256, public, &data, &signature)
            .unwrap();
    }
}

/// A raw session on slot 10 (the token is logged in already: login is per token).
fn session_handle(_session: &Session) -> cryptoki_sys::CK_SESSION_HANDLE {
    let raw = common::raw();
    let mut handle = 0;
    // SAFETY: a valid out pointer; no callback.
    let rv = unsafe {
        (raw.C_OpenSession.unwrap())(
            10,
            cryptoki_sys::CKF_SERIAL_SESSION,
            std::ptr::null_mut(),
            None,
            &mut handle,
        )
    };
    assert_eq!(rv, cryptoki_sys::CKR_OK);
    handle
}

#[test]
fn eight_threads_sign_at_once() {
    let service = service();
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..8 {
            scope.spawn(move || {
                let session = service.context.open_ro_session(find_slot(10)).unwrap();
                let private = key(&session, ObjectClass::PRIVATE_KEY, "release-ed");
                let public = key(&session, ObjectClass::PUBLIC_KEY, "release-ed");
                let mechanism = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                    cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
                ));
                for i in 0..10 {
                    let data = format!("thread {t} signature {i}");
                    let signature = session.sign(&mechanism, private, data.as_bytes()).unwrap();
                    session
                        .verify(&mechanism, public, data.as_bytes(), &signature)
                        .unwrap();
                }
            });
        }
    });
    eprintln!(
        "80 remote signatures from 8 threads in {:?}",
        started.elapsed()
    );
}

#[test]
fn generated_keys_live_in_the_service() {
    let session = session();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]),
                Attribute::Label(b"release-generated".to_vec()),
            ],
            &[Attribute::Sign(true), Attribute::Token(true)],
        )
        .unwrap();
    let attrs = session
        .get_attributes(private, &[AttributeType::KeyType, AttributeType::Sensitive])
        .unwrap();
    assert!(attrs.contains(&Attribute::KeyType(KeyType::EC)));
    assert!(attrs.contains(&Attribute::Sensitive(true)));
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, b"new key")
        .unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, b"new key", &signature)
        .unwrap();
    // A P-521 key is not something the service makes.
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(vec![
                0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23
            ])],
            &[Attribute::Sign(true)],
        )),
        RvError::CurveNotSupported
    );
}
