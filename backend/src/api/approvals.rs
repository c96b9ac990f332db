//! Signing requests waiting for M-of-N approvals: list, get, approve and deny.
//!
//! Approvers are distinct from the requester, MFA-verified when they are people, and in the key's
//! approver group when it has one. The M-th approval signs inside the transaction that records it.

use axum::extract::{Path, Query, State};
use axum::Json;
use cryptera_proto::auth::Operation;
use cryptera_proto::sign::{
    ApprovalInfo, DenyRequest, SigningRequestInfo, SigningRequestList, SigningRequestStatus,
};
use serde::Deserialize;

use super::keys::visible_key;
use super::sign::{complete, info};
use crate::auth::Caller;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::{KeyRecord, SigningRequestRecord};
use crate::util::{hex, now};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<SigningRequestStatus>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SigningRequestList>> {
    caller.require(Operation::Read)?;
    let Query(query) = query.map_err(|err| ServiceError::InvalidRequest(err.body_text()))?;
    let requests = state
        .blocking(move |state| {
            let all = state
                .store()
                .list_signing_requests(&caller.org.id, stored_status(query.status))?;
            let mut visible = Vec::new();
            for request in all {
                let view = info(&request);
                // A stored `pending` past its expiry is shown (and filtered) as `expired`.
                let wanted = query.status.is_none_or(|status| status == view.status);
                if wanted && visible_key(state, &caller, &request.key_id).is_ok() {
                    visible.push(view);
                }
            }
            Ok(visible)
        })
        .await?;
    Ok(Json(SigningRequestList { requests }))
}

/// The stored status to filter on: `pending` and `expired` are told apart by time, so both are read.
fn stored_status(wanted: Option<SigningRequestStatus>) -> Option<SigningRequestStatus> {
    wanted.filter(|status| {
        !matches!(
            status,
            SigningRequestStatus::Pending | SigningRequestStatus::Expired
        )
    })
}

fn visible_request(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(SigningRequestRecord, KeyRecord)> {
    let request = state
        .store()
        .signing_request(&caller.org.id, id)?
        .ok_or(ServiceError::NotFound("signing request"))?;
    let key = visible_key(state, caller, &request.key_id).map_err(|err| match err {
        ServiceError::NotFound(_) => ServiceError::NotFound("signing request"),
        other => other,
    })?;
    Ok((request, key))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SigningRequestInfo>> {
    caller.require(Operation::Read)?;
    let request = state
        .blocking(move |state| visible_request(state, &caller, &id).map(|(request, _)| request))
        .await?;
    Ok(Json(info(&request)))
}

/// What an approver decides.
pub enum Decision {
    Approve,
    Deny(Option<String>),
}

pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SigningRequestInfo>> {
    decide(state, caller, id, Decision::Approve).await
}

pub async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<SigningRequestInfo>> {
    // The body is optional: an empty one means no reason.
    let reason = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<DenyRequest>(&body)
            .map_err(|err| ServiceError::InvalidRequest(err.to_string()))?
            .reason
    };
    decide(state, caller, id, Decision::Deny(reason)).await
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: String,
    decision: Decision,
) -> Result<Json<SigningRequestInfo>> {
    let info = state
        .blocking(move |state| decide_blocking(state, &caller, &id, &decision))
        .await?;
    Ok(Json(info))
}

/// Approves or denies a signing request (HTTP and `cryptera-backend approve`). The M-th approval signs
/// inside the same transaction.
pub fn decide_blocking(
    state: &AppState,
    caller: &Caller,
    id: &str,
    decision: &Decision,
) -> Result<SigningRequestInfo> {
    caller.require(Operation::Approve)?;
    let (_, key) = visible_request(state, caller, id)?;
    // A key scheduled for deletion signs nothing, not even requests approved before.
    let key_usable = key.state == cryptera_proto::keys::KeyState::Active;
    let approver_name = approver_name(state, caller)?;
    let mut update = |request: &mut SigningRequestRecord| {
        if request.status != SigningRequestStatus::Pending {
            return Err(ServiceError::RequestNotPending);
        }
        if request.expires_at <= now() {
            request.status = SigningRequestStatus::Expired;
            request.data = None;
            return Ok(caller
                .audit("sign.expire", &request.key_id)
                .detail("request_id", request.id.clone()));
        }
        if request.requester_id == caller.actor() {
            return Err(ServiceError::SelfApprovalRefused);
        }
        let group = &key.policy.approvers;
        let in_group = caller.is_user() && group.contains(&approver_name);
        if !group.is_empty() && !in_group {
            return Err(ServiceError::InsufficientScope(Operation::Approve));
        }
        if request
            .approvals
            .iter()
            .any(|a| a.approver_id == caller.actor())
        {
            return Err(ServiceError::AlreadyExists("approval by this approver"));
        }
        let event = match decision {
            Decision::Deny(reason) => {
                request.status = SigningRequestStatus::Denied;
                request.data = None;
                caller
                    .audit("sign.deny", &request.key_id)
                    .detail("reason", reason.clone().unwrap_or_default())
            }
            Decision::Approve => {
                if !key_usable {
                    return Err(ServiceError::KeyDeleted);
                }
                request.approvals.push(ApprovalInfo {
                    approver_id: caller.actor().to_owned(),
                    approver: approver_name.clone(),
                    at: now(),
                });
                if request.approvals.len() >= request.approvals_required as usize {
                    complete(state, &key, request)?;
                }
                let approvers: Vec<&str> = request
                    .approvals
                    .iter()
                    .map(|a| a.approver_id.as_str())
                    .collect();
                caller
                    .audit("sign.approve", &request.key_id)
                    .detail("approvers", approvers.join(","))
                    .detail("digest", hex(&request.digest))
                    .detail("mechanism", request.mechanism.as_str())
            }
        };
        Ok(event
            .detail("request_id", request.id.clone())
            .detail("status", info(request).status_name()))
    };
    let request = state
        .store()
        .update_signing_request(&caller.org.id, id, &mut update)?;
    if request.status == SigningRequestStatus::Expired {
        return Err(ServiceError::RequestNotPending);
    }
    Ok(info(&request))
}

fn approver_name(state: &AppState, caller: &Caller) -> Result<String> {
    match &caller.credential.user_id {
        Some(user_id) => Ok(state
            .store()
            .user_by_id(&caller.org.id, user_id)?
            .map(|user| user.username)
            .unwrap_or_default()),
        None => Ok(caller.credential.name.clone()),
    }
}

trait StatusName {
    fn status_name(&self) -> String;
}

impl StatusName for SigningRequestInfo {
    fn status_name(&self) -> String {
        serde_json::to_string(&self.status)
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }
}
