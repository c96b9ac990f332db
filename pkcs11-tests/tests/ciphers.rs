//! Encryption, key wrapping and key agreement: RSA PKCS#1 v1.5 and OAEP (with OpenSSL as the other
//! party), AES-GCM and AES-CBC-PAD (against aws-lc-rs and OpenSSL), AES key wrap with and without
//! padding (RFC 3394 vector), RSA-OAEP wrapping, and ECDH1 derivation producing a readable secret.

#[macro_use]
mod common;

use common::crosscheck::{openssl, openssl_encrypt, scratch_file};
use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn secret_key(session: &Session, key_type: KeyType, value: &[u8]) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Value(value.to_vec()),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ])
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rsa_pkcs1_and_oaep_encryption_interoperate_with_openssl() {
    let (_, session) = user_session("rsa-crypt");
    let (public, private) = rsa_pair(&session, 2048);
    let spki = bytes_attr(&session, public, AttributeType::PublicKeyInfo);
    let plain = b"attack at dawn";

    let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, plain).unwrap();
    assert_eq!(ciphertext.len(), 256);
    assert_eq!(
        session
            .decrypt(&Mechanism::RsaPkcs, private, &ciphertext)
            .unwrap(),
        plain
    );
    let from_openssl = openssl_encrypt(&spki, &[], plain);
    assert_eq!(
        session
            .decrypt(&Mechanism::RsaPkcs, private, &from_openssl)
            .unwrap(),
        plain
    );

    let label = b"context label";
    for (hash, mgf, name, source) in [
        (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, "sha1", None),
        (
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            "sha256",
            None,
        ),
        (
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            "sha256",
            Some(&label[..]),
        ),
        (
            MechanismType::SHA512,
            PkcsMgfType::MGF1_SHA512,
            "sha512",
            None,
        ),
    ] {
        let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            hash,
            mgf,
            source.map_or(PkcsOaepSource::empty(), PkcsOaepSource::data_specified),
        ));
        let ciphertext = session.encrypt(&oaep, public, plain).unwrap();
        assert_eq!(
            session.decrypt(&oaep, private, &ciphertext).unwrap(),
            plain,
            "{name}"
        );
        let mut options = vec![
            "rsa_padding_mode:oaep".to_string(),
            format!("rsa_oaep_md:{name}"),
            format!("rsa_mgf1_md:{name}"),
        ];
        if let Some(label) = source {
            options.push(format!("rsa_oaep_label:{}", hex(label)));
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let from_openssl = openssl_encrypt(&spki, &options, plain);
        assert_eq!(
            session.decrypt(&oaep, private, &from_openssl).unwrap(),
            plain,
            "{name}"
        );
        // Decrypting with the wrong label fails.
        if source.is_some() {
            let unlabelled =
                Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()));
            assert_eq!(
                rv(session.decrypt(&unlabelled, private, &ciphertext)),
                RvError::EncryptedDataInvalid
            );
        }
    }

    let mut tampered = ciphertext.clone();
    tampered[100] ^= 4;
    assert_eq!(
        rv(session.decrypt(&Mechanism::RsaPkcs, private, &tampered)),
        RvError::EncryptedDataInvalid
    );
    assert_eq!(
        rv(session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext[1..])),
        RvError::EncryptedDataLenRange
    );
    assert_eq!(
        rv(session.encrypt(&Mechanism::RsaPkcs, public, &[7u8; 246])),
        RvError::DataLenRange
    );
    assert_eq!(
        rv(session.decrypt(&Mechanism::RsaPkcs, public, &ciphertext)),
        RvError::KeyTypeInconsistent
    );
}

#[test]
fn aes_gcm_matches_a_reference_and_detects_tampering() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
    let (_, session) = user_session("gcm");
    let plain: Vec<u8> = (0..100u8).collect();
    let aad = b"header";
    for (len, algorithm) in [(16usize, &AES_128_GCM), (32, &AES_256_GCM)] {
        let value = vec![0x42u8; len];
        let key = secret_key(&session, KeyType::AES, &value);
        let iv = [9u8; 12];
        let mut iv_param = iv;
        let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv_param, aad, 128.into()).unwrap());
        let sealed = session.encrypt(&gcm, key, &plain).unwrap();

        let reference = LessSafeKey::new(UnboundKey::new(algorithm, &value).unwrap());
        let mut expected = plain.clone();
        reference
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(aad),
                &mut expected,
            )
            .unwrap();
        assert_eq!(sealed, expected);
        assert_eq!(session.decrypt(&gcm, key, &sealed).unwrap(), plain);

        // Multi-part gives the same result.
        session.encrypt_init(&gcm, key).unwrap();
        let mut multi = session.encrypt_update(&plain[..33]).unwrap();
        multi.extend(session.encrypt_update(&plain[33..]).unwrap());
        multi.extend(session.encrypt_final().unwrap());
        assert_eq!(multi, sealed);
        session.decrypt_init(&gcm, key).unwrap();
        let mut opened = session.decrypt_update(&sealed[..50]).unwrap();
        opened.extend(session.decrypt_update(&sealed[50..]).unwrap());
        opened.extend(session.decrypt_final().unwrap());
        assert_eq!(opened, plain);

        let mut tampered = sealed.clone();
        tampered[3] ^= 1;
        assert_eq!(
            rv(session.decrypt(&gcm, key, &tampered)),
            RvError::EncryptedDataInvalid
        );
        let mut other_iv = [8u8; 12];
        let other = Mechanism::AesGcm(GcmParams::new(&mut other_iv, aad, 128.into()).unwrap());
        assert_eq!(
            rv(session.decrypt(&other, key, &sealed)),
            RvError::EncryptedDataInvalid
        );
    }
    let key = secret_key(&session, KeyType::AES, &[1u8; 16]);
    let mut short_iv = [0u8; 8];
    let odd = Mechanism::AesGcm(GcmParams::new(&mut short_iv, aad, 128.into()).unwrap());
    assert_eq!(
        rv(session.encrypt_init(&odd, key)),
        RvError::MechanismParamInvalid
    );
}

#[test]
fn aes_cbc_pad_matches_openssl() {
    let (_, session) = user_session("cbc");
    let value: Vec<u8> = (0..32u8).collect();
    let key = secret_key(&session, KeyType::AES, &value);
    let iv = [0xa5u8; 16];
    let cbc = Mechanism::AesCbcPad(iv);
    for len in [0usize, 1, 15, 16, 17, 64] {
        let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let ciphertext = session.encrypt(&cbc, key, &plain).unwrap();
        assert_eq!(
            ciphertext.len(),
            (len / 16 + 1) * 16,
            "PKCS#7 padding always adds"
        );
        let expected = openssl(&[
            "enc",
            "-aes-256-cbc",
            "-K",
            &hex(&value),
            "-iv",
            &hex(&iv),
            "-in",
            &scratch_file("cbc", &plain),
        ]);
        assert_eq!(ciphertext, expected, "{len} bytes");
        assert_eq!(session.decrypt(&cbc, key, &ciphertext).unwrap(), plain);
        session.encrypt_init(&cbc, key).unwrap();
        let mut multi = Vec::new();
        for chunk in plain.chunks(7) {
            multi.extend(session.encrypt_update(chunk).unwrap());
        }
        multi.extend(session.encrypt_final().unwrap());
        assert_eq!(multi, ciphertext);
        session.decrypt_init(&cbc, key).unwrap();
        let mut opened = Vec::new();
        for chunk in ciphertext.chunks(5) {
            opened.extend(session.decrypt_update(chunk).unwrap());
        }
        opened.extend(session.decrypt_final().unwrap());
        assert_eq!(opened, plain);
    }
    let ciphertext = session.encrypt(&cbc, key, b"sixteen byte msg").unwrap();
    let mut bad_padding = ciphertext.clone();
    bad_padding[31] ^= 0x55;
    assert_eq!(
        rv(session.decrypt(&cbc, key, &bad_padding)),
        RvError::EncryptedDataInvalid
    );
    assert_eq!(
        rv(session.decrypt(&cbc, key, &ciphertext[..20])),
        RvError::EncryptedDataLenRange
    );
    // A failed decryption ends the operation.
    session.decrypt_init(&cbc, key).unwrap();
    session.decrypt_update(&bad_padding).unwrap();
    assert_eq!(rv(session.decrypt_final()), RvError::EncryptedDataInvalid);
    assert_eq!(
        rv(session.decrypt_final()),
        RvError::OperationNotInitialized
    );
    // A key that may not encrypt is refused.
    let (public, _) = rsa_pair(&session, 2048);
    assert_eq!(
        rv(session.encrypt_init(&cbc, public)),
        RvError::KeyTypeInconsistent
    );
    let no_encrypt = session
        .copy_object(key, &[Attribute::Encrypt(false)])
        .unwrap();
    assert_eq!(
        rv(session.encrypt_init(&cbc, no_encrypt)),
        RvError::KeyFunctionNotPermitted
    );
}

fn unwrap_template(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Label(b"unwrapped".to_vec()),
    ]
}

#[test]
fn aes_key_wrap_follows_rfc_3394_and_5649() {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
    let (_, session) = user_session("keywrap");
    // RFC 3394 section 4.3: 128 bits of key data wrapped with a 256-bit KEK.
    let kek_value = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    let kek = secret_key(&session, KeyType::AES, &kek_value);
    let data = unhex("00112233445566778899AABBCCDDEEFF");
    let target = secret_key(&session, KeyType::AES, &data);
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrap, kek, target)
        .unwrap();
    assert_eq!(
        wrapped,
        unhex("64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7")
    );
    let unwrapped = session
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &wrapped,
            &unwrap_template(KeyType::AES),
        )
        .unwrap();
    assert_eq!(bytes_attr(&session, unwrapped, AttributeType::Value), data);
    assert!(!bool_attr(&session, unwrapped, AttributeType::Local));
    let mut tampered = wrapped.clone();
    tampered[5] ^= 1;
    assert_eq!(
        rv(session.unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &tampered,
            &unwrap_template(KeyType::AES)
        )),
        RvError::WrappedKeyInvalid
    );

    // With padding (RFC 5649), a 20-byte generic secret.
    let odd: Vec<u8> = (100..120u8).collect();
    let generic = secret_key(&session, KeyType::GENERIC_SECRET, &odd);
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, generic)
        .unwrap();
    let mut expected = vec![0u8; 40];
    let expected = AesKek::new(&AES_256, &kek_value)
        .unwrap()
        .wrap_with_padding(&odd, &mut expected)
        .unwrap()
        .to_vec();
    assert_eq!(wrapped, expected);
    let unwrapped = session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &wrapped,
            &unwrap_template(KeyType::GENERIC_SECRET),
        )
        .unwrap();
    assert_eq!(bytes_attr(&session, unwrapped, AttributeType::Value), odd);

    // Only extractable keys leave, and only through keys allowed to wrap.
    let locked = session
        .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())])
        .unwrap();
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrap, kek, locked)),
        RvError::KeyUnextractable
    );
    let no_wrap = session.copy_object(kek, &[Attribute::Wrap(false)]).unwrap();
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrap, no_wrap, target)),
        RvError::KeyFunctionNotPermitted
    );
}

#[test]
fn secret_keys_wrap_under_rsa_and_aes_cbc_pad() {
    let (_, session) = user_session("rsawrap");
    let (public, private) = rsa_pair(&session, 2048);
    let value = [0x3cu8; 32];
    let target = secret_key(&session, KeyType::AES, &value);
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    let wrapped = session.wrap_key(&oaep, public, target).unwrap();
    assert_eq!(wrapped.len(), 256);
    assert_eq!(session.decrypt(&oaep, private, &wrapped).unwrap(), value);
    let unwrapped = session
        .unwrap_key(&oaep, private, &wrapped, &unwrap_template(KeyType::AES))
        .unwrap();
    assert_eq!(bytes_attr(&session, unwrapped, AttributeType::Value), value);

    let wrapped = session
        .wrap_key(&Mechanism::RsaPkcs, public, target)
        .unwrap();
    let unwrapped = session
        .unwrap_key(
            &Mechanism::RsaPkcs,
            private,
            &wrapped,
            &unwrap_template(KeyType::AES),
        )
        .unwrap();
    assert_eq!(bytes_attr(&session, unwrapped, AttributeType::Value), value);

    let kek = secret_key(&session, KeyType::AES, &[0x11u8; 16]);
    let cbc = Mechanism::AesCbcPad([0u8; 16]);
    let wrapped = session.wrap_key(&cbc, kek, target).unwrap();
    assert_eq!(session.decrypt(&cbc, kek, &wrapped).unwrap(), value);
    let unwrapped = session
        .unwrap_key(&cbc, kek, &wrapped, &unwrap_template(KeyType::AES))
        .unwrap();
    assert_eq!(bytes_attr(&session, unwrapped, AttributeType::Value), value);
}

fn derive_template(sensitive: bool, len: u64) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sensitive(sensitive),
        Attribute::Extractable(!sensitive),
        Attribute::ValueLen(len.into()),
    ]
}

fn ec_point(session: &Session, public: ObjectHandle) -> Vec<u8> {
    bytes_attr(session, public, AttributeType::EcPoint)
}

#[test]
fn ecdh_derives_the_shared_secret_both_parties_compute() {
    use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384, ECDH_P521};
    let (_, session) = user_session("ecdh");
    for (curve, algorithm, len) in [
        (P256, &ECDH_P256, 32u64),
        (P384, &ECDH_P384, 48),
        (P521, &ECDH_P521, 66),
    ] {
        let (alice_public, alice) = ec_pair(&session, curve);
        let (bob_public, bob) = ec_pair(&session, curve);
        let alice_point = ec_point(&session, alice_public);
        let bob_point = ec_point(&session, bob_public);
        let derive = |private: ObjectHandle, peer: &[u8], template: &[Attribute]| {
            let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
            session.derive_key(&Mechanism::Ecdh1Derive(params), private, template)
        };
        let ours = derive(alice, &bob_point, &derive_template(false, len)).unwrap();
        let theirs = derive(bob, &alice_point, &derive_template(false, len)).unwrap();
        let secret = bytes_attr(&session, ours, AttributeType::Value);
        assert_eq!(secret.len() as u64, len);
        assert_eq!(bytes_attr(&session, theirs, AttributeType::Value), secret);

        // A party outside the module, with the raw (not DER-wrapped) point as some clients pass it.
        let outsider = agreement::PrivateKey::generate(algorithm).unwrap();
        let outsider_point = outsider.compute_public_key().unwrap().as_ref().to_vec();
        let raw_point = common::crosscheck::tlv(&alice_point).0.content.to_vec();
        let expected = agreement::agree(
            &outsider,
            agreement::UnparsedPublicKey::new(algorithm, &raw_point),
            (),
            |k| Ok(k.to_vec()),
        )
        .unwrap();
        let derived = derive(alice, &outsider_point, &derive_template(false, len)).unwrap();
        assert_eq!(
            bytes_attr(&session, derived, AttributeType::Value),
            expected
        );

        // By default the derived secret stays inside.
        let hidden = derive(alice, &bob_point, &derive_template(true, len)).unwrap();
        assert!(bool_attr(&session, hidden, AttributeType::Sensitive));
        assert!(session
            .get_attributes(hidden, &[AttributeType::Value])
            .unwrap()
            .is_empty());
    }

    // A derived AES key works as one.
    let (alice_public, alice) = ec_pair(&session, P256);
    let (_, bob) = ec_pair(&session, P256);
    let point = ec_point(&session, alice_public);
    let params = Ecdh1DeriveParams::new(EcKdf::null(), &point);
    let aes = session
        .derive_key(
            &Mechanism::Ecdh1Derive(params),
            bob,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(16.into()),
            ],
        )
        .unwrap();
    let cbc = Mechanism::AesCbcPad([0u8; 16]);
    let sealed = session.encrypt(&cbc, aes, b"derived").unwrap();
    assert_eq!(session.decrypt(&cbc, aes, &sealed).unwrap(), b"derived");
    // Only the null KDF is offered.
    let shared = [1u8; 8];
    let params = Ecdh1DeriveParams::new(EcKdf::sha256(&shared), &point);
    assert_eq!(
        rv(session.derive_key(
            &Mechanism::Ecdh1Derive(params),
            alice,
            &derive_template(false, 32)
        )),
        RvError::MechanismParamInvalid
    );
}
