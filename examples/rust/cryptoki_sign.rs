//! Signs a message with a token key through the `cryptoki` crate and verifies it on the token: the
//! Rust counterpart of `examples/sign.c` and `examples/pykcs11_sign.py`. Built as an example of the
//! `pkcs11-tests` crate (which depends on `cryptoki`):
//!
//! ```sh
//! cargo run --release -p pkcs11-tests --example cryptoki-sign -- \
//!     target/release/libcryptera_pkcs11.so build 1234 release-ec
//! ```
//!
//! Arguments: module path, token label, user PIN, key label. EC keys sign with `CKM_ECDSA_SHA256`,
//! RSA keys with `CKM_SHA256_RSA_PKCS`. Prints the signature in hex; exits non-zero on any failure.

use std::env;
use std::process::ExitCode;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let [module, token, pin, key] = args.as_slice() else {
        eprintln!("usage: cryptoki-sign MODULE TOKEN-LABEL PIN KEY-LABEL");
        return ExitCode::from(2);
    };
    match sign_and_verify(module, token, pin, key, b"signed through cryptoki") {
        Ok(signature) => {
            let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
            println!(
                "{key}: {} byte signature, verified on the token: {hex}",
                signature.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cryptoki-sign: {error}");
            ExitCode::FAILURE
        }
    }
}

fn sign_and_verify(
    module: &str,
    token: &str,
    pin: &str,
    key: &str,
    message: &[u8],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let pkcs11 = Pkcs11::new(module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;

    // The slot whose token carries the label (labels are blank-padded to 32 bytes on the wire).
    let mut slot = None;
    for candidate in pkcs11.get_slots_with_initialized_token()? {
        if pkcs11.get_token_info(candidate)?.label().trim_end() == token {
            slot = Some(candidate);
            break;
        }
    }
    let slot = slot.ok_or_else(|| format!("no token labelled {token:?}"))?;

    let session = pkcs11.open_ro_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(pin.into())))?;

    let private = *session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(key.as_bytes().to_vec()),
        ])?
        .first()
        .ok_or_else(|| format!("no private key labelled {key:?}"))?;
    let public = *session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(key.as_bytes().to_vec()),
        ])?
        .first()
        .ok_or_else(|| format!("no public key labelled {key:?}"))?;

    let key_type = session
        .get_attributes(private, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::KeyType(key_type) => Some(key_type),
            _ => None,
        })
        .ok_or("the key has no CKA_KEY_TYPE")?;
    let mechanism = if key_type == KeyType::EC {
        Mechanism::EcdsaSha256
    } else if key_type == KeyType::RSA {
        Mechanism::Sha256RsaPkcs
    } else {
        return Err(format!("this example signs with EC or RSA keys, not {key_type}").into());
    };

    let signature = session.sign(&mechanism, private, message)?;
    session.verify(&mechanism, public, message, &signature)?;
    // A changed message must not verify: proves the check above is real.
    if session
        .verify(&mechanism, public, b"another message", &signature)
        .is_ok()
    {
        return Err("a signature verified over the wrong message".into());
    }
    session.logout()?;
    Ok(signature)
}
