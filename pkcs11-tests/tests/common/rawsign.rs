//! Raw signing helpers: a mechanism with an owned PSS parameter block, and sign/verify through the
//! C functions single-part (`C_Sign`) or multi-part (`C_SignUpdate`/`C_SignFinal`). Raw, because
//! cryptoki lacks some of the module's mechanisms (SHA-224 PSS).

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;

/// Calls a raw function of the module's function list.
macro_rules! call {
    ($name:ident $(, $arg:expr)* $(,)?) => {
        // SAFETY: the callers pass arguments that fit the PKCS#11 signature of the function.
        unsafe { (super::raw().$name.expect(stringify!($name)))($($arg),*) }
    };
}

/// A mechanism with an owned parameter block.
pub struct Mech {
    pub kind: CK_MECHANISM_TYPE,
    pub param: Option<CK_RSA_PKCS_PSS_PARAMS>,
}

impl Mech {
    pub fn plain(kind: CK_MECHANISM_TYPE) -> Mech {
        Mech { kind, param: None }
    }

    pub fn pss(
        kind: CK_MECHANISM_TYPE,
        hash: CK_MECHANISM_TYPE,
        mgf: CK_ULONG,
        salt: CK_ULONG,
    ) -> Mech {
        Mech {
            kind,
            param: Some(CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: hash,
                mgf,
                sLen: salt,
            }),
        }
    }

    pub fn raw(&mut self) -> CK_MECHANISM {
        match &mut self.param {
            Some(p) => CK_MECHANISM {
                mechanism: self.kind,
                pParameter: (p as *mut CK_RSA_PKCS_PSS_PARAMS).cast::<c_void>(),
                ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
            },
            None => CK_MECHANISM {
                mechanism: self.kind,
                pParameter: null_mut(),
                ulParameterLen: 0,
            },
        }
    }
}

/// Signs `parts` (one part: `C_Sign`; more: `C_SignUpdate`s and `C_SignFinal`).
pub fn sign(session: &Session, mech: &mut Mech, key: ObjectHandle, parts: &[&[u8]]) -> Vec<u8> {
    let h = session.handle();
    let mut raw = mech.raw();
    assert_eq!(
        call!(C_SignInit, h, &mut raw, key.handle()),
        CKR_OK,
        "C_SignInit {:#x}",
        mech.kind
    );
    let mut out = vec![0u8; 1024];
    let mut len = out.len() as CK_ULONG;
    let result = if let [single] = parts {
        let mut data = single.to_vec();
        call!(
            C_Sign,
            h,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len
        )
    } else {
        for part in parts {
            let mut data = part.to_vec();
            assert_eq!(
                call!(C_SignUpdate, h, data.as_mut_ptr(), data.len() as CK_ULONG),
                CKR_OK
            );
        }
        call!(C_SignFinal, h, out.as_mut_ptr(), &mut len)
    };
    assert_eq!(result, CKR_OK, "signing with {:#x}", mech.kind);
    out.truncate(len as usize);
    out
}

/// Verifies like [`sign`] signs; returns the CK_RV.
pub fn verify(
    session: &Session,
    mech: &mut Mech,
    key: ObjectHandle,
    parts: &[&[u8]],
    sig: &[u8],
) -> CK_RV {
    let h = session.handle();
    let mut raw = mech.raw();
    assert_eq!(
        call!(C_VerifyInit, h, &mut raw, key.handle()),
        CKR_OK,
        "C_VerifyInit {:#x}",
        mech.kind
    );
    let mut signature = sig.to_vec();
    if let [single] = parts {
        let mut data = single.to_vec();
        return call!(
            C_Verify,
            h,
            data.as_mut_ptr(),
            data.len() as CK_ULONG,
            signature.as_mut_ptr(),
            signature.len() as CK_ULONG
        );
    }
    for part in parts {
        let mut data = part.to_vec();
        assert_eq!(
            call!(C_VerifyUpdate, h, data.as_mut_ptr(), data.len() as CK_ULONG),
            CKR_OK
        );
    }
    call!(
        C_VerifyFinal,
        h,
        signature.as_mut_ptr(),
        signature.len() as CK_ULONG
    )
}
