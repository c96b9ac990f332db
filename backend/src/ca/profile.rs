//! Certificate profiles: the built-in `device` and `code_signing`, an organisation's own profiles (per
//! environment, replacing a built-in one of the same name), their validation, and rendering a profile's
//! subject and SAN templates for one device into `x509-cert` names.
//!
//! Templates may use only `{device_id}`, `{org}` and `{environment}`. Device ids and organisation names
//! are `[A-Za-z0-9._-]`, so a substituted value can never add an RDN or an attribute; each rendered SAN
//! is still checked (a DNS name must be a valid host name, a URI must have a scheme, an email address a
//! valid domain) and a device whose id does not fit the profile's template is refused.

use std::str::FromStr;

use const_oid::db::rfc5280::{
    ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_EMAIL_PROTECTION, ID_KP_SERVER_AUTH,
};
use const_oid::ObjectIdentifier;
use cryptera_proto::devices::{
    CertificateProfile, ExtendedKeyUsage, KeyUsageBit, ProfileDefinition, ProfileKeyType,
    PROFILE_VALIDITY_DAYS,
};
use cryptera_proto::Environment;
use x509_cert::der::asn1::Ia5String;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::name::Name;

use crate::error::{Result, ServiceError};
use crate::store::devices::DeviceStore;

/// Longest subject or SAN template, and most SANs in a profile.
const MAX_TEMPLATE_LEN: usize = 256;
const MAX_SANS: usize = 8;
const PLACEHOLDERS: [&str; 3] = ["device_id", "org", "environment"];

fn invalid(message: String) -> ServiceError {
    ServiceError::InvalidRequest(message)
}

/// The built-in profile of that name.
pub fn built_in(name: &CertificateProfile) -> Option<ProfileDefinition> {
    let extended_key_usage = if *name == CertificateProfile::DEVICE {
        ExtendedKeyUsage::ClientAuth
    } else if *name == CertificateProfile::CODE_SIGNING {
        ExtendedKeyUsage::CodeSigning
    } else {
        return None;
    };
    Some(ProfileDefinition {
        key_types: ProfileKeyType::ALL.to_vec(),
        validity_days: 365,
        key_usage: vec![KeyUsageBit::DigitalSignature],
        extended_key_usage: vec![extended_key_usage],
        subject: "CN={device_id},O={org}".into(),
        san: vec!["uri:urn:cryptera:device:{environment}:{device_id}".into()],
    })
}

/// The profile enrolment uses: the organisation's own for this environment, else the built-in one.
pub fn resolve(
    store: &dyn DeviceStore,
    org_id: &str,
    environment: Environment,
    name: &CertificateProfile,
) -> Result<ProfileDefinition> {
    let own = store
        .profiles(org_id, environment)?
        .into_iter()
        .find(|profile| profile.name == *name);
    match own {
        Some(profile) => Ok(profile.definition),
        None => built_in(name).ok_or(ServiceError::NotFound("certificate profile")),
    }
}

/// The values templates are filled with.
pub struct Values<'a> {
    pub device_id: &'a str,
    pub org: &'a str,
    pub environment: Environment,
}

/// Fills in a template; refuses unknown placeholders and unbalanced braces.
fn fill(template: &str, values: &Values<'_>) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(invalid(format!("template {template:?}: '}}' without '{{'")));
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| invalid(format!("template {template:?}: '{{' without '}}'")))?;
        let value = match &after[..close] {
            "device_id" => values.device_id,
            "org" => values.org,
            "environment" => values.environment.as_str(),
            other => {
                return Err(invalid(format!(
                    "template {template:?}: unknown placeholder {{{other}}} (only {})",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                )))
            }
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_dns(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn valid_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        && !rest.is_empty()
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}'))
}

fn valid_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && local
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'{' | b'}'))
                && valid_dns(domain)
        }
        None => false,
    }
}

fn ia5(text: &str) -> Result<Ia5String> {
    Ia5String::new(text).map_err(|_| invalid(format!("{text:?} is not ASCII")))
}

/// One rendered SAN template.
fn san(template: &str, values: &Values<'_>) -> Result<GeneralName> {
    let (kind, body) = template.split_once(':').ok_or_else(|| {
        invalid(format!(
            "SAN template {template:?} must start with dns:, uri: or email:"
        ))
    })?;
    let text = fill(body, values)?;
    match kind {
        "dns" if valid_dns(&text) => Ok(GeneralName::DnsName(ia5(&text)?)),
        "uri" if valid_uri(&text) => Ok(GeneralName::UniformResourceIdentifier(ia5(&text)?)),
        "email" if valid_email(&text) => Ok(GeneralName::Rfc822Name(ia5(&text)?)),
        "dns" | "uri" | "email" => Err(invalid(format!(
            "SAN template {template:?} gives {text:?}, not a valid {kind} name"
        ))),
        _ => Err(invalid(format!(
            "SAN template {template:?} must start with dns:, uri: or email:"
        ))),
    }
}

/// A profile's subject and SANs for one device.
pub struct Rendered {
    pub subject: Name,
    pub san: Vec<GeneralName>,
}

pub fn render(definition: &ProfileDefinition, values: &Values<'_>) -> Result<Rendered> {
    let subject_text = fill(&definition.subject, values)?;
    let subject = Name::from_str(&subject_text).map_err(|_| {
        invalid(format!(
            "subject template {:?} gives {subject_text:?}, not an RFC 4514 name",
            definition.subject
        ))
    })?;
    if subject.0.is_empty() {
        return Err(invalid("the subject template gives an empty name".into()));
    }
    let san = definition
        .san
        .iter()
        .map(|template| san(template, values))
        .collect::<Result<_>>()?;
    Ok(Rendered { subject, san })
}

/// Checks a definition an admin wants to store: bounds, and templates that render for a sample device.
pub fn validate(definition: &ProfileDefinition) -> Result<()> {
    if definition.key_types.is_empty()
        || definition.key_usage.is_empty()
        || definition.extended_key_usage.is_empty()
        || definition.san.is_empty()
    {
        return Err(invalid(
            "key_types, key_usage, extended_key_usage and san each need at least one entry".into(),
        ));
    }
    if !PROFILE_VALIDITY_DAYS.contains(&definition.validity_days) {
        return Err(invalid(format!(
            "validity_days must be {} to {}",
            PROFILE_VALIDITY_DAYS.start(),
            PROFILE_VALIDITY_DAYS.end()
        )));
    }
    if definition.san.len() > MAX_SANS
        || std::iter::once(&definition.subject)
            .chain(&definition.san)
            .any(|template| template.len() > MAX_TEMPLATE_LEN)
    {
        return Err(invalid(format!(
            "at most {MAX_SANS} SANs, and templates of at most {MAX_TEMPLATE_LEN} characters"
        )));
    }
    render(
        definition,
        &Values {
            device_id: "device-1",
            org: "acme",
            environment: Environment::Development,
        },
    )
    .map(drop)
}

/// Whether the profile allows a CSR's key type.
pub fn allows(definition: &ProfileDefinition, key: ProfileKeyType) -> bool {
    definition.key_types.contains(&key)
}

/// The key usage extension's bits.
pub fn key_usage(definition: &ProfileDefinition) -> KeyUsage {
    let mut usage = KeyUsage(Default::default());
    for bit in &definition.key_usage {
        usage.0 |= match bit {
            KeyUsageBit::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsageBit::ContentCommitment => KeyUsages::NonRepudiation,
            KeyUsageBit::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsageBit::KeyAgreement => KeyUsages::KeyAgreement,
        };
    }
    usage
}

/// The extended key usage OIDs, in the profile's order without repeats.
pub fn extended_key_usage(definition: &ProfileDefinition) -> Vec<ObjectIdentifier> {
    let mut oids = Vec::new();
    for usage in &definition.extended_key_usage {
        let oid = match usage {
            ExtendedKeyUsage::ClientAuth => ID_KP_CLIENT_AUTH,
            ExtendedKeyUsage::ServerAuth => ID_KP_SERVER_AUTH,
            ExtendedKeyUsage::CodeSigning => ID_KP_CODE_SIGNING,
            ExtendedKeyUsage::EmailProtection => ID_KP_EMAIL_PROTECTION,
        };
        if !oids.contains(&oid) {
            oids.push(oid);
        }
    }
    oids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            device_id: "line1-ec",
            org: "acme",
            environment: Environment::Trial,
        }
    }

    #[test]
    fn templates_take_only_the_three_placeholders() {
        assert_eq!(
            fill("{device_id}.{org}.{environment}", &values()).ok(),
            Some("line1-ec.acme.trial".to_owned())
        );
        assert!(fill("{serial}", &values()).is_err());
        assert!(fill("{device_id", &values()).is_err());
        assert!(fill("device_id}", &values()).is_err());
    }

    #[test]
    fn built_ins_validate_and_sans_are_checked() {
        for name in CertificateProfile::BUILT_IN {
            let definition = built_in(&name).expect("built in");
            assert!(validate(&definition).is_ok());
        }
        assert!(san("dns:{device_id}.example.com", &values()).is_ok());
        assert!(san("dns:{device_id}..example.com", &values()).is_err());
        assert!(san("dns:under_score.example.com", &values()).is_err());
        assert!(san("uri:no scheme", &values()).is_err());
        assert!(san("email:{device_id}@example.com", &values()).is_ok());
        assert!(san("ip:10.0.0.1", &values()).is_err());
    }
}
