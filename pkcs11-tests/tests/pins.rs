//! PINs: wrong and locked user and SO PINs with the token's PIN-count flags, the SO unlocking the
//! user, PIN changes that keep private objects readable, PIN length limits, and context-specific
//! login for keys that always need authentication.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;

#[test]
fn wrong_user_pins_lock_the_pin_and_the_so_unlocks_it() {
    assert_eq!(MAX_PIN_ATTEMPTS, 3, "the flags below assume three attempts");
    let context = pkcs11();
    let slot = fresh_token("lockout");
    let session = context.open_rw_session(slot).unwrap();
    let flags = || {
        let info = context.get_token_info(slot).unwrap();
        (
            info.user_pin_count_low(),
            info.user_pin_final_try(),
            info.user_pin_locked(),
        )
    };
    assert_eq!(flags(), (false, false, false));

    // A right PIN after a wrong one resets the count.
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-pin")))),
        RvError::PinIncorrect
    );
    assert_eq!(flags(), (true, false, false));
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    session.logout().unwrap();
    assert_eq!(flags(), (false, false, false));

    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-1")))),
        RvError::PinIncorrect
    );
    assert_eq!(flags(), (true, false, false));
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-2")))),
        RvError::PinIncorrect
    );
    assert_eq!(flags(), (true, true, false));
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-3")))),
        RvError::PinIncorrect
    );
    let info = context.get_token_info(slot).unwrap();
    assert!(info.user_pin_locked());
    assert!(!info.user_pin_final_try());
    // Locked means locked, even for the right PIN.
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::PinLocked
    );
    // The SO is unaffected and sets a new user PIN, which unlocks it.
    assert!(!context.get_token_info(slot).unwrap().so_pin_count_low());
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    session.init_pin(&pin("fresh-pin")).unwrap();
    session.logout().unwrap();
    assert_eq!(flags(), (false, false, false));
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::PinIncorrect
    );
    session
        .login(UserType::User, Some(&pin("fresh-pin")))
        .unwrap();
    assert_eq!(flags(), (false, false, false));
}

#[test]
fn wrong_so_pins_set_the_so_flags_and_lock() {
    let context = pkcs11();
    let slot = fresh_token("so-lockout");
    let session = context.open_rw_session(slot).unwrap();
    let flags = || {
        let info = context.get_token_info(slot).unwrap();
        (
            info.so_pin_count_low(),
            info.so_pin_final_try(),
            info.so_pin_locked(),
        )
    };
    for (attempt, expected) in [
        (false, false, false),
        (true, false, false),
        (true, true, false),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(flags(), expected, "before wrong SO PIN {attempt}");
        assert_eq!(
            rv(session.login(UserType::So, Some(&pin("not-the-so-pin")))),
            RvError::PinIncorrect
        );
    }
    assert_eq!(flags(), (false, false, true));
    assert_eq!(
        rv(session.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::PinLocked
    );
    // The user's PIN is a separate counter.
    assert!(!context.get_token_info(slot).unwrap().user_pin_count_low());
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
}

#[test]
fn set_pin_replaces_the_pin_of_whoever_is_logged_in() {
    let context = pkcs11();
    let slot = fresh_token("setpin");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        rv(session.set_pin(&pin("not-my-pin"), &pin("new-user-pin"))),
        RvError::PinIncorrect
    );
    session
        .set_pin(&pin(USER_PIN), &pin("new-user-pin"))
        .unwrap();
    session.logout().unwrap();
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::PinIncorrect
    );
    session
        .login(UserType::User, Some(&pin("new-user-pin")))
        .unwrap();
    session.logout().unwrap();

    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    session.set_pin(&pin(SO_PIN), &pin("new-so-pin")).unwrap();
    session.logout().unwrap();
    assert_eq!(
        rv(session.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::PinIncorrect
    );
    session
        .login(UserType::So, Some(&pin("new-so-pin")))
        .unwrap();
    session.logout().unwrap();

    // A read-only session cannot change a PIN.
    let ro = context.open_ro_session(slot).unwrap();
    ro.login(UserType::User, Some(&pin("new-user-pin")))
        .unwrap();
    assert_eq!(
        rv(ro.set_pin(&pin("new-user-pin"), &pin("another-pin"))),
        RvError::SessionReadOnly
    );
}

#[test]
fn pin_lengths_outside_the_limits_are_refused() {
    let context = pkcs11();
    let slot = fresh_token("pinlen");
    let info = context.get_token_info(slot).unwrap();
    assert_eq!(info.min_pin_length(), MIN_PIN_LEN);
    assert_eq!(info.max_pin_length(), MAX_PIN_LEN);
    let short = "x".repeat(MIN_PIN_LEN - 1);
    let long = "x".repeat(MAX_PIN_LEN + 1);
    let shortest = "y".repeat(MIN_PIN_LEN);
    let longest = "z".repeat(MAX_PIN_LEN);

    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(rv(session.init_pin(&pin(&short))), RvError::PinLenRange);
    assert_eq!(rv(session.init_pin(&pin(&long))), RvError::PinLenRange);
    session.init_pin(&pin(&shortest)).unwrap();
    session.logout().unwrap();

    session
        .login(UserType::User, Some(&pin(&shortest)))
        .unwrap();
    assert_eq!(
        rv(session.set_pin(&pin(&shortest), &pin(&short))),
        RvError::PinLenRange
    );
    assert_eq!(
        rv(session.set_pin(&pin(&shortest), &pin(&long))),
        RvError::PinLenRange
    );
    session.set_pin(&pin(&shortest), &pin(&longest)).unwrap();
    session.logout().unwrap();
    session.login(UserType::User, Some(&pin(&longest))).unwrap();
    drop(session);

    // C_InitToken checks the SO PIN's length before it touches anything.
    let _turn = free_slot_turn();
    let free = free_slot(context);
    assert_eq!(
        rv(context.init_token(free, &pin(&short), "too-short")),
        RvError::PinLenRange
    );
}

fn data_object(label: &str, token: bool, private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(label.as_bytes().to_vec()),
    ]
}

#[test]
fn always_authenticate_keys_need_a_context_login_per_operation() {
    let context = pkcs11();
    let slot = fresh_token("context-login");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let (_, private) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::AlwaysAuthenticate(true)],
    );
    let digest = [7u8; 32];
    session.sign_init(&Mechanism::Ecdsa, private).unwrap();
    assert_eq!(
        rv(session.login(UserType::ContextSpecific, Some(&pin("wrong-pin")))),
        RvError::PinIncorrect
    );
    let mut signature = vec![0u8; 64];
    let mut len = signature.len() as CK_ULONG;
    let mut data = digest;
    assert_eq!(
        ck!(
            C_Sign,
            session.handle(),
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            signature.as_mut_ptr(),
            &mut len
        ),
        CKR_USER_NOT_LOGGED_IN
    );
    session
        .login(UserType::ContextSpecific, Some(&pin(USER_PIN)))
        .unwrap();
    assert_eq!(
        ck!(
            C_Sign,
            session.handle(),
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            signature.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(len, 64);
    // The next operation needs its own context login.
    session.sign_init(&Mechanism::Ecdsa, private).unwrap();
    let mut len = signature.len() as CK_ULONG;
    assert_eq!(
        ck!(
            C_Sign,
            session.handle(),
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            signature.as_mut_ptr(),
            &mut len
        ),
        CKR_USER_NOT_LOGGED_IN
    );
}

#[test]
fn a_pin_change_keeps_every_private_object_readable() {
    let context = pkcs11();
    let slot = fresh_token("rewrap");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    session
        .create_object(&data_object("kept-secret", true, true))
        .unwrap();
    let (_, _private) = key_pair(
        &session,
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(P256.to_vec())],
        &[Attribute::Token(true)],
    );
    session
        .set_pin(&pin(USER_PIN), &pin("changed-pin"))
        .unwrap();
    session.logout().unwrap();
    // Not logged in, C_SetPIN in a read/write session changes the user's PIN.
    session
        .set_pin(&pin("changed-pin"), &pin("changed-again"))
        .unwrap();
    session
        .login(UserType::User, Some(&pin("changed-again")))
        .unwrap();
    // Handles to private objects end with the logout; find them again.
    let find = |class| {
        session
            .find_objects(&[Attribute::Class(class), Attribute::Token(true)])
            .unwrap()[0]
    };
    assert_eq!(
        bytes_attr(
            &session,
            find(ObjectClass::DATA),
            cryptoki::object::AttributeType::Value
        ),
        b"kept-secret"
    );
    session
        .sign(
            &Mechanism::EcdsaSha256,
            find(ObjectClass::PRIVATE_KEY),
            b"still mine",
        )
        .unwrap();
    session.logout().unwrap();
    // The SO's PIN change does not touch the user's access either.
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    session.set_pin(&pin(SO_PIN), &pin("so-changed")).unwrap();
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&pin("changed-again")))
        .unwrap();
    let note = session
        .find_objects(&[Attribute::Label(b"kept-secret".to_vec())])
        .unwrap()[0];
    assert_eq!(
        bytes_attr(&session, note, cryptoki::object::AttributeType::Value),
        b"kept-secret"
    );
}
