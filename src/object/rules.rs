//! Attribute rules as data: which attributes each object class carries, what type of value they hold,
//! and what may be done with them (given on create, generated only, changed later, kept secret).

use cryptoki_sys::*;

/// The object classes (and key types) an attribute belongs to, as a bit set.
pub type Scope = u32;
pub const DATA: Scope = 1;
pub const CERT: Scope = 1 << 1;
pub const PUB: Scope = 1 << 2;
pub const PRIV: Scope = 1 << 3;
pub const SECRET: Scope = 1 << 4;
pub const KEYS: Scope = PUB | PRIV | SECRET;
pub const ALL: Scope = DATA | CERT | KEYS;
pub const RSA: Scope = 1 << 8;
pub const EC: Scope = 1 << 9;
pub const EDWARDS: Scope = 1 << 10;
pub const AES: Scope = 1 << 11;
pub const GENERIC: Scope = 1 << 12;
pub const ANY_KEY_TYPE: Scope = RSA | EC | EDWARDS | AES | GENERIC;

/// How an attribute's value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Ulong,
    Bytes,
    Date,
    Mechanisms,
}

/// Flags of an attribute.
pub type Flags = u32;
/// A key component: never returned when the key is sensitive or unextractable; stored sealed.
pub const F_SECRET: Flags = 1;
/// Set by the token only: rejected in `C_CreateObject` and generation templates.
pub const F_TOKEN_SET: Flags = 1 << 1;
/// Must not appear in a generation template (the token computes it).
pub const F_NOT_ON_GENERATE: Flags = 1 << 2;
/// May be changed with `C_SetAttributeValue` on a modifiable object.
pub const F_CHANGEABLE: Flags = 1 << 3;
/// May be changed only in the direction that tightens protection (false→true for `CKA_SENSITIVE`...).
pub const F_TIGHTEN_ONLY: Flags = 1 << 4;
/// May be given to `C_CopyObject`'s template.
pub const F_COPYABLE: Flags = 1 << 5;

pub struct Rule {
    pub attr: CK_ATTRIBUTE_TYPE,
    pub scope: Scope,
    pub kind: Kind,
    pub flags: Flags,
}

const fn rule(attr: CK_ATTRIBUTE_TYPE, scope: Scope, kind: Kind, flags: Flags) -> Rule {
    Rule {
        attr,
        scope,
        kind,
        flags,
    }
}

const ANYK: Scope = ANY_KEY_TYPE;
const CH: Flags = F_CHANGEABLE;

/// Every attribute the module knows, with its rules.
pub static RULES: &[Rule] = &[
    rule(CKA_CLASS, ALL | ANYK, Kind::Ulong, 0),
    rule(CKA_TOKEN, ALL | ANYK, Kind::Bool, F_COPYABLE),
    rule(CKA_PRIVATE, ALL | ANYK, Kind::Bool, F_COPYABLE),
    rule(
        CKA_MODIFIABLE,
        ALL | ANYK,
        Kind::Bool,
        F_COPYABLE | F_TIGHTEN_ONLY,
    ),
    rule(
        CKA_COPYABLE,
        ALL | ANYK,
        Kind::Bool,
        F_COPYABLE | F_TIGHTEN_ONLY | CH,
    ),
    rule(
        CKA_DESTROYABLE,
        ALL | ANYK,
        Kind::Bool,
        F_COPYABLE | F_TIGHTEN_ONLY | CH,
    ),
    rule(CKA_LABEL, ALL | ANYK, Kind::Bytes, CH | F_COPYABLE),
    // Data objects.
    rule(CKA_APPLICATION, DATA | ANYK, Kind::Bytes, CH | F_COPYABLE),
    rule(CKA_OBJECT_ID, DATA | ANYK, Kind::Bytes, CH | F_COPYABLE),
    rule(CKA_VALUE, DATA | CERT | ANYK, Kind::Bytes, 0),
    // Certificates.
    rule(CKA_CERTIFICATE_TYPE, CERT | ANYK, Kind::Ulong, 0),
    rule(CKA_TRUSTED, CERT | PUB | SECRET | ANYK, Kind::Bool, 0),
    rule(CKA_CERTIFICATE_CATEGORY, CERT | ANYK, Kind::Ulong, 0),
    rule(
        CKA_CHECK_VALUE,
        CERT | SECRET | ANYK,
        Kind::Bytes,
        F_TOKEN_SET,
    ),
    rule(CKA_ISSUER, CERT | ANYK, Kind::Bytes, CH | F_COPYABLE),
    rule(CKA_SERIAL_NUMBER, CERT | ANYK, Kind::Bytes, CH | F_COPYABLE),
    rule(CKA_URL, CERT | ANYK, Kind::Bytes, 0),
    rule(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, CERT | ANYK, Kind::Bytes, 0),
    rule(CKA_HASH_OF_ISSUER_PUBLIC_KEY, CERT | ANYK, Kind::Bytes, 0),
    rule(CKA_JAVA_MIDP_SECURITY_DOMAIN, CERT | ANYK, Kind::Ulong, 0),
    rule(CKA_NAME_HASH_ALGORITHM, CERT | ANYK, Kind::Ulong, 0),
    rule(
        CKA_SUBJECT,
        CERT | PUB | PRIV | ANYK,
        Kind::Bytes,
        CH | F_COPYABLE,
    ),
    rule(CKA_ID, CERT | KEYS | ANYK, Kind::Bytes, CH | F_COPYABLE),
    rule(
        CKA_START_DATE,
        CERT | KEYS | ANYK,
        Kind::Date,
        CH | F_COPYABLE,
    ),
    rule(
        CKA_END_DATE,
        CERT | KEYS | ANYK,
        Kind::Date,
        CH | F_COPYABLE,
    ),
    rule(
        CKA_PUBLIC_KEY_INFO,
        CERT | PUB | PRIV | ANYK,
        Kind::Bytes,
        F_NOT_ON_GENERATE,
    ),
    // Keys.
    rule(CKA_KEY_TYPE, KEYS | ANYK, Kind::Ulong, 0),
    rule(CKA_DERIVE, KEYS | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(CKA_LOCAL, KEYS | ANYK, Kind::Bool, F_TOKEN_SET),
    rule(CKA_KEY_GEN_MECHANISM, KEYS | ANYK, Kind::Ulong, F_TOKEN_SET),
    rule(
        CKA_ALLOWED_MECHANISMS,
        KEYS | ANYK,
        Kind::Mechanisms,
        CH | F_COPYABLE,
    ),
    rule(
        CKA_ENCRYPT,
        PUB | SECRET | ANYK,
        Kind::Bool,
        CH | F_COPYABLE,
    ),
    rule(CKA_VERIFY, PUB | SECRET | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(CKA_VERIFY_RECOVER, PUB | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(CKA_WRAP, PUB | SECRET | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(
        CKA_DECRYPT,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        CH | F_COPYABLE,
    ),
    rule(CKA_SIGN, PRIV | SECRET | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(CKA_SIGN_RECOVER, PRIV | ANYK, Kind::Bool, CH | F_COPYABLE),
    rule(
        CKA_UNWRAP,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        CH | F_COPYABLE,
    ),
    rule(
        CKA_SENSITIVE,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        CH | F_TIGHTEN_ONLY | F_COPYABLE,
    ),
    rule(
        CKA_EXTRACTABLE,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        CH | F_TIGHTEN_ONLY | F_COPYABLE,
    ),
    rule(
        CKA_ALWAYS_SENSITIVE,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        F_TOKEN_SET,
    ),
    rule(
        CKA_NEVER_EXTRACTABLE,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        F_TOKEN_SET,
    ),
    rule(
        CKA_WRAP_WITH_TRUSTED,
        PRIV | SECRET | ANYK,
        Kind::Bool,
        CH | F_TIGHTEN_ONLY | F_COPYABLE,
    ),
    rule(CKA_ALWAYS_AUTHENTICATE, PRIV | ANYK, Kind::Bool, 0),
    // RSA.
    rule(
        CKA_MODULUS,
        PUB | PRIV | RSA,
        Kind::Bytes,
        F_NOT_ON_GENERATE,
    ),
    rule(CKA_MODULUS_BITS, PUB | RSA, Kind::Ulong, 0),
    rule(CKA_PUBLIC_EXPONENT, PUB | PRIV | RSA, Kind::Bytes, 0),
    rule(
        CKA_PRIVATE_EXPONENT,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(
        CKA_PRIME_1,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(
        CKA_PRIME_2,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(
        CKA_EXPONENT_1,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(
        CKA_EXPONENT_2,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(
        CKA_COEFFICIENT,
        PRIV | RSA,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    // EC and Edwards.
    rule(CKA_EC_PARAMS, PUB | PRIV | EC | EDWARDS, Kind::Bytes, 0),
    rule(
        CKA_EC_POINT,
        PUB | PRIV | EC | EDWARDS,
        Kind::Bytes,
        F_NOT_ON_GENERATE,
    ),
    // Secret keys and EC/Edwards private values.
    rule(
        CKA_VALUE,
        PRIV | SECRET | EC | EDWARDS | AES | GENERIC,
        Kind::Bytes,
        F_SECRET | F_NOT_ON_GENERATE,
    ),
    rule(CKA_VALUE_LEN, SECRET | AES | GENERIC, Kind::Ulong, 0),
];

/// The scope bits of an object of `class` (and `key_type` for keys).
pub fn scope_of(class: CK_OBJECT_CLASS, key_type: Option<CK_KEY_TYPE>) -> Option<Scope> {
    let class_bits = match class {
        CKO_DATA => DATA,
        CKO_CERTIFICATE => CERT,
        CKO_PUBLIC_KEY => PUB,
        CKO_PRIVATE_KEY => PRIV,
        CKO_SECRET_KEY => SECRET,
        _ => return None,
    };
    let type_bits = match key_type {
        None => ANY_KEY_TYPE,
        Some(CKK_RSA) => RSA,
        Some(CKK_EC) => EC,
        Some(CKK_EC_EDWARDS) => EDWARDS,
        Some(CKK_AES) => AES,
        Some(CKK_GENERIC_SECRET) => GENERIC,
        Some(_) => return None,
    };
    Some(class_bits | type_bits)
}

/// The rule for `attr` on an object of `scope`, if the attribute belongs to it.
pub fn rule_for(attr: CK_ATTRIBUTE_TYPE, scope: Scope) -> Option<&'static Rule> {
    BY_ATTRIBUTE
        .get(&attr)?
        .iter()
        .copied()
        .find(|r| r.scope & scope & ALL != 0 && r.scope & scope & ANY_KEY_TYPE != 0)
}

/// The rules by attribute type: lookups are on every attribute read, so they do not scan the table.
static BY_ATTRIBUTE: std::sync::LazyLock<
    std::collections::HashMap<CK_ATTRIBUTE_TYPE, Vec<&'static Rule>>,
> = std::sync::LazyLock::new(|| {
    let mut map: std::collections::HashMap<CK_ATTRIBUTE_TYPE, Vec<&'static Rule>> =
        Default::default();
    for rule in RULES {
        map.entry(rule.attr).or_default().push(rule);
    }
    map
});
