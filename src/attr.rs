//! Attribute values as the core sees them: owned byte strings in the PKCS#11 encoding of this platform
//! (`CK_BBOOL` one byte, `CK_ULONG` native width), plus helpers to build and read them.

use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::collections::BTreeMap;

/// An owned attribute template, as passed to `C_CreateObject`, `C_FindObjectsInit`, ...
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template(pub Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

/// The attributes of one object.
pub type AttrMap = BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>;

pub const ULONG_LEN: usize = std::mem::size_of::<CK_ULONG>();

pub fn bool_value(value: bool) -> Vec<u8> {
    vec![if value { CK_TRUE } else { CK_FALSE }]
}

pub fn ulong_value(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

/// Reads a `CK_BBOOL`; anything but one byte is `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn read_bool(bytes: &[u8]) -> Result<bool> {
    match bytes {
        [b] => Ok(*b != CK_FALSE),
        _ => Err(Error::AttributeValueInvalid),
    }
}

/// Reads a `CK_ULONG`; anything but the native width is `CKR_ATTRIBUTE_VALUE_INVALID`.
pub fn read_ulong(bytes: &[u8]) -> Result<CK_ULONG> {
    let array: [u8; ULONG_LEN] = bytes.try_into().map_err(|_| Error::AttributeValueInvalid)?;
    Ok(CK_ULONG::from_ne_bytes(array))
}

/// Reads a `CK_MECHANISM_TYPE` array (`CKA_ALLOWED_MECHANISMS`).
pub fn read_ulongs(bytes: &[u8]) -> Result<Vec<CK_ULONG>> {
    if !bytes.len().is_multiple_of(ULONG_LEN) {
        return Err(Error::AttributeValueInvalid);
    }
    bytes.chunks_exact(ULONG_LEN).map(read_ulong).collect()
}

impl Drop for Template {
    /// Templates carry key components on import and unwrap: wipe them when done.
    fn drop(&mut self) {
        for (_, value) in self.0.iter_mut() {
            zeroize::Zeroize::zeroize(value);
        }
    }
}

impl Template {
    pub fn new() -> Self {
        Template(Vec::new())
    }

    pub fn with(mut self, kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Self {
        self.0.push((kind, value));
        self
    }

    /// The value given for `kind`; the last one wins if a template repeats a type.
    pub fn get(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    pub fn bool(&self, kind: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
        self.get(kind).map(read_bool).transpose()
    }

    pub fn ulong(&self, kind: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.get(kind).map(read_ulong).transpose()
    }

    /// Whether every attribute of the template is present in `attrs` with the same value.
    pub fn matches(&self, attrs: &AttrMap) -> bool {
        self.0
            .iter()
            .all(|(kind, value)| attrs.get(kind).is_some_and(|v| v == value))
    }
}

/// Typed reads of an object's attribute map.
pub trait AttrMapExt {
    fn flag(&self, kind: CK_ATTRIBUTE_TYPE) -> bool;
    fn ulong(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG>;
    fn bytes(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&[u8]>;
}

impl AttrMapExt for AttrMap {
    fn flag(&self, kind: CK_ATTRIBUTE_TYPE) -> bool {
        self.get(&kind)
            .is_some_and(|v| read_bool(v).unwrap_or(false))
    }

    fn ulong(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(&kind).and_then(|v| read_ulong(v).ok())
    }

    fn bytes(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.get(&kind).map(Vec::as_slice)
    }
}
