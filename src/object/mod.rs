//! Objects and their attributes: building an object from a template (with the defaults clients expect),
//! reading attributes under the sensitivity rules, changing and copying them.

pub mod keys;
pub mod rules;

use crate::attr::{bool_value, read_ulongs, ulong_value, AttrMap, AttrMapExt, Template};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use rules::{rule_for, Kind, Scope};

/// A PKCS#11 object: its attributes, key components included (they are sealed when stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub attrs: AttrMap,
}

impl Drop for Object {
    /// Attribute values include key components: wipe them when the object goes.
    fn drop(&mut self) {
        for value in self.attrs.values_mut() {
            zeroize::Zeroize::zeroize(value);
        }
    }
}

/// Where a new object comes from: it decides which attributes a template may carry and what the
/// token-set attributes (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`...) become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Created,
    Generated(CK_MECHANISM_TYPE),
    Unwrapped,
    Derived,
}

/// The outcome of reading one attribute, as `C_GetAttributeValue` reports it per attribute.
pub enum AttrRead<'a> {
    Value(&'a [u8]),
    Sensitive,
    Invalid,
}

impl Object {
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.attrs
            .ulong(CKA_CLASS)
            .unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.attrs.ulong(CKA_KEY_TYPE)
    }

    pub fn scope(&self) -> Scope {
        rules::scope_of(self.class(), self.key_type()).unwrap_or(0)
    }

    pub fn flag(&self, attr: CK_ATTRIBUTE_TYPE) -> bool {
        self.attrs.flag(attr)
    }

    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    pub fn label(&self) -> &[u8] {
        self.attrs.bytes(CKA_LABEL).unwrap_or_default()
    }

    /// Reads `attr` under the rules of `C_GetAttributeValue`.
    pub fn read(&self, attr: CK_ATTRIBUTE_TYPE) -> AttrRead<'_> {
        let Some(rule) = rule_for(attr, self.scope()) else {
            return AttrRead::Invalid;
        };
        let Some(value) = self.attrs.get(&attr) else {
            return AttrRead::Invalid;
        };
        if rule.flags & rules::F_SECRET != 0
            && (self.flag(CKA_SENSITIVE) || !self.flag(CKA_EXTRACTABLE))
        {
            return AttrRead::Sensitive;
        }
        AttrRead::Value(value)
    }

    /// Applies `C_SetAttributeValue`; nothing changes unless every attribute may change.
    pub fn set_attributes(&mut self, template: &Template) -> Result<()> {
        if !self.flag(CKA_MODIFIABLE) {
            return Err(Error::ActionProhibited);
        }
        let scope = self.scope();
        let mut updated = self.attrs.clone();
        for (attr, value) in &template.0 {
            let rule = rule_for(*attr, scope).ok_or(Error::AttributeTypeInvalid)?;
            check_kind(rule.kind, value)?;
            if rule.flags & rules::F_CHANGEABLE == 0 {
                if self.attrs.get(attr) == Some(value) {
                    continue;
                }
                return Err(Error::AttributeReadOnly);
            }
            if rule.flags & rules::F_TIGHTEN_ONLY != 0 {
                check_tightening(*attr, self.attrs.flag(*attr), value)?;
            }
            updated.insert(*attr, value.clone());
        }
        self.attrs = updated;
        Ok(())
    }

    /// The copy `C_CopyObject` makes with `template` applied.
    pub fn copy_with(&self, template: &Template) -> Result<Object> {
        if !self.flag(CKA_COPYABLE) {
            return Err(Error::ActionProhibited);
        }
        let scope = self.scope();
        let mut copy = self.clone();
        for (attr, value) in &template.0 {
            let rule = rule_for(*attr, scope).ok_or(Error::AttributeTypeInvalid)?;
            check_kind(rule.kind, value)?;
            if rule.flags & rules::F_COPYABLE == 0 {
                if self.attrs.get(attr) == Some(value) {
                    continue;
                }
                return Err(Error::AttributeReadOnly);
            }
            if rule.flags & rules::F_TIGHTEN_ONLY != 0 {
                check_tightening(*attr, self.attrs.flag(*attr), value)?;
            }
            copy.attrs.insert(*attr, value.clone());
        }
        Ok(copy)
    }

    /// Whether the key may be used with `mechanism` (`CKA_ALLOWED_MECHANISMS`, empty means any).
    pub fn allows_mechanism(&self, mechanism: CK_MECHANISM_TYPE) -> bool {
        match self.attrs.bytes(CKA_ALLOWED_MECHANISMS) {
            None | Some([]) => true,
            Some(list) => read_ulongs(list)
                .map(|l| l.contains(&mechanism))
                .unwrap_or(false),
        }
    }

    /// The size in bytes `C_GetObjectSize` reports: the attributes as stored.
    pub fn size(&self) -> usize {
        self.attrs.values().map(|v| v.len() + 16).sum()
    }
}

fn check_tightening(attr: CK_ATTRIBUTE_TYPE, current: bool, value: &[u8]) -> Result<()> {
    let new = crate::attr::read_bool(value)?;
    let loosens = match attr {
        CKA_SENSITIVE | CKA_WRAP_WITH_TRUSTED => current && !new,
        _ => !current && new,
    };
    if loosens {
        Err(Error::AttributeReadOnly)
    } else {
        Ok(())
    }
}

/// Checks that a value has the encoding its attribute's kind requires.
pub fn check_kind(kind: Kind, value: &[u8]) -> Result<()> {
    let ok = match kind {
        Kind::Bool => value.len() == 1,
        Kind::Ulong => value.len() == crate::attr::ULONG_LEN,
        Kind::Bytes => true,
        Kind::Date => {
            value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit))
        }
        Kind::Mechanisms => value.len().is_multiple_of(crate::attr::ULONG_LEN),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid)
    }
}

/// The class and key type a template names; a key class without a key type is incomplete.
pub fn class_and_type(
    template: &Template,
    default_class: Option<CK_OBJECT_CLASS>,
    default_type: Option<CK_KEY_TYPE>,
) -> Result<(CK_OBJECT_CLASS, Option<CK_KEY_TYPE>)> {
    let class = template
        .ulong(CKA_CLASS)?
        .or(default_class)
        .ok_or(Error::TemplateIncomplete)?;
    let key_type = match class {
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => Some(
            template
                .ulong(CKA_KEY_TYPE)?
                .or(default_type)
                .ok_or(Error::TemplateIncomplete)?,
        ),
        CKO_DATA | CKO_CERTIFICATE => None,
        _ => return Err(Error::AttributeValueInvalid),
    };
    if let (Some(given), Some(default)) = (template.ulong(CKA_CLASS)?, default_class) {
        if given != default {
            return Err(Error::TemplateInconsistent);
        }
    }
    if let (Some(given), Some(default), Some(_)) =
        (template.ulong(CKA_KEY_TYPE)?, default_type, key_type)
    {
        if given != default {
            return Err(Error::TemplateInconsistent);
        }
    }
    Ok((class, key_type))
}

/// Builds a new object from a caller's template and the attributes the token computed (`material`).
pub fn build(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
    template: &Template,
    origin: Origin,
    material: AttrMap,
) -> Result<Object> {
    let scope = rules::scope_of(class, key_type).ok_or(match key_type {
        Some(_) => Error::AttributeValueInvalid,
        None => Error::TemplateInconsistent,
    })?;
    let mut attrs = AttrMap::new();
    for (attr, value) in &template.0 {
        let rule = rule_for(*attr, scope).ok_or(Error::AttributeTypeInvalid)?;
        check_kind(rule.kind, value)?;
        if rule.flags & rules::F_TOKEN_SET != 0 {
            return Err(Error::AttributeReadOnly);
        }
        if origin != Origin::Created && rule.flags & rules::F_NOT_ON_GENERATE != 0 {
            return Err(Error::TemplateInconsistent);
        }
        attrs.insert(*attr, value.clone());
    }
    attrs.insert(CKA_CLASS, ulong_value(class));
    if let Some(key_type) = key_type {
        attrs.insert(CKA_KEY_TYPE, ulong_value(key_type));
    }
    for (attr, value) in material {
        attrs.insert(attr, value);
    }
    apply_defaults(&mut attrs, class, key_type, origin);
    Ok(Object { attrs })
}

fn apply_defaults(
    attrs: &mut AttrMap,
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
    origin: Origin,
) {
    let secret_class = matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY);
    let mut default = |attr: CK_ATTRIBUTE_TYPE, value: Vec<u8>| {
        attrs.entry(attr).or_insert(value);
    };
    default(CKA_TOKEN, bool_value(false));
    default(CKA_PRIVATE, bool_value(secret_class));
    default(CKA_MODIFIABLE, bool_value(true));
    default(CKA_COPYABLE, bool_value(true));
    default(CKA_DESTROYABLE, bool_value(true));
    default(CKA_LABEL, Vec::new());
    match class {
        CKO_DATA => {
            default(CKA_APPLICATION, Vec::new());
            default(CKA_OBJECT_ID, Vec::new());
            default(CKA_VALUE, Vec::new());
        }
        CKO_CERTIFICATE => {
            default(CKA_TRUSTED, bool_value(false));
            default(
                CKA_CERTIFICATE_CATEGORY,
                ulong_value(CK_CERTIFICATE_CATEGORY_UNSPECIFIED),
            );
            default(CKA_ID, Vec::new());
            default(CKA_START_DATE, Vec::new());
            default(CKA_END_DATE, Vec::new());
            default(CKA_URL, Vec::new());
            default(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Vec::new());
            default(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Vec::new());
            default(CKA_JAVA_MIDP_SECURITY_DOMAIN, ulong_value(0));
        }
        _ => {
            let generated = matches!(origin, Origin::Generated(_));
            default(CKA_ID, Vec::new());
            default(CKA_START_DATE, Vec::new());
            default(CKA_END_DATE, Vec::new());
            default(CKA_ALLOWED_MECHANISMS, Vec::new());
            default(CKA_LOCAL, bool_value(generated));
            let mechanism = match origin {
                Origin::Generated(mechanism) => mechanism,
                _ => CK_UNAVAILABLE_INFORMATION,
            };
            default(CKA_KEY_GEN_MECHANISM, ulong_value(mechanism));
            for (attr, value) in usage_defaults(class, key_type) {
                default(*attr, bool_value(*value));
            }
            match class {
                CKO_PUBLIC_KEY => {
                    default(CKA_SUBJECT, Vec::new());
                    default(CKA_TRUSTED, bool_value(false));
                }
                CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
                    if class == CKO_PRIVATE_KEY {
                        default(CKA_SUBJECT, Vec::new());
                        default(CKA_ALWAYS_AUTHENTICATE, bool_value(false));
                    } else {
                        default(CKA_TRUSTED, bool_value(false));
                    }
                    default(CKA_SENSITIVE, bool_value(true));
                    default(CKA_EXTRACTABLE, bool_value(false));
                    default(CKA_WRAP_WITH_TRUSTED, bool_value(false));
                    let sensitive = attrs.flag(CKA_SENSITIVE);
                    let extractable = attrs.flag(CKA_EXTRACTABLE);
                    let born_here = generated;
                    attrs
                        .entry(CKA_ALWAYS_SENSITIVE)
                        .or_insert(bool_value(born_here && sensitive));
                    attrs
                        .entry(CKA_NEVER_EXTRACTABLE)
                        .or_insert(bool_value(born_here && !extractable));
                }
                _ => {}
            }
        }
    }
}

/// Key-usage flags a template leaves out default to what the key type can do, as Java's keytool and
/// python-pkcs11 assume.
fn usage_defaults(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
) -> &'static [(CK_ATTRIBUTE_TYPE, bool)] {
    match (class, key_type) {
        (CKO_PUBLIC_KEY, Some(CKK_RSA)) => &[
            (CKA_ENCRYPT, true),
            (CKA_VERIFY, true),
            (CKA_WRAP, true),
            (CKA_VERIFY_RECOVER, false),
            (CKA_DERIVE, false),
        ],
        (CKO_PRIVATE_KEY, Some(CKK_RSA)) => &[
            (CKA_DECRYPT, true),
            (CKA_SIGN, true),
            (CKA_UNWRAP, true),
            (CKA_SIGN_RECOVER, false),
            (CKA_DERIVE, false),
        ],
        (CKO_PUBLIC_KEY, Some(CKK_EC)) => &[
            (CKA_ENCRYPT, false),
            (CKA_VERIFY, true),
            (CKA_WRAP, false),
            (CKA_VERIFY_RECOVER, false),
            (CKA_DERIVE, false),
        ],
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => &[
            (CKA_DECRYPT, false),
            (CKA_SIGN, true),
            (CKA_UNWRAP, false),
            (CKA_SIGN_RECOVER, false),
            (CKA_DERIVE, true),
        ],
        (CKO_PUBLIC_KEY, _) => &[
            (CKA_ENCRYPT, false),
            (CKA_VERIFY, true),
            (CKA_WRAP, false),
            (CKA_VERIFY_RECOVER, false),
            (CKA_DERIVE, false),
        ],
        (CKO_PRIVATE_KEY, _) => &[
            (CKA_DECRYPT, false),
            (CKA_SIGN, true),
            (CKA_UNWRAP, false),
            (CKA_SIGN_RECOVER, false),
            (CKA_DERIVE, false),
        ],
        (_, Some(CKK_AES)) => &[
            (CKA_ENCRYPT, true),
            (CKA_DECRYPT, true),
            (CKA_WRAP, true),
            (CKA_UNWRAP, true),
            (CKA_SIGN, false),
            (CKA_VERIFY, false),
            (CKA_DERIVE, false),
        ],
        _ => &[
            (CKA_ENCRYPT, false),
            (CKA_DECRYPT, false),
            (CKA_WRAP, false),
            (CKA_UNWRAP, false),
            (CKA_SIGN, true),
            (CKA_VERIFY, true),
            (CKA_DERIVE, false),
        ],
    }
}
