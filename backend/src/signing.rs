//! Signing keys: generation, public keys and signatures with `aws-lc-rs` (the only crypto engine).
//!
//! Private keys exist in clear only inside this module's zeroizing buffers: [`generate`] returns the
//! PKCS#8 document for the caller to seal under the KEK at once, and [`sign`] takes the opened PKCS#8,
//! signs, and lets it drop (zeroized). Errors are opaque on purpose.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512,
};
use cryptera_proto::keys::{KeyAlgorithm, Mechanism};
use zeroize::Zeroizing;

use crate::error::{Result, ServiceError};

/// A freshly generated key: PKCS#8 private key (zeroized on drop) and SPKI public key.
pub struct GeneratedKey {
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub public_key_spki: Vec<u8>,
}

pub fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey> {
    let fail = |_| ServiceError::Crypto("key generation");
    match algorithm {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let size = match algorithm {
                KeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
                KeyAlgorithm::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            let pair = RsaKeyPair::generate(size).map_err(fail)?;
            let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(fail)?;
            let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(fail)?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
                public_key_spki: spki.as_ref().to_vec(),
            })
        }
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
            let pair = EcdsaKeyPair::generate(ecdsa_algorithm(algorithm)).map_err(fail)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(fail)?;
            let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(fail)?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
                public_key_spki: spki.as_ref().to_vec(),
            })
        }
        KeyAlgorithm::Ed25519 => {
            let pair = Ed25519KeyPair::generate().map_err(fail)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(fail)?;
            let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(fail)?;
            Ok(GeneratedKey {
                pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
                public_key_spki: spki.as_ref().to_vec(),
            })
        }
    }
}

fn ecdsa_algorithm(
    algorithm: KeyAlgorithm,
) -> &'static aws_lc_rs::signature::EcdsaSigningAlgorithm {
    if algorithm == KeyAlgorithm::EcdsaP384 {
        &ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &ECDSA_P256_SHA256_FIXED_SIGNING
    }
}

/// What is signed: a digest computed by the client, or the message itself (Ed25519 only).
pub enum SignInput<'a> {
    Digest(&'a [u8]),
    Data(&'a [u8]),
}

/// Checks that `mechanism` belongs to `algorithm` and that the input has the right form and length.
pub fn check_input(
    algorithm: KeyAlgorithm,
    mechanism: Mechanism,
    input: &SignInput<'_>,
) -> Result<()> {
    if !algorithm.mechanisms().contains(&mechanism) {
        return Err(ServiceError::UnsupportedMechanism(format!(
            "{} cannot be used with a {} key",
            mechanism.as_str(),
            algorithm.as_str()
        )));
    }
    match (mechanism.digest_len(), input) {
        (Some(len), SignInput::Digest(digest)) if digest.len() == len => Ok(()),
        (Some(len), SignInput::Digest(digest)) => Err(ServiceError::InvalidRequest(format!(
            "{} needs a {len}-byte digest, got {} bytes",
            mechanism.as_str(),
            digest.len()
        ))),
        (Some(_), SignInput::Data(_)) => Err(ServiceError::InvalidRequest(format!(
            "{} signs a digest: send `digest`, not `data`",
            mechanism.as_str()
        ))),
        (None, SignInput::Data(_)) => Ok(()),
        (None, SignInput::Digest(_)) => Err(ServiceError::InvalidRequest(format!(
            "{} signs the message itself: send `data`, not `digest`",
            mechanism.as_str()
        ))),
    }
}

/// Signs with a PKCS#8 private key. Call [`check_input`] first.
pub fn sign(
    algorithm: KeyAlgorithm,
    pkcs8: &[u8],
    mechanism: Mechanism,
    input: &SignInput<'_>,
) -> Result<Vec<u8>> {
    check_input(algorithm, mechanism, input)?;
    let fail = |_| ServiceError::Crypto("signing");
    match (mechanism, input) {
        (Mechanism::Ed25519, SignInput::Data(data)) => {
            let pair =
                Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| ServiceError::Crypto("key"))?;
            Ok(pair.sign(data).as_ref().to_vec())
        }
        (Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384, SignInput::Digest(bytes)) => {
            let pair = EcdsaKeyPair::from_pkcs8(ecdsa_algorithm(algorithm), pkcs8)
                .map_err(|_| ServiceError::Crypto("key"))?;
            let digest = import_digest(mechanism, bytes)?;
            Ok(pair.sign_digest(&digest).map_err(fail)?.as_ref().to_vec())
        }
        (_, SignInput::Digest(bytes)) => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| ServiceError::Crypto("key"))?;
            let digest = import_digest(mechanism, bytes)?;
            let mut signature = vec![0u8; pair.public_modulus_len()];
            pair.sign_digest(rsa_encoding(mechanism)?, &digest, &mut signature)
                .map_err(fail)?;
            Ok(signature)
        }
        (_, SignInput::Data(_)) => Err(ServiceError::Crypto("input form")),
    }
}

fn rsa_encoding(mechanism: Mechanism) -> Result<&'static dyn RsaEncoding> {
    Ok(match mechanism {
        Mechanism::RsaPkcs1Sha256 => &RSA_PKCS1_SHA256,
        Mechanism::RsaPkcs1Sha384 => &RSA_PKCS1_SHA384,
        Mechanism::RsaPkcs1Sha512 => &RSA_PKCS1_SHA512,
        Mechanism::RsaPssSha256 => &RSA_PSS_SHA256,
        Mechanism::RsaPssSha384 => &RSA_PSS_SHA384,
        Mechanism::RsaPssSha512 => &RSA_PSS_SHA512,
        Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384 | Mechanism::Ed25519 => {
            return Err(ServiceError::Crypto("not an RSA mechanism"))
        }
    })
}

fn import_digest(mechanism: Mechanism, bytes: &[u8]) -> Result<Digest> {
    let algorithm = match mechanism.digest_len() {
        Some(32) => &digest::SHA256,
        Some(48) => &digest::SHA384,
        Some(64) => &digest::SHA512,
        _ => return Err(ServiceError::Crypto("digest algorithm")),
    };
    Digest::import_less_safe(bytes, algorithm).map_err(|_| ServiceError::Crypto("digest"))
}

/// SHA-256 of `data`, for fingerprints and for recording what Ed25519 signed.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519, RSA_PSS_2048_8192_SHA256,
    };

    fn spki_to_raw(spki: &[u8], raw_len: usize) -> &[u8] {
        &spki[spki.len() - raw_len..]
    }

    #[test]
    fn ecdsa_and_ed25519_signatures_verify() {
        let message = b"firmware image";
        let p256 = generate(KeyAlgorithm::EcdsaP256).expect("p256");
        let digest = sha256(message);
        let sig = sign(
            KeyAlgorithm::EcdsaP256,
            &p256.pkcs8,
            Mechanism::EcdsaSha256,
            &SignInput::Digest(&digest),
        )
        .expect("sign");
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            spki_to_raw(&p256.public_key_spki, 65),
        )
        .verify(message, &sig)
        .expect("verifies");

        let ed = generate(KeyAlgorithm::Ed25519).expect("ed25519");
        let sig = sign(
            KeyAlgorithm::Ed25519,
            &ed.pkcs8,
            Mechanism::Ed25519,
            &SignInput::Data(message),
        )
        .expect("sign");
        UnparsedPublicKey::new(&ED25519, spki_to_raw(&ed.public_key_spki, 32))
            .verify(message, &sig)
            .expect("verifies");
    }

    #[test]
    fn rsa_pss_signature_verifies_and_wrong_inputs_are_refused() {
        let message = b"release.tar.gz";
        let rsa = generate(KeyAlgorithm::Rsa2048).expect("rsa");
        let digest = sha256(message);
        let sig = sign(
            KeyAlgorithm::Rsa2048,
            &rsa.pkcs8,
            Mechanism::RsaPssSha256,
            &SignInput::Digest(&digest),
        )
        .expect("sign");
        aws_lc_rs::signature::ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &rsa.public_key_spki)
            .expect("spki")
            .verify_sig(message, &sig)
            .expect("verifies");

        assert!(matches!(
            check_input(
                KeyAlgorithm::Rsa2048,
                Mechanism::EcdsaSha256,
                &SignInput::Digest(&digest)
            ),
            Err(ServiceError::UnsupportedMechanism(_))
        ));
        assert!(matches!(
            check_input(
                KeyAlgorithm::Rsa2048,
                Mechanism::RsaPssSha384,
                &SignInput::Digest(&digest)
            ),
            Err(ServiceError::InvalidRequest(_))
        ));
        assert!(matches!(
            check_input(
                KeyAlgorithm::Ed25519,
                Mechanism::Ed25519,
                &SignInput::Digest(&digest)
            ),
            Err(ServiceError::InvalidRequest(_))
        ));
    }
}
