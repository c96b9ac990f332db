//! Encryption at rest, seen in the token database: `C_SetPIN` re-wraps only the token key (no object
//! row changes), and each sealed attribute blob is bound to its object, so swapping sealed blobs
//! between rows or editing a private object's public attributes is detected, never served.

mod common;

use common::*;
use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use rusqlite::{params, Connection};

fn store_objects(label: &str) -> (Pkcs11, cryptoki::slot::Slot) {
    let context = new_context();
    let slot = fresh_token_in(&context, label);
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    for (name, value) in [("alpha", b"secret of alpha"), ("beta-", b"secret of beta-")] {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(name.as_bytes().to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .unwrap();
    }
    (context, slot)
}

/// What the module now serves under `label`: the values it returns, or the error it reports.
fn values_under(
    context: &Pkcs11,
    slot: cryptoki::slot::Slot,
    label: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let session = context.open_ro_session(slot).map_err(|e| e.to_string())?;
    session
        .login(UserType::User, Some(&pin(USER_PIN)))
        .map_err(|e| e.to_string())?;
    let found = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(|e| e.to_string())?;
    found
        .into_iter()
        .map(|object| {
            session
                .get_attributes(object, &[AttributeType::Value])
                .map_err(|e| e.to_string())
                .map(|mut a| match a.pop() {
                    Some(Attribute::Value(v)) => v,
                    _ => Vec::new(),
                })
        })
        .collect()
}

fn token_file(slot: cryptoki::slot::Slot) -> std::path::PathBuf {
    scratch("store").join(format!("slot-{}.token", slot.id()))
}

fn edit_store(slot: cryptoki::slot::Slot, edit: impl FnOnce(&Connection, i64, i64)) {
    let db = Connection::open(token_file(slot)).unwrap();
    let uids: Vec<i64> = db
        .prepare("SELECT uid FROM objects WHERE private = 1 ORDER BY uid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(uids.len(), 2, "the two private data objects");
    edit(&db, uids[0], uids[1]);
}

fn swap_sealed(db: &Connection, first: i64, second: i64) {
    let sealed = |uid: i64| -> Option<Vec<u8>> {
        db.query_row(
            "SELECT sealed FROM objects WHERE uid = ?1",
            params![uid],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (a, b) = (sealed(first), sealed(second));
    assert!(a.is_some() && b.is_some(), "private objects are sealed");
    db.execute(
        "UPDATE objects SET sealed = ?1 WHERE uid = ?2",
        params![b, first],
    )
    .unwrap();
    db.execute(
        "UPDATE objects SET sealed = ?1 WHERE uid = ?2",
        params![a, second],
    )
    .unwrap();
}

/// Marks a private object public in its stored record: the last public attribute is CKA_PRIVATE.
fn make_public(db: &Connection, uid: i64) {
    let mut public: Vec<u8> = db
        .query_row(
            "SELECT public FROM objects WHERE uid = ?1",
            params![uid],
            |r| r.get(0),
        )
        .unwrap();
    let last = public.len() - 1;
    assert_eq!(public[last], 1, "CKA_PRIVATE is true");
    public[last] = 0;
    db.execute(
        "UPDATE objects SET public = ?1, private = 0 WHERE uid = ?2",
        params![public, uid],
    )
    .unwrap();
}

#[test]
fn pin_changes_touch_no_object_row_and_tampered_rows_are_detected() {
    configure();
    let (context, slot) = store_objects("tamper");
    assert_eq!(
        values_under(&context, slot, "alpha").unwrap(),
        vec![b"secret of alpha".to_vec()]
    );

    // Changing the PIN leaves every object row as it was.
    let rows = || -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
        let db = Connection::open(token_file(slot)).unwrap();
        let mut query = db
            .prepare("SELECT uid, public, sealed FROM objects ORDER BY uid")
            .unwrap();
        let all = query
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        all
    };
    let before = rows();
    let session = context.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    session
        .set_pin(&pin(USER_PIN), &pin("interim-pin"))
        .unwrap();
    assert_eq!(rows(), before);
    session
        .set_pin(&pin("interim-pin"), &pin(USER_PIN))
        .unwrap();
    drop(session);
    assert_eq!(rows(), before);
    context.finalize().unwrap();

    // Sealed blobs moved to another row do not open there.
    edit_store(slot, swap_sealed);
    let context = new_context();
    let swapped = values_under(&context, slot, "alpha");
    assert!(swapped.is_err(), "swapped rows were served: {swapped:?}");
    context.finalize().unwrap();

    // Put back, they read normally: the swap was the only damage.
    edit_store(slot, swap_sealed);
    let context = new_context();
    assert_eq!(
        values_under(&context, slot, "beta-").unwrap(),
        vec![b"secret of beta-".to_vec()]
    );
    context.finalize().unwrap();

    // A private object edited into a public one shows nothing of its secret without login, and its
    // record no longer opens with it.
    edit_store(slot, |db, first, _| make_public(db, first));
    let context = new_context();
    let session = context.open_ro_session(slot).unwrap();
    for object in session
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
    {
        for attribute in session
            .get_attributes(object, &[AttributeType::Value, AttributeType::Label])
            .unwrap()
        {
            assert!(
                !matches!(&attribute, Attribute::Value(v) | Attribute::Label(v) if v.starts_with(b"secret") || v == b"alpha" || v == b"beta-"),
                "{attribute:?} readable without login"
            );
        }
    }
    drop(session);
    let edited = values_under(&context, slot, "alpha");
    assert!(edited.is_err(), "an edited record was served: {edited:?}");
    context.finalize().unwrap();
}
