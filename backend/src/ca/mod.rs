//! Device certificate provisioning (issue 10): the certificate authorities of an organisation's
//! environment, issuing certificates from checked PKCS#10 requests, CRLs and EST's certs-only PKCS#7.
//!
//! Every structure is built with the RustCrypto `x509-cert` / `cms` types and encoded by `der`; every
//! signature and verification is `aws-lc-rs`. CA private keys are generated and sealed under the KEK
//! exactly as service keys are ([`crate::signing::generate`], [`crate::api::private_key_aad`]) and are
//! opened only for the moment of signing. See `docs/devices.md`.

pub mod client_auth;
pub mod csr;
pub mod issue;
pub mod pkcs7;
pub mod profile;
pub mod x509;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use cryptera_proto::devices::CaKind;
use cryptera_proto::keys::KeyAlgorithm;
use cryptera_proto::Environment;

use crate::api::private_key_aad;
use crate::error::{Result, ServiceError};
use crate::kek::Kek;
use crate::store::devices::CaRecord;

/// Every CA key is P-256 (ECDSA with SHA-256): small certificates and CRLs, verified everywhere.
pub const CA_ALGORITHM: KeyAlgorithm = KeyAlgorithm::EcdsaP256;

/// A CA's opened private key, for the moment of signing (the PKCS#8 buffer is zeroized on drop).
pub struct CaSigner {
    pair: EcdsaKeyPair,
}

impl CaSigner {
    /// Opens a sealed CA key.
    pub fn open(kek: &Kek, ca: &CaRecord) -> Result<Self> {
        let pkcs8 = kek.open(
            &private_key_aad(&ca.id, &ca.org_id, ca.environment),
            &ca.sealed_private_key,
        )?;
        Self::from_pkcs8(&pkcs8)
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
            .map_err(|_| ServiceError::Crypto("CA key"))?;
        Ok(Self { pair })
    }

    /// An ASN.1 (DER) ECDSA signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| ServiceError::Crypto("CA signing"))?
            .as_ref()
            .to_vec())
    }
}

/// The CA's common name: development and trial CAs carry their environment, so a certificate's chain
/// says where it came from ("acme Development Issuing CA").
pub fn ca_name(org_name: &str, environment: Environment, kind: CaKind) -> String {
    let role = match kind {
        CaKind::Root => "Root CA",
        CaKind::Issuing => "Issuing CA",
    };
    match environment {
        Environment::Production => format!("{org_name} {role}"),
        Environment::Development => format!("{org_name} Development {role}"),
        Environment::Trial => format!("{org_name} Trial {role}"),
    }
}
