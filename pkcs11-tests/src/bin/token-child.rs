//! A second process for the integration tests: it loads the module named by `CRYPTERA_PKCS11_MODULE`
//! (with the parent's `CRYPTERA_PKCS11_CONFIG`, so both share a store) and works on one token.
//!
//! `token-child generate <slot> <pin> <prefix> <count>`: generates P-256 token key pairs labelled
//! `<prefix>-<n>` and prints `committed <label>` after each `C_GenerateKeyPair` returns.
//! `token-child find <slot> <pin> <label>`: finds the key pair labelled `<label>`, signs and verifies
//! with it, and prints `found <label>`; exits non-zero if it is missing.
//! `token-child init <slot> <so-pin> <label> <user-pin>`: initialises the token in `<slot>` and sets
//! its user PIN, then prints `initialised <label>`.
//! `token-child create <slot> <pin> <prefix> <count>`: creates private token data objects labelled
//! `<prefix>-<n>` and prints `committed <label>` after each `C_CreateObject` returns.
//! `token-child setpin <slot> <pin> <other-pin> <count>`: changes the user PIN back and forth between
//! the two and prints `pin <new>` after each `C_SetPIN` returns.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::io::Write;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn context() -> Result<Pkcs11, Box<dyn std::error::Error>> {
    let module =
        std::env::var_os("CRYPTERA_PKCS11_MODULE").ok_or("CRYPTERA_PKCS11_MODULE unset")?;
    let context = Pkcs11::new(module)?;
    context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    Ok(context)
}

fn open(slot: &str, pin: &str) -> Result<Session, Box<dyn std::error::Error>> {
    let context = context()?;
    let slot = Slot::try_from(slot.parse::<u64>()?)?;
    let session = context.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::from(pin)))?;
    Ok(session)
}

fn generate(session: &Session, prefix: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout();
    for n in 0..count {
        let label = format!("{prefix}-{n}").into_bytes();
        session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::EcParams(P256.to_vec()),
                Attribute::Token(true),
                Attribute::Label(label.clone()),
            ],
            &[Attribute::Token(true), Attribute::Label(label)],
        )?;
        writeln!(out, "committed {prefix}-{n}")?;
        out.flush()?;
    }
    Ok(())
}

fn create(session: &Session, prefix: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout();
    for n in 0..count {
        let label = format!("{prefix}-{n}");
        session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Value(vec![n as u8; 256]),
        ])?;
        writeln!(out, "committed {label}")?;
        out.flush()?;
    }
    Ok(())
}

fn find(session: &Session, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let one = |class| -> Result<_, Box<dyn std::error::Error>> {
        let found = session.find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        match found.as_slice() {
            [handle] => Ok(*handle),
            other => Err(format!("{} objects labelled {label}", other.len()).into()),
        }
    };
    let private = one(ObjectClass::PRIVATE_KEY)?;
    let public = one(ObjectClass::PUBLIC_KEY)?;
    let signature = session.sign(&Mechanism::EcdsaSha256, private, label.as_bytes())?;
    session.verify(
        &Mechanism::EcdsaSha256,
        public,
        label.as_bytes(),
        &signature,
    )?;
    println!("found {label}");
    Ok(())
}

fn set_pins(
    session: &Session,
    first: &str,
    second: &str,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout();
    let (mut current, mut next) = (first, second);
    for _ in 0..count {
        session.set_pin(&AuthPin::from(current), &AuthPin::from(next))?;
        writeln!(out, "pin {next}")?;
        out.flush()?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(())
}

fn init(
    slot: &str,
    so_pin: &str,
    label: &str,
    user_pin: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let context = context()?;
    let slot = Slot::try_from(slot.parse::<u64>()?)?;
    context.init_token(slot, &AuthPin::from(so_pin), label)?;
    let session = context.open_rw_session(slot)?;
    session.login(UserType::So, Some(&AuthPin::from(so_pin)))?;
    session.init_pin(&AuthPin::from(user_pin))?;
    println!("initialised {label}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", slot, pin, prefix, count] => {
            generate(&open(slot, pin)?, prefix, count.parse()?)
        }
        ["create", slot, pin, prefix, count] => create(&open(slot, pin)?, prefix, count.parse()?),
        ["find", slot, pin, label] => find(&open(slot, pin)?, label),
        ["init", slot, so_pin, label, user_pin] => init(slot, so_pin, label, user_pin),
        ["setpin", slot, pin, other, count] => {
            set_pins(&open(slot, pin)?, pin, other, count.parse()?)
        }
        _ => Err("usage: token-child generate|find ...".into()),
    }
}
