//! The provisioning operations behind the API and the CLI: create an environment's CAs, enrol a
//! device from a checked CSR (idempotent by device id), revoke, sign the CRL, read the registry.

use std::time::{Duration, SystemTime};

use cryptera_proto::devices::{
    AuthMethod, CaInfo, CaKind, CaSigningKind, CaSigningRecord, CertificateProfile,
    CertificateStatus, DeviceCertificate, DeviceInfo, EnrollResponse, RevocationReason,
};
use cryptera_proto::keys::Mechanism;
use cryptera_proto::{paths, Base64Bytes, Environment};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use super::csr;
use super::profile::{self, Values};
use super::x509::{self, Issuer, Leaf, Revoked, Subject};
use super::{ca_name, CaSigner, CA_ALGORITHM};
use crate::api::{check_name, private_key_aad};
use crate::audit::AuditEvent;
use crate::error::{Result, ServiceError};
use crate::kek::KekSource;
use crate::server::AppState;
use crate::store::devices::{CaRecord, DeviceCertRecord, DeviceChange, DeviceStore};
use crate::store::{OrgRecord, RateBucket};
use crate::util::{new_id, now};

/// The device half of the store, or `Unavailable` where the database does not have it yet.
pub fn device_store(state: &AppState) -> Result<&dyn DeviceStore> {
    state.store().devices().ok_or(ServiceError::Unavailable)
}

pub fn ca_info(ca: &CaRecord) -> CaInfo {
    CaInfo {
        id: ca.id.clone(),
        kind: ca.kind,
        name: ca.name.clone(),
        environment: ca.environment,
        certificate: Base64Bytes(ca.certificate.clone()),
        crl_url: ca.crl_url.clone(),
        created_at: ca.created_at,
    }
}

pub fn certificate_info(cert: &DeviceCertRecord) -> DeviceCertificate {
    DeviceCertificate {
        serial: cert.serial.clone(),
        profile: cert.profile.clone(),
        status: cert.status,
        certificate: Base64Bytes(cert.certificate.clone()),
        not_before: cert.not_before,
        not_after: cert.not_after,
        issued_at: cert.issued_at,
        revoked_at: cert.revoked_at,
        revocation_reason: cert.revocation_reason,
    }
}

/// Groups certificates (sorted by device) into devices.
pub fn devices_of(certs: &[DeviceCertRecord]) -> Vec<DeviceInfo> {
    let mut devices: Vec<DeviceInfo> = Vec::new();
    for cert in certs {
        match devices.last_mut() {
            Some(device) if device.device_id == cert.device_id => {
                device.certificates.push(certificate_info(cert));
            }
            _ => devices.push(DeviceInfo {
                device_id: cert.device_id.clone(),
                environment: cert.environment,
                certificates: vec![certificate_info(cert)],
            }),
        }
    }
    devices
}

fn new_ca(
    state: &AppState,
    org: &OrgRecord,
    environment: Environment,
    kind: CaKind,
) -> Result<(CaRecord, CaSigner)> {
    let id = new_id("ca")?;
    let generated = crate::signing::generate(CA_ALGORITHM)?;
    let signer = CaSigner::from_pkcs8(&generated.pkcs8)?;
    let sealed = state.kek().seal(
        &private_key_aad(&id, &org.id, environment),
        &generated.pkcs8,
    )?;
    let record = CaRecord {
        id,
        org_id: org.id.clone(),
        environment,
        kind,
        name: ca_name(&org.name, environment, kind),
        algorithm: CA_ALGORITHM,
        sealed_private_key: sealed,
        certificate: generated.public_key_spki,
        crl_url: String::new(),
        created_at: now(),
    };
    Ok((record, signer))
}

/// Creates the root and issuing CA of `environment`; production needs a PKCS#11-held KEK, like
/// production keys. `public_url` is the service's base URL for the CRL distribution point.
pub fn create_cas(
    state: &AppState,
    org: &OrgRecord,
    environment: Environment,
    public_url: &str,
    audit: AuditEvent,
) -> Result<(CaRecord, CaRecord)> {
    if environment == Environment::Production
        && state.kek().source() != KekSource::Pkcs11
        && !state.config().allow_production_with_file_kek
    {
        return Err(ServiceError::ProductionRequiresHsmKek);
    }
    let public_url = public_url.trim_end_matches('/');
    if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
        || !public_url.is_ascii()
    {
        return Err(ServiceError::InvalidRequest(
            "public_url must be an http:// or https:// URL".into(),
        ));
    }
    let store = device_store(state)?;
    let (mut root, root_signer) = new_ca(state, org, environment, CaKind::Root)?;
    let root_name = x509::name(&format!("CN={},O={}", root.name, org.name))?;
    root.certificate = x509::root_certificate(
        &Subject {
            name: root_name,
            spki: &root.certificate,
        },
        &root_signer,
    )?;
    let root_cert = Certificate::from_der(&root.certificate)
        .map_err(|_| ServiceError::Crypto("root certificate"))?;
    let (mut issuing, _) = new_ca(state, org, environment, CaKind::Issuing)?;
    let issuing_name = x509::name(&format!("CN={},O={}", issuing.name, org.name))?;
    issuing.certificate = x509::issuing_certificate(
        &Subject {
            name: issuing_name,
            spki: &issuing.certificate,
        },
        &Issuer {
            certificate: &root_cert,
            signer: &root_signer,
        },
    )?;
    issuing.crl_url = format!("{public_url}{}", paths::ca_crl(&issuing.id));
    let mut audit = audit;
    audit.target.clone_from(&issuing.id);
    let audit = audit
        .detail("environment", environment.as_str())
        .detail("root", root.id.clone())
        .detail("root_name", root.name.clone())
        .detail("issuing_name", issuing.name.clone());
    store.create_cas(&root, &issuing, &audit)?;
    Ok((root, issuing))
}

/// The environment's (root, issuing) CAs.
pub fn environment_cas(
    store: &dyn DeviceStore,
    org_id: &str,
    environment: Environment,
) -> Result<(CaRecord, CaRecord)> {
    let cas = store.cas(org_id, environment)?;
    let find = |kind| cas.iter().find(|ca| ca.kind == kind).cloned();
    match (find(CaKind::Root), find(CaKind::Issuing)) {
        (Some(root), Some(issuing)) => Ok((root, issuing)),
        _ => Err(ServiceError::NotFound(
            "certificate authority of this environment (an admin creates it first)",
        )),
    }
}

/// One enrolment.
pub struct Enrolment<'a> {
    pub org: &'a OrgRecord,
    pub environment: Environment,
    pub device_id: &'a str,
    pub csr: &'a [u8],
    pub profile: CertificateProfile,
    pub renew: bool,
    /// How the requester authenticated (recorded in the audit and CA signing records).
    pub auth: AuthMethod,
    /// The caller's audit event (action and target are filled in here).
    pub audit: AuditEvent,
}

/// The CA signing record of an issued certificate: the SHA-256 of its `TBSCertificate` and the CA's
/// signature, read back from the DER the CA just signed.
fn issue_record(
    enrolment: &Enrolment<'_>,
    ca_id: &str,
    serial: &str,
    certificate: &[u8],
    at: i64,
) -> Result<CaSigningRecord> {
    let parsed = Certificate::from_der(certificate)
        .map_err(|_| ServiceError::Crypto("issued certificate"))?;
    let tbs = parsed
        .tbs_certificate
        .to_der()
        .map_err(|_| ServiceError::Crypto("issued certificate"))?;
    Ok(CaSigningRecord {
        id: new_id("casig")?,
        kind: CaSigningKind::Issue,
        ca_id: ca_id.to_owned(),
        environment: enrolment.environment,
        device_id: enrolment.device_id.to_owned(),
        serial: serial.to_owned(),
        profile: enrolment.profile.clone(),
        actor: enrolment.audit.actor.clone(),
        auth: enrolment.auth,
        mechanism: Some(Mechanism::EcdsaSha256),
        digest: Some(Base64Bytes(crate::signing::sha256(&tbs))),
        signature: Some(Base64Bytes(parsed.signature.raw_bytes().to_vec())),
        reason: None,
        at,
    })
}

/// How many devices a trial organisation may hold certificates for, per environment (as it holds at
/// most [`TRIAL_KEY_QUOTA`](crate::api::keys::TRIAL_KEY_QUOTA) keys).
pub const TRIAL_DEVICE_QUOTA: u32 = 25;

/// A trial organisation's new device beyond [`TRIAL_DEVICE_QUOTA`] is refused; a device it already
/// has (a retry, a renewal) never is. Checked before the device's transaction, like the key quota:
/// enrolments of new devices racing at the limit may each pass it.
fn check_device_quota(
    store: &dyn DeviceStore,
    org: &OrgRecord,
    environment: Environment,
    device_id: &str,
) -> Result<()> {
    if org.trial_expires_at.is_none()
        || !store
            .device_certificates(&org.id, environment, device_id)?
            .is_empty()
    {
        return Ok(());
    }
    let mut devices: Vec<String> = store
        .search_devices(&org.id, environment, "", TRIAL_DEVICE_QUOTA)?
        .into_iter()
        .map(|cert| cert.device_id)
        .collect();
    devices.sort();
    devices.dedup();
    if devices.len() >= TRIAL_DEVICE_QUOTA as usize {
        return Err(ServiceError::QuotaExceeded(
            "trial organisations hold certificates for at most 25 devices",
        ));
    }
    Ok(())
}

fn enrol_bucket(state: &AppState, org: &OrgRecord, environment: Environment) -> RateBucket {
    let config = state.config();
    RateBucket {
        name: format!("enrol:{}:{}", org.id, environment.as_str()),
        per_minute: if org.trial_expires_at.is_some() {
            config.trial_requests_per_minute
        } else {
            config.organisation_requests_per_minute
        },
    }
}

/// Checks the CSR, then issues, or returns the device's live certificate for the same key, inside
/// one device transaction. Nothing is stored when any check fails.
pub fn enrol(state: &AppState, enrolment: Enrolment<'_>) -> Result<EnrollResponse> {
    check_name("device id", enrolment.device_id)?;
    let checked = csr::check(enrolment.csr)?;
    if let Some(name) = checked.common_name.as_deref() {
        if name != enrolment.device_id {
            return Err(ServiceError::InvalidRequest(format!(
                "the CSR's subject CN {name:?} is not the device id {:?}",
                enrolment.device_id
            )));
        }
    }
    let store = device_store(state)?;
    let definition = profile::resolve(
        store,
        &enrolment.org.id,
        enrolment.environment,
        &enrolment.profile,
    )?;
    if !profile::allows(&definition, checked.key_type) {
        return Err(ServiceError::InvalidRequest(format!(
            "the {} profile does not allow {} keys",
            enrolment.profile,
            checked.key_type.as_str()
        )));
    }
    let rendered = profile::render(
        &definition,
        &Values {
            device_id: enrolment.device_id,
            org: &enrolment.org.name,
            environment: enrolment.environment,
        },
    )?;
    check_device_quota(
        store,
        enrolment.org,
        enrolment.environment,
        enrolment.device_id,
    )?;
    crate::limits::take(
        state,
        &[enrol_bucket(state, enrolment.org, enrolment.environment)],
    )?;
    let (root, issuing) = environment_cas(store, &enrolment.org.id, enrolment.environment)?;
    let issuing_cert = Certificate::from_der(&issuing.certificate)
        .map_err(|_| ServiceError::Crypto("issuing certificate"))?;
    let signer = CaSigner::open(state.kek(), &issuing)?;

    // Signed before the transaction (a retry simply discards it); the transaction decides.
    let issued_at = now();
    let not_before = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(issued_at).unwrap_or(0))
        - Duration::from_secs(300);
    let validity = Duration::from_secs(u64::from(definition.validity_days) * 86_400);
    let (serial, serial_hex) = x509::new_serial()?;
    let certificate = x509::leaf_certificate(
        &Leaf {
            subject: Subject {
                name: rendered.subject,
                spki: &checked.spki,
            },
            serial,
            key_usage: profile::key_usage(&definition),
            extended_key_usage: profile::extended_key_usage(&definition),
            san: rendered.san,
            crl_url: issuing.crl_url.clone(),
            not_before,
            validity,
        },
        &Issuer {
            certificate: &issuing_cert,
            signer: &signer,
        },
    )?;
    let signing_record = issue_record(
        &enrolment,
        &issuing.id,
        &serial_hex,
        &certificate,
        issued_at,
    )?;
    let not_before_secs = issued_at - 300;
    let record = DeviceCertRecord {
        serial: serial_hex,
        org_id: enrolment.org.id.clone(),
        environment: enrolment.environment,
        device_id: enrolment.device_id.to_owned(),
        ca_id: issuing.id.clone(),
        profile: enrolment.profile.clone(),
        public_key: checked.spki,
        certificate,
        status: CertificateStatus::Active,
        not_before: not_before_secs,
        not_after: not_before_secs + i64::try_from(validity.as_secs()).unwrap_or(i64::MAX),
        issued_at,
        revoked_at: None,
        revocation_reason: None,
    };

    let mut outcome: Option<(DeviceCertRecord, bool)> = None;
    store.update_device(
        &enrolment.org.id,
        enrolment.environment,
        enrolment.device_id,
        &mut |current| {
            let live: Vec<&DeviceCertRecord> = current
                .iter()
                .filter(|cert| cert.is_live(issued_at))
                .collect();
            if !enrolment.renew {
                if let Some(existing) = live.first() {
                    if existing.public_key == record.public_key
                        && existing.profile == record.profile
                    {
                        outcome = Some(((*existing).clone(), true));
                        return Ok(DeviceChange::default());
                    }
                    return Err(ServiceError::AlreadyExists(
                        "a live certificate for this device (for another key or profile: \
                         renew to replace it)",
                    ));
                }
            }
            let updates: Vec<DeviceCertRecord> = live
                .iter()
                .map(|cert| DeviceCertRecord {
                    status: CertificateStatus::Superseded,
                    ..(*cert).clone()
                })
                .collect();
            let mut audit = enrolment.audit.clone();
            audit.action = "device.certificate.issue".into();
            audit.target = enrolment.device_id.to_owned();
            let audit = audit
                .detail("serial", record.serial.clone())
                .detail("profile", record.profile.as_str())
                .detail("environment", record.environment.as_str())
                .detail("ca", record.ca_id.clone())
                .detail("auth", enrolment.auth.as_str())
                .detail("signing_record", signing_record.id.clone())
                .detail(
                    "tbs_sha256",
                    crate::util::hex(
                        signing_record
                            .digest
                            .as_ref()
                            .map(|digest| digest.0.as_slice())
                            .unwrap_or_default(),
                    ),
                )
                .detail("renew", if enrolment.renew { "true" } else { "false" })
                .detail(
                    "superseded",
                    updates
                        .iter()
                        .map(|cert| cert.serial.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            // The registry orders a device's certificates by issue time: a renewal within the same
            // second as the certificate it replaces still comes out newest.
            let mut record = record.clone();
            if let Some(newest) = current.first() {
                record.issued_at = record.issued_at.max(newest.issued_at + 1);
            }
            let mut signing_record = signing_record.clone();
            signing_record.at = record.issued_at;
            outcome = Some((record.clone(), false));
            Ok(DeviceChange {
                insert: Some(record),
                updates,
                records: vec![signing_record],
                audit: vec![audit],
            })
        },
    )?;
    let (cert, existing) = outcome.ok_or(ServiceError::Crypto("enrolment outcome"))?;
    Ok(EnrollResponse {
        device_id: enrolment.device_id.to_owned(),
        environment: enrolment.environment,
        certificate: certificate_info(&cert),
        chain: vec![
            Base64Bytes(issuing.certificate.clone()),
            Base64Bytes(root.certificate.clone()),
        ],
        existing,
    })
}

/// Revokes the device's certificate `serial` (or every unrevoked one); returns those revoked.
pub fn revoke(
    state: &AppState,
    org_id: &str,
    environment: Environment,
    device_id: &str,
    serial: Option<&str>,
    reason: RevocationReason,
    audit: &AuditEvent,
) -> Result<Vec<DeviceCertRecord>> {
    let store = device_store(state)?;
    let at = now();
    let mut revoked = Vec::new();
    store.update_device(org_id, environment, device_id, &mut |current| {
        let targets: Vec<DeviceCertRecord> = current
            .iter()
            .filter(|cert| cert.status != CertificateStatus::Revoked)
            .filter(|cert| serial.is_none_or(|serial| cert.serial == serial))
            .map(|cert| DeviceCertRecord {
                status: CertificateStatus::Revoked,
                revoked_at: Some(at),
                revocation_reason: Some(reason),
                ..cert.clone()
            })
            .collect();
        if targets.is_empty() {
            return Err(ServiceError::NotFound(
                "unrevoked certificate of this device",
            ));
        }
        let mut records = Vec::with_capacity(targets.len());
        for cert in &targets {
            records.push(CaSigningRecord {
                id: new_id("casig")?,
                kind: CaSigningKind::Revoke,
                ca_id: cert.ca_id.clone(),
                environment: cert.environment,
                device_id: cert.device_id.clone(),
                serial: cert.serial.clone(),
                profile: cert.profile.clone(),
                actor: audit.actor.clone(),
                auth: AuthMethod::Bearer,
                mechanism: None,
                digest: None,
                signature: None,
                reason: Some(reason),
                at,
            });
        }
        let events = targets
            .iter()
            .zip(&records)
            .map(|(cert, record)| {
                let mut event = audit.clone();
                event.action = "device.certificate.revoke".into();
                event.target = device_id.to_owned();
                event
                    .detail("serial", cert.serial.clone())
                    .detail("reason", reason.as_str())
                    .detail("ca", cert.ca_id.clone())
                    .detail("signing_record", record.id.clone())
            })
            .collect();
        revoked.clone_from(&targets);
        Ok(DeviceChange {
            insert: None,
            updates: targets,
            records,
            audit: events,
        })
    })?;
    Ok(revoked)
}

/// The issuing CA's CRL, signed now (DER).
pub fn crl(state: &AppState, ca_id: &str) -> Result<Vec<u8>> {
    let store = device_store(state)?;
    let ca = store
        .ca_by_id(ca_id)?
        .filter(|ca| ca.kind == CaKind::Issuing)
        .ok_or(ServiceError::NotFound("issuing certificate authority"))?;
    let revoked: Vec<Revoked> = store
        .revoked_certificates(&ca.id)?
        .into_iter()
        .map(|cert| Revoked {
            serial_hex: cert.serial,
            revoked_at: cert.revoked_at.unwrap_or(cert.issued_at),
            reason: cert.revocation_reason.unwrap_or_default(),
        })
        .collect();
    let certificate = Certificate::from_der(&ca.certificate)
        .map_err(|_| ServiceError::Crypto("issuing certificate"))?;
    let signer = CaSigner::open(state.kek(), &ca)?;
    let number = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    x509::crl(
        &Issuer {
            certificate: &certificate,
            signer: &signer,
        },
        &revoked,
        number,
    )
}
