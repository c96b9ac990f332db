//! EST's `application/pkcs7-mime; smime-type=certs-only`: a CMS `SignedData` with no content and no
//! signers, only certificates (RFC 7030 §4.1.3, RFC 5652 degenerate form), built with the `cms` crate.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use x509_cert::der::asn1::SetOfVec;
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::Certificate;

use crate::error::{Result, ServiceError};

/// DER `ContentInfo` holding `certificates` (DER each).
pub fn certs_only(certificates: &[Vec<u8>]) -> Result<Vec<u8>> {
    let fail = |_| ServiceError::Crypto("PKCS#7 encoding");
    let mut set = SetOfVec::new();
    for der in certificates {
        let certificate = Certificate::from_der(der).map_err(fail)?;
        set.insert(CertificateChoices::Certificate(certificate))
            .map_err(fail)?;
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(set)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(fail)?,
    }
    .to_der()
    .map_err(fail)
}
