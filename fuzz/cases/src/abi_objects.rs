//! The C ABI end to end for object templates: a sequence of `C_CreateObject`, `C_SetAttributeValue`,
//! `C_GetAttributeValue`, `C_CopyObject`, `C_FindObjects*`, `C_GetObjectSize` and `C_DestroyObject`
//! calls with raw `CK_ATTRIBUTE` arrays decoded from the input (see `RawTemplate`: bogus lengths
//! within the buffer, NULL values, unavailable lengths). Everything an input created is destroyed
//! at its end, so inputs do not pile up objects in the token.

use crate::{module, trace, OutTemplate, RawTemplate, Reader};
use cryptera_pkcs11::abi::*;
use cryptoki_sys::*;

/// Picks one of the handles this input created or, for a byte with the top bit set, a made-up one.
fn handle(r: &mut Reader, created: &[CK_OBJECT_HANDLE]) -> CK_OBJECT_HANDLE {
    let at = r.u8();
    if at & 0x80 != 0 || created.is_empty() {
        CK_OBJECT_HANDLE::from(at & 0x7f)
    } else {
        created[usize::from(at) % created.len()]
    }
}

/// One input: what the fuzz target of the same name runs, and what the corpus replay test runs.
pub fn run(data: &[u8]) {
    let module = module("abi_objects");
    let session = module.open_session();
    let mut r = Reader::new(data);
    let mut created: Vec<CK_OBJECT_HANDLE> = Vec::new();
    let mut steps = 0;
    while !r.is_empty() && steps < 24 {
        steps += 1;
        // SAFETY: every pointer passed below is NULL or valid for the length it is passed with.
        unsafe {
            match r.u8() % 7 {
                0 => {
                    let mut template = RawTemplate::read(&mut r);
                    let mut object = CK_INVALID_HANDLE;
                    let rv = C_CreateObject(session, template.ptr(), template.count(), &mut object);
                    trace("C_CreateObject", rv);
                    if rv == CKR_OK {
                        created.push(object);
                    }
                }
                1 => {
                    let object = handle(&mut r, &created);
                    let mut template = RawTemplate::read(&mut r);
                    let rv = C_SetAttributeValue(session, object, template.ptr(), template.count());
                    trace("C_SetAttributeValue", rv);
                }
                2 => {
                    let object = handle(&mut r, &created);
                    let mut template = OutTemplate::read(&mut r);
                    let rv = C_GetAttributeValue(session, object, template.ptr(), template.count());
                    trace("C_GetAttributeValue", rv);
                    template.check(rv);
                }
                3 => {
                    let object = handle(&mut r, &created);
                    let mut template = RawTemplate::read(&mut r);
                    let mut copy = CK_INVALID_HANDLE;
                    let rv =
                        C_CopyObject(session, object, template.ptr(), template.count(), &mut copy);
                    trace("C_CopyObject", rv);
                    if rv == CKR_OK {
                        created.push(copy);
                    }
                }
                4 => {
                    let mut template = RawTemplate::read(&mut r);
                    let rv = C_FindObjectsInit(session, template.ptr(), template.count());
                    if trace("C_FindObjectsInit", rv) == CKR_OK {
                        let max = usize::from(r.u8() % 8);
                        let mut found = vec![CK_INVALID_HANDLE; max].into_boxed_slice();
                        let mut count: CK_ULONG = 0;
                        let rv = C_FindObjects(
                            session,
                            if max == 0 {
                                std::ptr::null_mut()
                            } else {
                                found.as_mut_ptr()
                            },
                            max as CK_ULONG,
                            &mut count,
                        );
                        trace("C_FindObjects", rv);
                        if rv == CKR_OK {
                            assert!(count as usize <= max, "C_FindObjects overran its array");
                        }
                        assert_eq!(C_FindObjectsFinal(session), CKR_OK);
                    }
                }
                5 => {
                    let object = handle(&mut r, &created);
                    if trace("C_DestroyObject", C_DestroyObject(session, object)) == CKR_OK {
                        created.retain(|h| *h != object);
                    }
                }
                _ => {
                    let object = handle(&mut r, &created);
                    let mut size: CK_ULONG = 0;
                    trace(
                        "C_GetObjectSize",
                        C_GetObjectSize(session, object, &mut size),
                    );
                }
            }
        }
    }
    for object in created {
        // SAFETY: no pointers. Session objects go with the session anyway; token objects must not.
        let rv = unsafe { C_DestroyObject(session, object) };
        assert!(
            rv == CKR_OK || rv == CKR_ACTION_PROHIBITED,
            "cleanup: C_DestroyObject = {rv:#x}"
        );
    }
    module.close_session(session);
}
