//! Audit read access: records as JSON or JSON lines, signed checkpoints of the chain head (made on
//! demand), and the checkpoints the service kept.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cryptera_proto::audit::{AuditCheckpoint, AuditCheckpointList, AuditRecordList};
use cryptera_proto::auth::Operation;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{Result, ServiceError};
use crate::server::AppState;
use crate::store::AuditFilter;
use crate::util::now;

#[derive(Deserialize)]
pub struct RecordsQuery {
    after: Option<u64>,
    limit: Option<u32>,
    /// E.g. `key.sign` for signing records.
    action: Option<String>,
    /// The object acted on, e.g. a key id.
    target: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: std::result::Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    caller.require(Operation::Audit)?;
    let Query(query) = query.map_err(|err| ServiceError::InvalidRequest(err.body_text()))?;
    let filter = AuditFilter {
        after_seq: query.after.unwrap_or(0),
        limit: query.limit.unwrap_or(1000).clamp(1, 10_000),
        action: query.action,
        target: query.target,
        since: query.since,
        until: query.until,
    };
    let org_id = caller.org.id.clone();
    let records = state
        .db(move |store| store.search_audit(&org_id, &filter))
        .await?;
    let wants_lines = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("application/x-ndjson"));
    if wants_lines {
        let mut body = String::new();
        for record in &records {
            body.push_str(&serde_json::to_string(record).unwrap_or_default());
            body.push('\n');
        }
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            )],
            body,
        )
            .into_response());
    }
    Ok(Json(AuditRecordList { records }).into_response())
}

pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditCheckpoint>> {
    caller.require(Operation::Audit)?;
    let org_id = caller.org.id.clone();
    let checkpoint = state
        .blocking(move |state| {
            let checkpoint = crate::checkpoint::sign_head(state, &org_id, now())?;
            state.store().save_checkpoint(&checkpoint)?;
            Ok(checkpoint)
        })
        .await?;
    Ok(Json(checkpoint))
}

pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditCheckpointList>> {
    caller.require(Operation::Audit)?;
    let org_id = caller.org.id.clone();
    let checkpoints = state.db(move |store| store.checkpoints(&org_id)).await?;
    Ok(Json(AuditCheckpointList { checkpoints }))
}
