//! The module's life in one process: calls before `C_Initialize`, `CK_C_INITIALIZE_ARGS` checks,
//! double initialisation, `C_Finalize`, and token objects that outlive `C_Finalize`/`C_Initialize`
//! while session objects do not; nothing secret is readable in the store files. One test, because it
//! initialises and finalises the module itself.

#[macro_use]
mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;

unsafe extern "C" fn create_mutex(out: *mut *mut c_void) -> CK_RV {
    // SAFETY: the module passes a valid out pointer.
    unsafe { *out = Box::into_raw(Box::new(0u8)).cast() };
    CKR_OK
}
unsafe extern "C" fn destroy_mutex(mutex: *mut c_void) -> CK_RV {
    // SAFETY: made by create_mutex.
    drop(unsafe { Box::from_raw(mutex.cast::<u8>()) });
    CKR_OK
}
unsafe extern "C" fn lock_mutex(_: *mut c_void) -> CK_RV {
    CKR_OK
}

fn init_args(flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags,
        pReserved: null_mut(),
    }
}

fn calls_before_initialize_and_initialize_arguments() {
    let mut info = std::mem::MaybeUninit::<CK_INFO>::uninit();
    let mut count: CK_ULONG = 0;
    let mut session: CK_SESSION_HANDLE = 0;
    // The function list is available before C_Initialize, nothing else is.
    assert_eq!(
        ck!(C_GetInfo, info.as_mut_ptr()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(C_GetSlotList, CK_FALSE, null_mut(), &mut count),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        ck!(
            C_OpenSession,
            0,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut session
        ),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_CloseAllSessions, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
    let mut random = [0u8; 4];
    assert_eq!(
        ck!(C_GenerateRandom, 1, random.as_mut_ptr(), 4),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_Finalize, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);

    // pReserved must be NULL; mutex callbacks come all four or none.
    let mut reserved = init_args(0);
    reserved.pReserved = 8usize as *mut c_void;
    assert_eq!(
        ck!(
            C_Initialize,
            (&mut reserved as *mut CK_C_INITIALIZE_ARGS).cast()
        ),
        CKR_ARGUMENTS_BAD
    );
    let mut partial = init_args(0);
    partial.CreateMutex = Some(create_mutex);
    assert_eq!(
        ck!(
            C_Initialize,
            (&mut partial as *mut CK_C_INITIALIZE_ARGS).cast()
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        ck!(C_GetInfo, info.as_mut_ptr()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );

    // Each accepted form, with C_Finalize in between.
    let mut callbacks = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(destroy_mutex),
        LockMutex: Some(lock_mutex),
        UnlockMutex: Some(lock_mutex),
        flags: 0,
        pReserved: null_mut(),
    };
    let mut os_locking = init_args(CKF_OS_LOCKING_OK);
    // The local store needs no threads of the module's own.
    let mut no_threads = init_args(CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS);
    let mut both = CK_C_INITIALIZE_ARGS {
        flags: CKF_OS_LOCKING_OK,
        ..callbacks
    };
    for args in [
        null_mut(),
        (&mut os_locking as *mut CK_C_INITIALIZE_ARGS).cast::<c_void>(),
        (&mut callbacks as *mut CK_C_INITIALIZE_ARGS).cast(),
        (&mut both as *mut CK_C_INITIALIZE_ARGS).cast(),
        (&mut no_threads as *mut CK_C_INITIALIZE_ARGS).cast(),
    ] {
        assert_eq!(ck!(C_Initialize, args), CKR_OK);
        assert_eq!(ck!(C_Initialize, args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
        assert_eq!(ck!(C_GetInfo, info.as_mut_ptr()), CKR_OK);
        assert_eq!(
            ck!(C_Finalize, std::ptr::dangling_mut::<c_void>()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(ck!(C_Finalize, null_mut()), CKR_OK);
        assert_eq!(ck!(C_Finalize, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    // SAFETY: C_GetInfo filled it in the loop above.
    let info = unsafe { info.assume_init() };
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (3, 0)
    );
    assert_eq!(&info.manufacturerID[..8], b"Cryptera");
}

fn initialised() -> Pkcs11 {
    let context = Pkcs11::new(module_path()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    context
}

const SECRET_VALUE: [u8; 32] = *b"0123456789abcdef-secret-material";
const PRIVATE_NOTE: &[u8] = b"private data that must not be on disk in clear";

fn token_objects_survive_finalize() {
    let context = initialised();
    let slot = fresh_token_in(&context, "persist");
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::EcParams(P256.to_vec()),
                Attribute::Token(true),
                Attribute::Label(b"kept".to_vec()),
            ],
            &[Attribute::Token(true), Attribute::Label(b"kept".to_vec())],
        )
        .unwrap();
    let point = bytes_attr(&session, public, AttributeType::EcPoint);
    let (_, readable) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P384.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let scalar = bytes_attr(&session, readable, AttributeType::Value);
    assert_eq!(scalar.len(), 48);
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(true),
            Attribute::Label(b"kept".to_vec()),
            Attribute::Value(SECRET_VALUE.to_vec()),
        ])
        .unwrap();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(b"kept".to_vec()),
            Attribute::Value(PRIVATE_NOTE.to_vec()),
        ])
        .unwrap();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(b"kept".to_vec()),
            Attribute::Value(b"session object".to_vec()),
        ])
        .unwrap();
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, b"before")
        .unwrap();
    session.logout().unwrap();
    // A wrong PIN is counted in the store, not only in memory.
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-pin")))),
        RvError::PinIncorrect
    );
    drop(session);
    context.finalize().unwrap();

    // Nothing secret in the store files.
    let store = scratch("store");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&store).unwrap().flatten() {
        bytes.extend(std::fs::read(entry.path()).unwrap());
    }
    // The scan reads the real store: the public label is there.
    assert!(bytes.windows(7).any(|w| w == b"persist"));
    for secret in [
        &scalar[..],
        &SECRET_VALUE[..],
        PRIVATE_NOTE,
        USER_PIN.as_bytes(),
        SO_PIN.as_bytes(),
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{:?} is in the store in clear",
            String::from_utf8_lossy(secret)
        );
    }

    let context = initialised();
    let info = context.get_token_info(slot).unwrap();
    assert_eq!(info.label(), "persist");
    assert!(info.user_pin_initialized());
    assert!(info.user_pin_count_low(), "the wrong PIN still counts");
    let session = context.open_rw_session(slot).unwrap();
    let kept = [Attribute::Label(b"kept".to_vec())];
    // Logged out, only the public key is visible.
    assert_eq!(session.find_objects(&kept).unwrap().len(), 1);
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(!context.get_token_info(slot).unwrap().user_pin_count_low());
    assert_eq!(session.find_objects(&kept).unwrap().len(), 4);
    let find_one = |class: ObjectClass| {
        let found = session
            .find_objects(&[Attribute::Class(class), Attribute::Label(b"kept".to_vec())])
            .unwrap();
        assert_eq!(found.len(), 1, "{class:?}");
        found[0]
    };
    let public = find_one(ObjectClass::PUBLIC_KEY);
    let private = find_one(ObjectClass::PRIVATE_KEY);
    assert_eq!(bytes_attr(&session, public, AttributeType::EcPoint), point);
    session
        .verify(&Mechanism::EcdsaSha256, public, b"before", &signature)
        .unwrap();
    let again = session
        .sign(&Mechanism::EcdsaSha256, private, b"after")
        .unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, b"after", &again)
        .unwrap();
    let note = find_one(ObjectClass::DATA);
    assert_eq!(
        bytes_attr(&session, note, AttributeType::Value),
        PRIVATE_NOTE
    );
    let secret = find_one(ObjectClass::SECRET_KEY);
    let hmac = session
        .sign(&Mechanism::Sha256Hmac, secret, b"after")
        .unwrap();
    let reference = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &SECRET_VALUE),
        b"after",
    );
    assert_eq!(hmac, reference.as_ref());
    drop(session);
    context.finalize().unwrap();
}

#[test]
fn initialize_finalize_and_persistence() {
    configure();
    calls_before_initialize_and_initialize_arguments();
    token_objects_survive_finalize();
}
