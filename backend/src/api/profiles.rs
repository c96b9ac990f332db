//! Certificate profiles of the caller's organisation and environment: `GET /v1/profiles` (its own
//! profiles and the built-in ones it has not replaced), `GET/PUT/DELETE /v1/profiles/{name}` (admin to
//! change; every change is an audit record with the definition). See [`crate::ca::profile`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::devices::{CertificateProfile, ProfileDefinition, ProfileInfo, ProfileList};
use cryptera_proto::Environment;

use super::ApiJson;
use crate::auth::Caller;
use crate::ca::issue::device_store;
use crate::ca::profile;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::devices::ProfileRecord;
use crate::util::now;

fn profile_name(name: &str) -> Result<CertificateProfile> {
    CertificateProfile::parse(name).ok_or_else(|| {
        ServiceError::InvalidRequest(
            "a profile name is 1 to 64 characters of letters, digits, '.', '_' or '-'".into(),
        )
    })
}

fn own_info(record: ProfileRecord) -> ProfileInfo {
    ProfileInfo {
        name: record.name,
        environment: record.environment,
        built_in: false,
        definition: record.definition,
        updated_at: Some(record.updated_at),
    }
}

/// The organisation's profiles, then the built-in ones it has not replaced.
fn all_profiles(state: &AppState, caller: &Caller) -> Result<Vec<ProfileInfo>> {
    let environment: Environment = caller.credential.environment;
    let own = device_store(state)?.profiles(&caller.org.id, environment)?;
    let built_in: Vec<ProfileInfo> = CertificateProfile::BUILT_IN
        .into_iter()
        .filter(|name| !own.iter().any(|record| record.name == *name))
        .filter_map(|name| {
            profile::built_in(&name).map(|definition| ProfileInfo {
                name,
                environment,
                built_in: true,
                definition,
                updated_at: None,
            })
        })
        .collect();
    let mut profiles: Vec<ProfileInfo> = own.into_iter().map(own_info).collect();
    profiles.extend(built_in);
    profiles.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(profiles)
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ProfileList>> {
    caller.require(Operation::Read)?;
    let profiles = state
        .blocking(move |state| all_profiles(state, &caller))
        .await?;
    Ok(Json(ProfileList { profiles }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ProfileInfo>> {
    caller.require(Operation::Read)?;
    let name = profile_name(&name)?;
    let profile = state
        .blocking(move |state| {
            all_profiles(state, &caller)?
                .into_iter()
                .find(|profile| profile.name == name)
                .ok_or(ServiceError::NotFound("certificate profile"))
        })
        .await?;
    Ok(Json(profile))
}

/// `PUT /v1/profiles/{name}` (admin): creates or replaces the organisation's profile of this name in
/// the caller's environment.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(definition): ApiJson<ProfileDefinition>,
) -> Result<Json<ProfileInfo>> {
    caller.require(Operation::Admin)?;
    let name = profile_name(&name)?;
    profile::validate(&definition)?;
    let record = state
        .blocking(move |state| {
            let store = device_store(state)?;
            let environment = caller.credential.environment;
            let previous = store
                .profiles(&caller.org.id, environment)?
                .into_iter()
                .find(|record| record.name == name);
            let at = now();
            let record = ProfileRecord {
                org_id: caller.org.id.clone(),
                environment,
                name: name.clone(),
                definition,
                created_at: previous.as_ref().map_or(at, |record| record.created_at),
                updated_at: at,
            };
            let audit = caller
                .audit("profile.put", name.as_str())
                .detail("environment", environment.as_str())
                .detail("created", if previous.is_none() { "true" } else { "false" })
                .detail(
                    "definition",
                    serde_json::to_string(&record.definition).unwrap_or_default(),
                );
            let audit = match &previous {
                Some(previous) => audit.detail(
                    "previous",
                    serde_json::to_string(&previous.definition).unwrap_or_default(),
                ),
                None => audit,
            };
            store.put_profile(&record, &audit)?;
            Ok(record)
        })
        .await?;
    Ok(Json(own_info(record)))
}

/// `DELETE /v1/profiles/{name}` (admin): removes the organisation's profile; a built-in profile of the
/// same name applies again.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    caller.require(Operation::Admin)?;
    let name = profile_name(&name)?;
    state
        .blocking(move |state| {
            let environment = caller.credential.environment;
            let audit = caller
                .audit("profile.delete", name.as_str())
                .detail("environment", environment.as_str());
            device_store(state)?.delete_profile(&caller.org.id, environment, name.as_str(), &audit)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
