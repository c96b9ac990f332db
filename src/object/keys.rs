//! Keys as objects: turning key attributes into engine keys and back, importing keys and certificates
//! with `C_CreateObject`, and generating key pairs and secret keys.

use super::{build, class_and_type, Object, Origin};
use crate::attr::{bool_value, ulong_value, AttrMap, AttrMapExt, Template};
use crate::crypto::asym::{PrivateKey, PublicKey, RsaParts};
use crate::crypto::der::{self as enc, EcParams};
use crate::crypto::{random_vec, symmetric, HashAlg};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

fn required(attrs: &AttrMap, attr: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    attrs
        .bytes(attr)
        .filter(|v| !v.is_empty())
        .ok_or(Error::TemplateIncomplete)
}

fn secret(attrs: &AttrMap, attr: CK_ATTRIBUTE_TYPE) -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(required(attrs, attr)?.to_vec()))
}

fn curve_of(attrs: &AttrMap) -> Result<EcParams> {
    enc::parse_ec_params(required(attrs, CKA_EC_PARAMS)?)
}

/// The engine key of a private key object.
pub fn private_key(object: &Object) -> Result<PrivateKey> {
    let attrs = &object.attrs;
    match object.key_type() {
        Some(CKK_RSA) => PrivateKey::rsa_from_parts(&RsaParts {
            modulus: required(attrs, CKA_MODULUS)?.to_vec(),
            public_exponent: required(attrs, CKA_PUBLIC_EXPONENT)?.to_vec(),
            private_exponent: secret(attrs, CKA_PRIVATE_EXPONENT)?,
            prime_1: secret(attrs, CKA_PRIME_1)?,
            prime_2: secret(attrs, CKA_PRIME_2)?,
            exponent_1: secret(attrs, CKA_EXPONENT_1)?,
            exponent_2: secret(attrs, CKA_EXPONENT_2)?,
            coefficient: secret(attrs, CKA_COEFFICIENT)?,
        }),
        Some(CKK_EC) => match curve_of(attrs)? {
            EcParams::Weierstrass(curve) => {
                PrivateKey::ec_from_scalar(curve, required(attrs, CKA_VALUE)?)
            }
            EcParams::Ed25519 => Err(Error::TemplateInconsistent),
        },
        Some(CKK_EC_EDWARDS) => match curve_of(attrs)? {
            EcParams::Ed25519 => PrivateKey::ed25519_from_seed(required(attrs, CKA_VALUE)?),
            EcParams::Weierstrass(_) => Err(Error::TemplateInconsistent),
        },
        _ => Err(Error::KeyTypeInconsistent),
    }
}

/// The public key of a public or private key object.
pub fn public_key(object: &Object) -> Result<PublicKey> {
    let attrs = &object.attrs;
    match object.key_type() {
        Some(CKK_RSA) => Ok(PublicKey::Rsa {
            modulus: strip_zeros(required(attrs, CKA_MODULUS)?),
            public_exponent: strip_zeros(required(attrs, CKA_PUBLIC_EXPONENT)?),
        }),
        Some(CKK_EC) | Some(CKK_EC_EDWARDS) => {
            let params = curve_of(attrs)?;
            let raw_len = match params {
                EcParams::Weierstrass(curve) => 1 + 2 * curve.field_len(),
                EcParams::Ed25519 => 32,
            };
            let point = enc::parse_ec_point(required(attrs, CKA_EC_POINT)?, raw_len);
            Ok(match params {
                EcParams::Weierstrass(curve) => PublicKey::Ec { curve, point },
                EcParams::Ed25519 => PublicKey::Ed25519 { point },
            })
        }
        _ => Err(Error::KeyTypeInconsistent),
    }
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// The public attributes that mirror a public key (on public and private key objects).
pub(crate) fn public_material(key: &PublicKey, on_private: bool) -> Result<AttrMap> {
    let mut attrs = AttrMap::new();
    match key {
        PublicKey::Rsa {
            modulus,
            public_exponent,
        } => {
            attrs.insert(CKA_MODULUS, modulus.clone());
            attrs.insert(CKA_PUBLIC_EXPONENT, public_exponent.clone());
            if !on_private {
                attrs.insert(
                    CKA_MODULUS_BITS,
                    ulong_value((modulus.len() * 8) as CK_ULONG),
                );
            }
        }
        PublicKey::Ec { curve, point } => {
            attrs.insert(
                CKA_EC_PARAMS,
                enc::encode_ec_params(EcParams::Weierstrass(*curve)),
            );
            attrs.insert(CKA_EC_POINT, enc::encode_ec_point(point)?);
        }
        PublicKey::Ed25519 { point } => {
            attrs.insert(CKA_EC_PARAMS, enc::encode_ec_params(EcParams::Ed25519));
            attrs.insert(CKA_EC_POINT, enc::encode_ec_point(point)?);
        }
    }
    attrs.insert(CKA_PUBLIC_KEY_INFO, enc::public_key_info(key)?);
    Ok(attrs)
}

fn private_material(key: &PrivateKey, rsa: Option<&RsaParts>) -> Result<AttrMap> {
    let mut attrs = public_material(&key.public_key(), true)?;
    match (key, rsa) {
        (PrivateKey::Rsa { .. }, Some(parts)) => {
            attrs.insert(CKA_PRIVATE_EXPONENT, parts.private_exponent.to_vec());
            attrs.insert(CKA_PRIME_1, parts.prime_1.to_vec());
            attrs.insert(CKA_PRIME_2, parts.prime_2.to_vec());
            attrs.insert(CKA_EXPONENT_1, parts.exponent_1.to_vec());
            attrs.insert(CKA_EXPONENT_2, parts.exponent_2.to_vec());
            attrs.insert(CKA_COEFFICIENT, parts.coefficient.to_vec());
        }
        (PrivateKey::Rsa { .. }, None) => {
            return Err(Error::General("RSA components missing".into()))
        }
        _ => {
            attrs.insert(CKA_VALUE, key.secret_value()?.to_vec());
        }
    }
    Ok(attrs)
}

/// Validates and completes an object given to `C_CreateObject`.
pub fn create(template: &Template) -> Result<Object> {
    let (class, key_type) = class_and_type(template, None, None)?;
    let mut object = build(class, key_type, template, Origin::Created, AttrMap::new())?;
    let attrs = &mut object.attrs;
    match class {
        CKO_CERTIFICATE => {
            if attrs.ulong(CKA_CERTIFICATE_TYPE) != Some(CKC_X_509) {
                return Err(if attrs.contains_key(&CKA_CERTIFICATE_TYPE) {
                    Error::AttributeValueInvalid
                } else {
                    Error::TemplateIncomplete
                });
            }
            let value = required(attrs, CKA_VALUE)?.to_vec();
            let fields = enc::certificate_fields(&value)?;
            attrs.entry(CKA_SUBJECT).or_insert(fields.subject);
            attrs.entry(CKA_ISSUER).or_insert(fields.issuer);
            attrs
                .entry(CKA_SERIAL_NUMBER)
                .or_insert(fields.serial_number);
            attrs
                .entry(CKA_PUBLIC_KEY_INFO)
                .or_insert(fields.public_key_info);
            attrs.insert(CKA_CHECK_VALUE, HashAlg::Sha1.hash(&value)[..3].to_vec());
        }
        CKO_PUBLIC_KEY => {
            let key = public_key(&object)?;
            key.validate()?;
            for (attr, value) in public_material(&key, false)? {
                if attr == CKA_EC_POINT {
                    continue;
                }
                object.attrs.insert(attr, value);
            }
        }
        CKO_PRIVATE_KEY => {
            let key = private_key(&object)?;
            if let PrivateKey::Rsa { .. } = key {
                if strip_zeros(required(&object.attrs, CKA_MODULUS)?) != key_modulus(&key) {
                    return Err(Error::TemplateInconsistent);
                }
            }
            for (attr, value) in public_material(&key.public_key(), true)? {
                object.attrs.entry(attr).or_insert(value);
            }
        }
        CKO_SECRET_KEY => {
            let value = required(attrs, CKA_VALUE)?.to_vec();
            if let Some(len) = attrs.ulong(CKA_VALUE_LEN) {
                if len as usize != value.len() {
                    return Err(Error::TemplateInconsistent);
                }
            }
            complete_secret(attrs, key_type, &value)?;
        }
        _ => {}
    }
    Ok(object)
}

fn key_modulus(key: &PrivateKey) -> Vec<u8> {
    match key.public_key() {
        PublicKey::Rsa { modulus, .. } => modulus,
        _ => Vec::new(),
    }
}

fn complete_secret(attrs: &mut AttrMap, key_type: Option<CK_KEY_TYPE>, value: &[u8]) -> Result<()> {
    let check = match key_type {
        Some(CKK_AES) => symmetric::aes_check_value(value)?,
        Some(CKK_GENERIC_SECRET) if !value.is_empty() => symmetric::generic_check_value(value),
        _ => return Err(Error::AttributeValueInvalid),
    };
    attrs.insert(CKA_VALUE_LEN, ulong_value(value.len() as CK_ULONG));
    attrs.insert(CKA_CHECK_VALUE, check);
    Ok(())
}

/// A key pair generated by `mechanism` from the caller's two templates.
pub fn generate_key_pair(
    mechanism: CK_MECHANISM_TYPE,
    public_template: &Template,
    private_template: &Template,
) -> Result<(Object, Object)> {
    let (key_type, key, rsa_parts) = match mechanism {
        CKM_RSA_PKCS_KEY_PAIR_GEN => {
            let bits = public_template
                .ulong(CKA_MODULUS_BITS)?
                .ok_or(Error::TemplateIncomplete)?;
            if let Some(exponent) = public_template.get(CKA_PUBLIC_EXPONENT) {
                if strip_zeros(exponent) != [0x01, 0x00, 0x01] {
                    return Err(Error::TemplateInconsistent);
                }
            }
            let (key, parts) = PrivateKey::generate_rsa(bits as usize)?;
            (CKK_RSA, key, Some(parts))
        }
        CKM_EC_KEY_PAIR_GEN | CKM_EC_EDWARDS_KEY_PAIR_GEN => {
            let params = public_template
                .get(CKA_EC_PARAMS)
                .or(private_template.get(CKA_EC_PARAMS))
                .ok_or(Error::TemplateIncomplete)?;
            match (mechanism, enc::parse_ec_params(params)?) {
                (CKM_EC_KEY_PAIR_GEN, EcParams::Weierstrass(curve)) => {
                    (CKK_EC, PrivateKey::generate_ec(curve)?, None)
                }
                (CKM_EC_EDWARDS_KEY_PAIR_GEN, EcParams::Ed25519) => {
                    (CKK_EC_EDWARDS, PrivateKey::generate_ed25519()?, None)
                }
                _ => return Err(Error::TemplateInconsistent),
            }
        }
        _ => return Err(Error::MechanismInvalid),
    };
    let mut public_given = public_template.clone();
    public_given.0.retain(|(attr, _)| {
        !matches!(
            *attr,
            CKA_MODULUS_BITS | CKA_PUBLIC_EXPONENT | CKA_EC_PARAMS
        )
    });
    let mut private_given = private_template.clone();
    private_given.0.retain(|(attr, _)| *attr != CKA_EC_PARAMS);
    let (_, public_type) = class_and_type(&public_given, Some(CKO_PUBLIC_KEY), Some(key_type))?;
    let (_, private_type) = class_and_type(&private_given, Some(CKO_PRIVATE_KEY), Some(key_type))?;
    let public = build(
        CKO_PUBLIC_KEY,
        public_type,
        &public_given,
        Origin::Generated(mechanism),
        public_material(&key.public_key(), false)?,
    )?;
    let private = build(
        CKO_PRIVATE_KEY,
        private_type,
        &private_given,
        Origin::Generated(mechanism),
        private_material(&key, rsa_parts.as_ref())?,
    )?;
    Ok((public, private))
}

/// A secret key generated by `mechanism`.
pub fn generate_secret(mechanism: CK_MECHANISM_TYPE, template: &Template) -> Result<Object> {
    let key_type = match mechanism {
        CKM_AES_KEY_GEN => CKK_AES,
        CKM_GENERIC_SECRET_KEY_GEN => CKK_GENERIC_SECRET,
        _ => return Err(Error::MechanismInvalid),
    };
    let len = template
        .ulong(CKA_VALUE_LEN)?
        .ok_or(Error::TemplateIncomplete)? as usize;
    let valid = match key_type {
        CKK_AES => matches!(len, 16 | 24 | 32),
        _ => (1..=512).contains(&len),
    };
    if !valid {
        return Err(Error::KeySizeRange);
    }
    let mut given = template.clone();
    given.0.retain(|(attr, _)| *attr != CKA_VALUE_LEN);
    let (_, key_type_given) = class_and_type(&given, Some(CKO_SECRET_KEY), Some(key_type))?;
    let value = random_vec(len)?;
    let mut material = AttrMap::new();
    material.insert(CKA_VALUE, value.to_vec());
    complete_secret(&mut material, Some(key_type), &value)?;
    build(
        CKO_SECRET_KEY,
        key_type_given,
        &given,
        Origin::Generated(mechanism),
        material,
    )
}

/// A secret key object holding `value`, made by unwrapping or derivation.
pub fn secret_from_value(
    template: &Template,
    origin: Origin,
    value: &[u8],
    default_type: Option<CK_KEY_TYPE>,
) -> Result<Object> {
    let mut given = template.clone();
    let wanted_len = given.ulong(CKA_VALUE_LEN)?;
    given.0.retain(|(attr, _)| *attr != CKA_VALUE_LEN);
    // The default key type applies only when the template names none: unwrapping or deriving an
    // AES key is as valid as a generic secret.
    let fallback_type = match given.ulong(CKA_KEY_TYPE)? {
        Some(_) => None,
        None => default_type.or(Some(CKK_GENERIC_SECRET)),
    };
    let (class, key_type) = class_and_type(&given, Some(CKO_SECRET_KEY), fallback_type)?;
    if class != CKO_SECRET_KEY {
        return Err(Error::TemplateInconsistent);
    }
    let value = match wanted_len {
        Some(len) if (len as usize) < value.len() => &value[..len as usize],
        Some(len) if len as usize > value.len() => return Err(Error::TemplateInconsistent),
        _ => value,
    };
    let mut material = AttrMap::new();
    material.insert(CKA_VALUE, value.to_vec());
    complete_secret(&mut material, key_type, value)?;
    let mut object = build(class, key_type, &given, origin, material)?;
    object.attrs.insert(CKA_LOCAL, bool_value(false));
    Ok(object)
}
