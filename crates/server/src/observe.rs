//! Each HTTP request, observed once: its request id (the client's `X-Request-Id` when it is a
//! short printable token, else a fresh one), echoed in the response's `X-Request-Id`; one log
//! line (`bourse::http`: id, method, route, status, latency, client address); and its metrics
//! (`metrics.rs`). It runs after routing, so it knows the matched route.

use crate::state::Shared;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

const REQUEST_ID: &str = "x-request-id";

/// The client's request id if it is 1–64 of `A-Z a-z 0-9 - _ .`, else a fresh random one.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|v| {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    match given {
        Some(id) => id.to_string(),
        None => {
            let mut bytes = [0u8; 8];
            if getrandom::fill(&mut bytes).is_err() {
                return "unknown".into();
            }
            hex::encode(bytes)
        }
    }
}

pub async fn http(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let client = request
        .extensions()
        .get::<crate::security::Client>()
        .map(|c| c.ip.clone())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    tracing::info!(
        target: "bourse::http",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_us = us,
        client = %client,
        "request"
    );
    state.metrics.http(method, route, status, us);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
