//! Every signing mechanism of the module, single- and multi-part: the module verifies its own
//! signatures, OpenSSL agrees with them, and a wrong signature is `CKR_SIGNATURE_INVALID`. HMAC and
//! the rules binding keys and parameters to mechanisms are in `sign_rules.rs`.

#[macro_use]
mod common;

use common::crosscheck::{ecdsa_der, openssl_verifies};
use common::rawsign::{sign, verify, Mech};
use common::*;
use cryptoki::object::{AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn digest(alg: &'static aws_lc_rs::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
}

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY as SHA1, SHA224, SHA256, SHA384, SHA512};

/// The DER DigestInfo prefix for SHA-256.
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

const MESSAGE: &[u8] = b"The module signs what it is given, and OpenSSL checks it.";

/// How OpenSSL is asked to check a signature.
struct OpenSsl<'a> {
    /// What `pkeyutl` verifies: the digest (or DigestInfo, or the message for EdDSA).
    input: &'a [u8],
    options: &'a [&'a str],
    /// ECDSA signatures go to OpenSSL DER-encoded.
    ecdsa: bool,
    /// EdDSA verifies the message itself (`-rawin`).
    raw_input: bool,
}

fn openssl<'a>(input: &'a [u8], options: &'a [&'a str]) -> OpenSsl<'a> {
    OpenSsl {
        input,
        options,
        ecdsa: false,
        raw_input: false,
    }
}

/// Checks one signature every way: the module verifies it single- and multi-part, OpenSSL accepts
/// it, and flipping a bit or changing the message makes it CKR_SIGNATURE_INVALID.
fn check(
    session: &Session,
    mech: &mut Mech,
    public: ObjectHandle,
    spki: &[u8],
    (input, multi): (&[u8], bool),
    reference: OpenSsl,
    signature: Vec<u8>,
) {
    let kind = mech.kind;
    assert_eq!(
        verify(session, mech, public, &[input], &signature),
        CKR_OK,
        "{kind:#x}"
    );
    if multi {
        let (a, b) = input.split_at(input.len() / 3);
        assert_eq!(
            verify(session, mech, public, &[a, b], &signature),
            CKR_OK,
            "{kind:#x}"
        );
    }
    let encoded = if reference.ecdsa {
        ecdsa_der(&signature)
    } else {
        signature.clone()
    };
    assert!(
        openssl_verifies(
            spki,
            reference.options,
            reference.raw_input,
            reference.input,
            &encoded
        ),
        "OpenSSL rejects the signature of {kind:#x}"
    );
    let mut flipped = signature.clone();
    flipped[signature.len() / 2] ^= 0x10;
    assert_eq!(
        verify(session, mech, public, &[input], &flipped),
        CKR_SIGNATURE_INVALID,
        "{kind:#x}"
    );
    let mut other = input.to_vec();
    other[0] ^= 1;
    assert_eq!(
        verify(session, mech, public, &[&other], &signature),
        CKR_SIGNATURE_INVALID,
        "{kind:#x}"
    );
    assert_eq!(
        verify(session, mech, public, &[input], &signature[1..]),
        CKR_SIGNATURE_LEN_RANGE,
        "{kind:#x}"
    );
}

#[test]
fn rsa_pkcs1_and_pss_signatures() {
    let (_, session) = user_session("rsa-sign");
    let (public, private) = rsa_pair(&session, 2048);
    let spki = bytes_attr(&session, public, AttributeType::PublicKeyInfo);

    // Hash-and-sign PKCS#1 v1.5: deterministic, so multi-part equals single-part.
    for (kind, alg, name) in [
        (CKM_SHA1_RSA_PKCS, &SHA1, "sha1"),
        (CKM_SHA224_RSA_PKCS, &SHA224, "sha224"),
        (CKM_SHA256_RSA_PKCS, &SHA256, "sha256"),
        (CKM_SHA384_RSA_PKCS, &SHA384, "sha384"),
        (CKM_SHA512_RSA_PKCS, &SHA512, "sha512"),
    ] {
        let mut mech = Mech::plain(kind);
        let single = sign(&session, &mut mech, private, &[MESSAGE]);
        let (a, b) = MESSAGE.split_at(10);
        assert_eq!(
            sign(&session, &mut mech, private, &[a, b, b""]),
            single,
            "{name}"
        );
        let option = format!("digest:{name}");
        let hashed = digest(alg, MESSAGE);
        check(
            &session,
            &mut mech,
            public,
            &spki,
            (MESSAGE, true),
            openssl(&hashed, &[&option]),
            single,
        );
    }

    // Raw CKM_RSA_PKCS over a DigestInfo, and over bytes that are not one.
    let mut info = SHA256_DIGEST_INFO.to_vec();
    info.extend(digest(&SHA256, MESSAGE));
    let mut mech = Mech::plain(CKM_RSA_PKCS);
    for input in [info.as_slice(), b"not a DigestInfo, just bytes".as_slice()] {
        let signature = sign(&session, &mut mech, private, &[input]);
        check(
            &session,
            &mut mech,
            public,
            &spki,
            (input, false),
            openssl(input, &[]),
            signature,
        );
    }
    // The same DigestInfo signed raw equals CKM_SHA256_RSA_PKCS over the message.
    assert_eq!(
        sign(&session, &mut mech, private, &[&info]),
        sign(
            &session,
            &mut Mech::plain(CKM_SHA256_RSA_PKCS),
            private,
            &[MESSAGE]
        )
    );

    // PSS: hashing variants, and the raw form over a digest; other MGF1 hashes and salt lengths.
    for (kind, hash, alg, name, mgf, mgf_name, salt) in [
        (
            CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA224,
            &SHA224,
            "sha224",
            CKG_MGF1_SHA224,
            "sha224",
            28,
        ),
        (
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA256,
            &SHA256,
            "sha256",
            CKG_MGF1_SHA256,
            "sha256",
            32,
        ),
        (
            CKM_SHA384_RSA_PKCS_PSS,
            CKM_SHA384,
            &SHA384,
            "sha384",
            CKG_MGF1_SHA384,
            "sha384",
            48,
        ),
        (
            CKM_SHA512_RSA_PKCS_PSS,
            CKM_SHA512,
            &SHA512,
            "sha512",
            CKG_MGF1_SHA512,
            "sha512",
            64,
        ),
        (
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA256,
            &SHA256,
            "sha256",
            CKG_MGF1_SHA1,
            "sha1",
            0,
        ),
        (
            CKM_SHA512_RSA_PKCS_PSS,
            CKM_SHA512,
            &SHA512,
            "sha512",
            CKG_MGF1_SHA256,
            "sha256",
            20,
        ),
    ] {
        let options = [
            "rsa_padding_mode:pss".to_string(),
            format!("rsa_pss_saltlen:{salt}"),
            format!("digest:{name}"),
            format!("rsa_mgf1_md:{mgf_name}"),
        ];
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let hashed = digest(alg, MESSAGE);
        let mut mech = Mech::pss(kind, hash, mgf, salt);
        let (a, b) = MESSAGE.split_at(7);
        let signature = sign(&session, &mut mech, private, &[a, b]);
        check(
            &session,
            &mut mech,
            public,
            &spki,
            (MESSAGE, true),
            openssl(&hashed, &options),
            signature,
        );
        let mut raw = Mech::pss(CKM_RSA_PKCS_PSS, hash, mgf, salt);
        let signature = sign(&session, &mut raw, private, &[&hashed]);
        check(
            &session,
            &mut raw,
            public,
            &spki,
            (&hashed, false),
            openssl(&hashed, &options),
            signature,
        );
    }
}

#[test]
fn ecdsa_signatures_on_every_curve() {
    let (_, session) = user_session("ecdsa");
    for (curve, field) in [(P256, 32), (P384, 48), (P521, 66)] {
        let (public, private) = ec_pair(&session, curve);
        let spki = bytes_attr(&session, public, AttributeType::PublicKeyInfo);
        for (kind, alg) in [
            (CKM_ECDSA_SHA1, &SHA1),
            (CKM_ECDSA_SHA224, &SHA224),
            (CKM_ECDSA_SHA256, &SHA256),
            (CKM_ECDSA_SHA384, &SHA384),
            (CKM_ECDSA_SHA512, &SHA512),
        ] {
            let mut mech = Mech::plain(kind);
            let (a, b) = MESSAGE.split_at(5);
            let signature = sign(&session, &mut mech, private, &[a, b]);
            assert_eq!(signature.len(), 2 * field);
            let hashed = digest(alg, MESSAGE);
            let reference = OpenSsl {
                ecdsa: true,
                ..openssl(&hashed, &[])
            };
            check(
                &session,
                &mut mech,
                public,
                &spki,
                (MESSAGE, true),
                reference,
                signature,
            );
        }
        // CKM_ECDSA signs a digest the caller made, shorter or longer than the curve's order.
        let mut raw = Mech::plain(CKM_ECDSA);
        for alg in [&SHA256, &SHA512] {
            let hashed = digest(alg, MESSAGE);
            let signature = sign(&session, &mut raw, private, &[&hashed]);
            let reference = OpenSsl {
                ecdsa: true,
                ..openssl(&hashed, &[])
            };
            check(
                &session,
                &mut raw,
                public,
                &spki,
                (&hashed, false),
                reference,
                signature,
            );
        }
    }
}

#[test]
fn eddsa_signatures() {
    let (_, session) = user_session("eddsa");
    let (public, private) = ed25519_pair(&session);
    let spki = bytes_attr(&session, public, AttributeType::PublicKeyInfo);
    let mut mech = Mech::plain(CKM_EDDSA);
    let signature = sign(&session, &mut mech, private, &[MESSAGE]);
    assert_eq!(signature.len(), 64);
    // Ed25519 is deterministic.
    assert_eq!(sign(&session, &mut mech, private, &[MESSAGE]), signature);
    let reference = OpenSsl {
        raw_input: true,
        ..openssl(MESSAGE, &[])
    };
    check(
        &session,
        &mut mech,
        public,
        &spki,
        (MESSAGE, false),
        reference,
        signature,
    );
}
