//! The function lists and interfaces: `C_GetInterfaceList`/`C_GetInterface` for "PKCS 11" 3.0 and
//! 2.40 with every entry point set, unsupported functions answering CKR_FUNCTION_NOT_SUPPORTED, and a
//! shared object exporting only PKCS#11 symbols.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use std::ptr::null_mut;

fn mech(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn function_pointers<T>(list: &T) -> Vec<usize> {
    // A function list is a CK_VERSION (padded to pointer alignment) followed by function pointers.
    let words = std::mem::size_of::<T>() / std::mem::size_of::<usize>();
    // SAFETY: the list is a repr(C) struct of that many pointer-sized fields after the version.
    let all = unsafe { std::slice::from_raw_parts((list as *const T).cast::<usize>(), words) };
    all[1..].to_vec()
}

#[test]
fn interfaces_offer_3_0_and_2_40_with_every_function() {
    pkcs11();
    let library = unsafe { libloading::Library::new(module_path()) }.unwrap();
    type GetInterfaceList = unsafe extern "C" fn(*mut CK_INTERFACE, *mut CK_ULONG) -> CK_RV;
    type GetInterface = unsafe extern "C" fn(
        *mut CK_UTF8CHAR,
        *mut CK_VERSION,
        *mut *mut CK_INTERFACE,
        CK_FLAGS,
    ) -> CK_RV;
    // SAFETY: the symbols have these signatures by the spec.
    let (list_fn, get_fn) = unsafe {
        (
            *library
                .get::<GetInterfaceList>(b"C_GetInterfaceList\0")
                .unwrap(),
            *library.get::<GetInterface>(b"C_GetInterface\0").unwrap(),
        )
    };
    let mut count: CK_ULONG = 0;
    assert_eq!(unsafe { list_fn(null_mut(), &mut count) }, CKR_OK);
    assert_eq!(count, 2);
    assert_eq!(
        unsafe { list_fn(null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    let empty = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    let mut interfaces = [empty; 2];
    let mut room: CK_ULONG = 1;
    assert_eq!(
        unsafe { list_fn(interfaces.as_mut_ptr(), &mut room) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(room, 2);
    assert_eq!(
        unsafe { list_fn(interfaces.as_mut_ptr(), &mut room) },
        CKR_OK
    );
    let mut versions = Vec::new();
    for interface in &interfaces {
        // SAFETY: the module hands out NUL-terminated names and function lists.
        let name = unsafe { std::ffi::CStr::from_ptr(interface.pInterfaceName as *const _) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        let version = unsafe { (*(interface.pFunctionList as *const CK_FUNCTION_LIST)).version };
        versions.push((version.major, version.minor));
    }
    versions.sort_unstable();
    assert_eq!(versions, [(2, 40), (3, 0)]);

    let mut name = *b"PKCS 11\0";
    let mut found: *mut CK_INTERFACE = null_mut();
    let version_of = |found: *mut CK_INTERFACE| {
        // SAFETY: the module returned a valid interface.
        let list = unsafe { (*found).pFunctionList as *const CK_FUNCTION_LIST };
        let v = unsafe { (*list).version };
        (v.major, v.minor)
    };
    assert_eq!(
        unsafe { get_fn(null_mut(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0), "the default is the newest");
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0));
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v240, &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (2, 40));
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    assert_eq!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v30, &mut found, 0) },
        CKR_OK
    );
    assert_eq!(version_of(found), (3, 0));
    // SAFETY: the 3.0 interface carries a CK_FUNCTION_LIST_3_0.
    let list30 = unsafe { &*((*found).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    assert!(
        function_pointers(list30).iter().all(|p| *p != 0),
        "every 3.0 entry is set"
    );
    assert!(
        function_pointers(common::raw()).iter().all(|p| *p != 0),
        "every 2.40 entry is set"
    );
    let mut v99 = CK_VERSION { major: 9, minor: 9 };
    assert_ne!(
        unsafe { get_fn(name.as_mut_ptr(), &mut v99, &mut found, 0) },
        CKR_OK
    );
    let mut other = *b"Vendor\0";
    assert_ne!(
        unsafe { get_fn(other.as_mut_ptr(), null_mut(), &mut found, 0) },
        CKR_OK
    );
    assert_eq!(
        unsafe { get_fn(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD
    );

    // What the module does not do, it says so.
    let (_, session) = user_session("unsupported");
    let h = session.handle();
    let n = null_mut();
    let mut m = mech(CKM_AES_GCM);
    let unsupported = [
        // SAFETY (all): the functions answer without touching their (NULL) arguments.
        unsafe { list30.C_GetOperationState.unwrap()(h, n, n.cast()) },
        unsafe { list30.C_SetOperationState.unwrap()(h, n, 0, 0, 0) },
        unsafe { list30.C_SignRecoverInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_SignRecover.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_VerifyRecoverInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_VerifyRecover.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_DigestEncryptUpdate.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_DecryptDigestUpdate.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_SignEncryptUpdate.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_DecryptVerifyUpdate.unwrap()(h, n, 0, n, n.cast()) },
        unsafe { list30.C_WaitForSlotEvent.unwrap()(CKF_DONT_BLOCK, n.cast(), n.cast()) },
        unsafe { list30.C_SessionCancel.unwrap()(h, 0) },
        unsafe { list30.C_MessageEncryptInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_EncryptMessage.unwrap()(h, n.cast(), 0, n, 0, n, 0, n, n.cast()) },
        unsafe { list30.C_EncryptMessageBegin.unwrap()(h, n.cast(), 0, n, 0) },
        unsafe { list30.C_EncryptMessageNext.unwrap()(h, n.cast(), 0, n, 0, n, n.cast(), 0) },
        unsafe { list30.C_MessageEncryptFinal.unwrap()(h) },
        unsafe { list30.C_MessageDecryptInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_DecryptMessage.unwrap()(h, n.cast(), 0, n, 0, n, 0, n, n.cast()) },
        unsafe { list30.C_DecryptMessageBegin.unwrap()(h, n.cast(), 0, n, 0) },
        unsafe { list30.C_DecryptMessageNext.unwrap()(h, n.cast(), 0, n, 0, n, n.cast(), 0) },
        unsafe { list30.C_MessageDecryptFinal.unwrap()(h) },
        unsafe { list30.C_MessageSignInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_SignMessage.unwrap()(h, n.cast(), 0, n, 0, n, n.cast()) },
        unsafe { list30.C_SignMessageBegin.unwrap()(h, n.cast(), 0) },
        unsafe { list30.C_SignMessageNext.unwrap()(h, n.cast(), 0, n, 0, n, n.cast()) },
        unsafe { list30.C_MessageSignFinal.unwrap()(h) },
        unsafe { list30.C_MessageVerifyInit.unwrap()(h, &mut m, 0) },
        unsafe { list30.C_VerifyMessage.unwrap()(h, n.cast(), 0, n, 0, n, 0) },
        unsafe { list30.C_VerifyMessageBegin.unwrap()(h, n.cast(), 0) },
        unsafe { list30.C_VerifyMessageNext.unwrap()(h, n.cast(), 0, n, 0, n, 0) },
        unsafe { list30.C_MessageVerifyFinal.unwrap()(h) },
    ];
    for (i, rv) in unsupported.iter().enumerate() {
        assert_eq!(*rv, CKR_FUNCTION_NOT_SUPPORTED, "unsupported function #{i}");
    }
    // The legacy parallel functions answer as the spec prescribes.
    assert_eq!(
        unsafe { list30.C_GetFunctionStatus.unwrap()(h) },
        CKR_FUNCTION_NOT_PARALLEL
    );
    assert_eq!(
        unsafe { list30.C_CancelFunction.unwrap()(h) },
        CKR_FUNCTION_NOT_PARALLEL
    );
    let mut login = *b"user-1234";
    assert_eq!(
        unsafe { list30.C_LoginUser.unwrap()(h, CKU_USER, login.as_mut_ptr(), 9, null_mut(), 0) },
        CKR_USER_ALREADY_LOGGED_IN
    );
}

#[test]
fn the_library_exports_only_pkcs11_symbols() {
    let output = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils) lists the module's dynamic symbols");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let symbols: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(symbols.contains(&"C_GetFunctionList"));
    assert!(symbols.contains(&"C_GetInterface"));
    let foreign: Vec<&&str> = symbols.iter().filter(|s| !s.starts_with("C_")).collect();
    assert!(foreign.is_empty(), "non-PKCS#11 exports: {foreign:?}");
}
