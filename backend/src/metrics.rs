//! Prometheus metrics and per-request logs: request counts and latencies per route and status, and
//! signatures per key. Served at `/metrics` to loopback clients only (it names key ids).
//!
//! Logs carry method, route template, status and latency; never bodies, headers or tokens.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ServiceError;
use crate::server::AppState;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    signatures: BTreeMap<(String, String), u64>,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // Counters stay usable after a panic elsewhere; at worst one increment is lost.
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut counters = self.counters();
        *counters
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let histogram = counters.latency.entry(route.to_owned()).or_default();
        histogram.count += 1;
        histogram.sum += seconds;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    /// Counts one signature made with `key_id`.
    pub fn signature(&self, org_id: &str, key_id: &str) {
        *self
            .counters()
            .signatures
            .entry((org_id.to_owned(), key_id.to_owned()))
            .or_default() += 1;
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let counters = self.counters();
        let mut out = String::new();
        out.push_str("# HELP cryptera_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE cryptera_requests_total counter\n");
        for ((method, route, status), count) in &counters.requests {
            let _ = writeln!(
                out,
                "cryptera_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP cryptera_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE cryptera_request_duration_seconds histogram\n");
        for (route, histogram) in &counters.latency {
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.counts.iter()) {
                let _ = writeln!(
                    out,
                    "cryptera_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "cryptera_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "cryptera_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "cryptera_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out.push_str(
            "# HELP cryptera_signatures_total Signatures made, by organisation and key.\n",
        );
        out.push_str("# TYPE cryptera_signatures_total counter\n");
        for ((org, key), count) in &counters.signatures {
            let _ = writeln!(
                out,
                "cryptera_signatures_total{{organisation=\"{org}\",key=\"{key}\"}} {count}"
            );
        }
        out
    }
}

/// Middleware: times every request, counts it under its route template, and logs it.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The template (`/v1/keys/{id}`), never the concrete path, so ids do not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics().observe(&method, &route, status, seconds);
    tracing::info!(%method, %route, status, latency_ms = seconds * 1000.0, "request");
    response
}

/// `GET /metrics`, for loopback clients only.
pub async fn serve(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return ServiceError::NotFound("endpoint").into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics().render(),
    )
        .into_response()
}
