//! Sessions and users: session states, SO and user login rules, closing all sessions, private
//! objects hidden until the user logs in, session objects, re-initialising a token, and the SO's
//! reach. PINs (wrong, locked, changed, limits) are in `pins.rs`.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{SessionState, UserType};
use cryptoki_sys::*;

#[test]
fn session_states_follow_who_is_logged_in() {
    let context = pkcs11();
    let slot = fresh_token("states");
    let ro = context.open_ro_session(slot).unwrap();
    let rw = context.open_rw_session(slot).unwrap();
    let state = |s: &cryptoki::session::Session| s.get_session_info().unwrap().session_state();
    assert_eq!(state(&ro), SessionState::RoPublic);
    assert_eq!(state(&rw), SessionState::RwPublic);
    let info = ro.get_session_info().unwrap();
    assert!(!info.read_write());
    assert_eq!(info.slot_id(), slot);
    assert!(rw.get_session_info().unwrap().read_write());
    let token = context.get_token_info(slot).unwrap();
    assert_eq!(token.label(), "states");
    assert!(token.token_initialized() && token.user_pin_initialized());
    assert!(token.login_required() && token.rng());
    assert!(!token.serial_number().is_empty());
    assert_ne!(
        token.serial_number(),
        context
            .get_token_info(fresh_token("states-2"))
            .unwrap()
            .serial_number(),
        "every token has its own serial number"
    );
    assert_eq!(token.session_count(), Some(2));
    assert_eq!(token.rw_session_count(), Some(1));

    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // Login is per token, so every session of the application changes state.
    assert_eq!(state(&ro), SessionState::RoUser);
    assert_eq!(state(&rw), SessionState::RwUser);
    ro.logout().unwrap();
    assert_eq!(state(&ro), SessionState::RoPublic);
    assert_eq!(state(&rw), SessionState::RwPublic);

    drop(ro);
    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(state(&rw), SessionState::RwSecurityOfficer);
    // No read-only session may exist beside an SO session.
    assert_eq!(
        rv(context.open_ro_session(slot)),
        RvError::SessionReadWriteSoExists
    );
    let second = context.open_rw_session(slot).unwrap();
    assert_eq!(state(&second), SessionState::RwSecurityOfficer);
}

#[test]
fn so_login_is_refused_while_read_only_sessions_exist() {
    let context = pkcs11();
    let slot = fresh_token("so-ro");
    let ro = context.open_ro_session(slot).unwrap();
    let rw = context.open_rw_session(slot).unwrap();
    assert_eq!(
        rv(rw.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::SessionReadOnlyExists
    );
    drop(ro);
    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
}

#[test]
fn user_and_so_logins_exclude_each_other() {
    let context = pkcs11();
    let slot = fresh_token("already");
    let first = context.open_rw_session(slot).unwrap();
    let second = context.open_rw_session(slot).unwrap();
    first.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        rv(second.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserAlreadyLoggedIn
    );
    assert_eq!(
        rv(second.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::UserAnotherAlreadyLoggedIn
    );
    second.logout().unwrap();
    assert_eq!(rv(first.logout()), RvError::UserNotLoggedIn);
    first.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(
        rv(second.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserAnotherAlreadyLoggedIn
    );
    assert_eq!(
        rv(first.login(UserType::VendorExtension(0x1234), Some(&pin(USER_PIN)))),
        RvError::UserTypeInvalid
    );
}

#[test]
fn close_all_sessions_closes_every_session_and_logs_out() {
    let context = pkcs11();
    let slot = fresh_token("closeall");
    let sessions: Vec<_> = (0..3)
        .map(|_| context.open_rw_session_no_drop(slot).unwrap())
        .collect();
    sessions[0]
        .login(UserType::User, Some(&pin(USER_PIN)))
        .unwrap();
    assert_eq!(
        context.get_token_info(slot).unwrap().session_count(),
        Some(3)
    );
    assert_eq!(ck!(C_CloseAllSessions, slot.id()), CKR_OK);
    for session in &sessions {
        let mut info = CK_SESSION_INFO {
            slotID: 0,
            state: 0,
            flags: 0,
            ulDeviceError: 0,
        };
        assert_eq!(
            ck!(C_GetSessionInfo, session.handle(), &mut info),
            CKR_SESSION_HANDLE_INVALID
        );
    }
    assert_eq!(
        context.get_token_info(slot).unwrap().session_count(),
        Some(0)
    );
    let again = context.open_rw_session(slot).unwrap();
    assert_eq!(
        again.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );
}

#[test]
fn closing_the_last_session_logs_out() {
    let context = pkcs11();
    let slot = fresh_token("lastclose");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    drop(session);
    let session = context.open_rw_session(slot).unwrap();
    assert_eq!(
        session.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
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
fn private_objects_stay_hidden_until_the_user_logs_in() {
    let context = pkcs11();
    let slot = fresh_token("hidden");
    let session = context.open_rw_session(slot).unwrap();
    assert_eq!(
        rv(session.create_object(&data_object("early", true, true))),
        RvError::UserNotLoggedIn
    );
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let private = session
        .create_object(&data_object("secret", true, true))
        .unwrap();
    session
        .create_object(&data_object("open", true, false))
        .unwrap();
    let (_, private_key) = ec_pair(&session, P256);
    let all_data = [Attribute::Class(ObjectClass::DATA)];
    assert_eq!(session.find_objects(&all_data).unwrap().len(), 2);
    session.logout().unwrap();

    let found = session.find_objects(&all_data).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        bytes_attr(&session, found[0], cryptoki::object::AttributeType::Label),
        b"open"
    );
    assert!(session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap()
        .is_empty());
    assert_eq!(
        rv(session.get_attributes(private, &[cryptoki::object::AttributeType::Value])),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        rv(session.destroy_object(private)),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        rv(session.sign_init(&Mechanism::Ecdsa, private_key)),
        RvError::KeyHandleInvalid
    );

    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(session.find_objects(&all_data).unwrap().len(), 2);
    let secret = session
        .find_objects(&[Attribute::Label(b"secret".to_vec())])
        .unwrap();
    assert_eq!(secret.len(), 1);
    assert_eq!(
        bytes_attr(&session, secret[0], cryptoki::object::AttributeType::Value),
        b"secret"
    );
}

#[test]
fn read_only_sessions_cannot_write_token_objects() {
    let context = pkcs11();
    let slot = fresh_token("ro-write");
    let ro = context.open_ro_session(slot).unwrap();
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        rv(ro.create_object(&data_object("persist", true, false))),
        RvError::SessionReadOnly
    );
    assert_eq!(
        rv(ro.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P256.to_vec()), Attribute::Token(true)],
            &[Attribute::Token(true)],
        )),
        RvError::SessionReadOnly
    );
    // Session objects are fine in a read-only session.
    let temporary = ro
        .create_object(&data_object("temporary", false, true))
        .unwrap();
    ro.destroy_object(temporary).unwrap();
    let rw = context.open_rw_session(slot).unwrap();
    let stored = rw
        .create_object(&data_object("persist", true, false))
        .unwrap();
    assert_eq!(rv(ro.destroy_object(stored)), RvError::SessionReadOnly);
    assert_eq!(
        rv(ro.update_attributes(stored, &[Attribute::Label(b"renamed".to_vec())])),
        RvError::SessionReadOnly
    );
}

#[test]
fn session_objects_belong_to_their_session() {
    let context = pkcs11();
    let slot = fresh_token("session-objects");
    let first = context.open_rw_session(slot).unwrap();
    let second = context.open_rw_session(slot).unwrap();
    let object = first
        .create_object(&data_object("mine", false, false))
        .unwrap();
    // Visible to every session of the application while its session lives.
    assert_eq!(
        bytes_attr(&second, object, cryptoki::object::AttributeType::Value),
        b"mine"
    );
    drop(first);
    assert_eq!(
        rv(second.get_attributes(object, &[cryptoki::object::AttributeType::Value])),
        RvError::ObjectHandleInvalid
    );
}

#[test]
fn reinitialising_a_token_needs_its_so_pin_and_wipes_it() {
    let context = pkcs11();
    let slot = fresh_token("reinit");
    {
        let session = context.open_rw_session(slot).unwrap();
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        session
            .create_object(&data_object("old", true, false))
            .unwrap();
        assert_eq!(
            rv(context.init_token(slot, &pin(SO_PIN), "reinit-2")),
            RvError::SessionExists
        );
    }
    assert_eq!(
        rv(context.init_token(slot, &pin("wrong-so-pin"), "reinit-2")),
        RvError::PinIncorrect
    );
    context.init_token(slot, &pin(SO_PIN), "reinit-2").unwrap();
    let info = context.get_token_info(slot).unwrap();
    assert_eq!(info.label(), "reinit-2");
    assert!(!info.user_pin_initialized());
    let session = context.open_rw_session(slot).unwrap();
    assert!(session
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
        .is_empty());
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserPinNotInitialized
    );
}

#[test]
fn the_so_works_with_public_objects_only() {
    let context = pkcs11();
    let slot = fresh_token("so-objects");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    session
        .create_object(&data_object("users-secret", true, true))
        .unwrap();
    session.logout().unwrap();
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    let public = session
        .create_object(&data_object("so-notice", true, false))
        .unwrap();
    assert_eq!(
        rv(session.create_object(&data_object("so-secret", true, true))),
        RvError::UserNotLoggedIn
    );
    let visible = session
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap();
    assert_eq!(visible, vec![public]);
}

#[test]
fn logout_invalidates_private_handles_and_destroys_private_session_objects() {
    let (_slot, session) = user_session("logout-rules");
    let data = |token: bool, private: bool, label: &str| {
        vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(token),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Value(b"v".to_vec()),
        ]
    };
    let private_token = session
        .create_object(&data(true, true, "private-token"))
        .unwrap();
    let private_session = session
        .create_object(&data(false, true, "private-session"))
        .unwrap();
    let public_session = session
        .create_object(&data(false, false, "public-session"))
        .unwrap();
    session.logout().unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();

    let label = |object| attr(&session, object, cryptoki::object::AttributeType::Label);
    // The old handle of the private token object stays invalid; the object has a new one.
    assert_eq!(
        rv(session.get_attributes(private_token, &[cryptoki::object::AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    let found = session
        .find_objects(&[Attribute::Label(b"private-token".to_vec())])
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_ne!(found[0], private_token);
    // The private session object is gone; the public one is still there.
    assert!(session
        .find_objects(&[Attribute::Label(b"private-session".to_vec())])
        .unwrap()
        .is_empty());
    assert_eq!(
        rv(session.get_attributes(private_session, &[cryptoki::object::AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        label(public_session),
        Attribute::Label(b"public-session".to_vec())
    );
}
