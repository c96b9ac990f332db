//! The mechanism table (`C_GetMechanismList` / `C_GetMechanismInfo`), key generation for every key
//! type and size the module offers, digests against known values, and `C_GenerateRandom`.

#[macro_use]
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use cryptoki_sys::*;
use std::collections::BTreeMap;

const SIGN: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const EC: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
const RSA_BITS: (CK_ULONG, CK_ULONG) = (2048, 4096);
const EC_BITS: (CK_ULONG, CK_ULONG) = (256, 521);

/// What the module must offer (issue 3), with key sizes and flags.
fn expected() -> BTreeMap<CK_MECHANISM_TYPE, ((CK_ULONG, CK_ULONG), CK_FLAGS)> {
    let crypt = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    let mut table = vec![
        (CKM_RSA_PKCS_KEY_PAIR_GEN, RSA_BITS, CKF_GENERATE_KEY_PAIR),
        (CKM_RSA_PKCS, RSA_BITS, SIGN | crypt),
        (CKM_RSA_PKCS_OAEP, RSA_BITS, crypt),
        (CKM_RSA_PKCS_PSS, RSA_BITS, SIGN),
        (CKM_EC_KEY_PAIR_GEN, EC_BITS, CKF_GENERATE_KEY_PAIR | EC),
        (CKM_ECDSA, EC_BITS, SIGN | EC),
        (CKM_ECDH1_DERIVE, EC_BITS, CKF_DERIVE | EC),
        (
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            (255, 255),
            CKF_GENERATE_KEY_PAIR,
        ),
        (CKM_EDDSA, (255, 255), SIGN),
        (CKM_AES_KEY_GEN, (16, 32), CKF_GENERATE),
        (CKM_AES_GCM, (16, 32), CKF_ENCRYPT | CKF_DECRYPT),
        (CKM_AES_CBC_PAD, (16, 32), crypt),
        (CKM_AES_KEY_WRAP, (16, 32), CKF_WRAP | CKF_UNWRAP),
        (CKM_AES_KEY_WRAP_PAD, (16, 32), CKF_WRAP | CKF_UNWRAP),
        (CKM_GENERIC_SECRET_KEY_GEN, (1, 512), CKF_GENERATE),
    ];
    for m in [
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
    ] {
        table.push((m, RSA_BITS, SIGN));
    }
    for m in [
        CKM_ECDSA_SHA1,
        CKM_ECDSA_SHA224,
        CKM_ECDSA_SHA256,
        CKM_ECDSA_SHA384,
        CKM_ECDSA_SHA512,
    ] {
        table.push((m, EC_BITS, SIGN | EC));
    }
    for m in [CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512] {
        table.push((m, (0, 0), CKF_DIGEST));
    }
    for m in [CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC] {
        table.push((m, (1, 512), SIGN));
    }
    table
        .into_iter()
        .map(|(m, sizes, flags)| (m, (sizes, flags)))
        .collect()
}

#[test]
fn mechanism_list_and_info_are_exact() {
    let slot = fresh_token("mechlist");
    // Raw, because cryptoki drops the types it does not know (SHA-224 among them).
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(
            C_GetMechanismList,
            slot.id(),
            std::ptr::null_mut(),
            &mut count
        ),
        CKR_OK
    );
    let mut listed = vec![0 as CK_MECHANISM_TYPE; count as usize];
    assert_eq!(
        ck!(
            C_GetMechanismList,
            slot.id(),
            listed.as_mut_ptr(),
            &mut count
        ),
        CKR_OK
    );
    assert_eq!(count as usize, listed.len());
    let mut unique = listed.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "no mechanism is listed twice");
    let expected = expected();
    assert_eq!(
        unique,
        expected.keys().copied().collect::<Vec<_>>(),
        "the list holds exactly the mechanisms issue 3 names"
    );
    for (mechanism, ((min, max), flags)) in &expected {
        let mut info = CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: 0,
        };
        assert_eq!(
            ck!(C_GetMechanismInfo, slot.id(), *mechanism, &mut info),
            CKR_OK
        );
        assert_eq!(
            (info.ulMinKeySize, info.ulMaxKeySize, info.flags),
            (*min, *max, *flags),
            "mechanism {mechanism:#x}"
        );
    }
    let mut info = CK_MECHANISM_INFO {
        ulMinKeySize: 0,
        ulMaxKeySize: 0,
        flags: 0,
    };
    assert_eq!(
        ck!(C_GetMechanismInfo, slot.id(), CKM_DES3_CBC, &mut info),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        ck!(C_GetMechanismInfo, 0xdead_beef, CKM_SHA256, &mut info),
        CKR_SLOT_ID_INVALID
    );
}

#[test]
fn rsa_keys_of_every_offered_size_are_generated() {
    let (_, session) = user_session("rsagen");
    for bits in [2048u64, 3072, 4096] {
        let (public, private) = rsa_pair(&session, bits);
        let modulus = bytes_attr(&session, public, AttributeType::Modulus);
        assert_eq!(modulus.len() * 8, bits as usize);
        assert_eq!(modulus[0] & 0x80, 0x80, "the top bit is set");
        assert_eq!(
            bytes_attr(&session, public, AttributeType::PublicExponent),
            [1, 0, 1]
        );
        assert_eq!(
            bytes_attr(&session, private, AttributeType::Modulus),
            modulus
        );
        let signature = session
            .sign(&Mechanism::Sha256RsaPkcs, private, b"sized")
            .unwrap();
        assert_eq!(signature.len() * 8, bits as usize);
        session
            .verify(&Mechanism::Sha256RsaPkcs, public, b"sized", &signature)
            .unwrap();
    }
    let generate = |public: &[Attribute]| {
        session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, public, &[])
    };
    assert_eq!(
        rv(generate(&[Attribute::ModulusBits(1024.into())])),
        RvError::KeySizeRange
    );
    assert_eq!(
        rv(generate(&[Attribute::ModulusBits(8192.into())])),
        RvError::KeySizeRange
    );
    assert_eq!(rv(generate(&[])), RvError::TemplateIncomplete);
    // Attributes of the other half, or computed ones, do not belong in a generation template.
    assert!(matches!(
        rv(session.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::ModulusBits(2048.into())],
            &[Attribute::PrivateExponent(vec![1; 256])],
        )),
        RvError::TemplateInconsistent | RvError::AttributeReadOnly
    ));
}

#[test]
fn ec_and_edwards_keys_are_generated_on_every_curve() {
    let (_, session) = user_session("ecgen");
    for (curve, signature_len) in [(P256, 64), (P384, 96), (P521, 132)] {
        let (public, private) = ec_pair(&session, curve);
        let signature = session
            .sign(&Mechanism::EcdsaSha256, private, b"curve")
            .unwrap();
        assert_eq!(signature.len(), signature_len);
        session
            .verify(&Mechanism::EcdsaSha256, public, b"curve", &signature)
            .unwrap();
    }
    let (public, private) = ed25519_pair(&session);
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    let signature = session.sign(&eddsa, private, b"edwards").unwrap();
    assert_eq!(signature.len(), 64);
    session
        .verify(&eddsa, public, b"edwards", &signature)
        .unwrap();
    // Each generation mechanism keeps to its own curves.
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::EcParams(P256.to_vec())],
            &[]
        )),
        RvError::TemplateInconsistent
    );
    assert_eq!(
        rv(session.generate_key_pair(&Mechanism::EccKeyPairGen, &[], &[])),
        RvError::TemplateIncomplete
    );
}

#[test]
fn secret_keys_are_generated_in_the_offered_sizes() {
    let (_, session) = user_session("secretgen");
    for len in [16u64, 32] {
        let key = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(len.into()),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        assert_eq!(
            bytes_attr(&session, key, AttributeType::Value).len() as u64,
            len
        );
    }
    for len in [1u64, 64, 512] {
        let key = session
            .generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[
                    Attribute::ValueLen(len.into()),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        let value = bytes_attr(&session, key, AttributeType::Value);
        assert_eq!(value.len() as u64, len);
        // CKA_CHECK_VALUE of a generic secret: the start of its SHA-1 hash.
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &value);
        assert_eq!(
            bytes_attr(&session, key, AttributeType::CheckValue),
            sha1.as_ref()[..3]
        );
    }
    let generate = |mechanism: &Mechanism, len: Option<u64>| {
        let template: Vec<Attribute> = len
            .map(|l| Attribute::ValueLen(l.into()))
            .into_iter()
            .collect();
        session.generate_key(mechanism, &template)
    };
    assert_eq!(
        rv(generate(&Mechanism::AesKeyGen, Some(15))),
        RvError::KeySizeRange
    );
    assert_eq!(
        rv(generate(&Mechanism::AesKeyGen, Some(64))),
        RvError::KeySizeRange
    );
    assert_eq!(
        rv(generate(&Mechanism::AesKeyGen, None)),
        RvError::TemplateIncomplete
    );
    assert_eq!(
        rv(generate(&Mechanism::GenericSecretKeyGen, Some(0))),
        RvError::KeySizeRange
    );
    assert_eq!(
        rv(generate(&Mechanism::GenericSecretKeyGen, Some(513))),
        RvError::KeySizeRange
    );
    // Two generated keys differ.
    let first = generate(&Mechanism::AesKeyGen, Some(32)).unwrap();
    let second = generate(&Mechanism::AesKeyGen, Some(32)).unwrap();
    assert_ne!(
        bytes_attr(&session, first, AttributeType::CheckValue),
        bytes_attr(&session, second, AttributeType::CheckValue)
    );
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn digests_match_the_published_values() {
    let slot = fresh_token("digest");
    let session = pkcs11().open_ro_session(slot).unwrap();
    // FIPS 180 examples for "abc".
    for (mechanism, abc) in [
        (Mechanism::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            Mechanism::Sha224,
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
        ),
        (
            Mechanism::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            Mechanism::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            Mechanism::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ] {
        let expected = hex(abc);
        assert_eq!(session.digest(&mechanism, b"abc").unwrap(), expected);
        session.digest_init(&mechanism).unwrap();
        session.digest_update(b"a").unwrap();
        session.digest_update(b"").unwrap();
        session.digest_update(b"bc").unwrap();
        assert_eq!(session.digest_final().unwrap(), expected);
    }
    assert_eq!(
        session.digest(&Mechanism::Sha256, b"").unwrap(),
        hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    // A long input in many parts.
    let million = vec![b'a'; 1_000_000];
    session.digest_init(&Mechanism::Sha1).unwrap();
    for chunk in million.chunks(4093) {
        session.digest_update(chunk).unwrap();
    }
    assert_eq!(
        session.digest_final().unwrap(),
        hex("34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    );
    assert_eq!(
        rv(session.digest(&Mechanism::AesKeyGen, b"abc")),
        RvError::MechanismInvalid
    );
}

#[test]
fn digest_key_feeds_a_secret_key_value() {
    let (_, session) = user_session("digestkey");
    let value = [0x5au8; 32];
    let key = session
        .create_object(&[
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
            Attribute::Value(value.to_vec()),
        ])
        .unwrap();
    session.digest_init(&Mechanism::Sha256).unwrap();
    session.digest_update(b"prefix").unwrap();
    session.digest_key(key).unwrap();
    let mut both = b"prefix".to_vec();
    both.extend_from_slice(&value);
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &both);
    assert_eq!(session.digest_final().unwrap(), expected.as_ref());
}

#[test]
fn random_bytes_come_in_any_length_and_differ() {
    let slot = fresh_token("random");
    let session = pkcs11().open_ro_session(slot).unwrap();
    let first = session.generate_random_vec(64).unwrap();
    let second = session.generate_random_vec(64).unwrap();
    assert_eq!(first.len(), 64);
    assert_ne!(first, second);
    assert_ne!(first, vec![0u8; 64]);
    let large = session.generate_random_vec(100_000).unwrap();
    // Every byte value shows up in 100 kB of random data.
    let mut seen = [false; 256];
    for byte in &large {
        seen[*byte as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(
        ck!(C_GenerateRandom, session.handle(), std::ptr::null_mut(), 0),
        CKR_OK
    );
    session.seed_random(b"extra entropy is accepted").unwrap();
}
