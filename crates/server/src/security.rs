//! The security audit log: what happened to an account's security (logins and failed logins,
//! logouts and revoked sessions, password changes, API keys, withdrawals), with the client's IP
//! address and user agent. Append-only in the store; each user reads their own on the security
//! page and at `GET /api/v1/security-events`.

use crate::state::Shared;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use bourse_core::UserId;
use bourse_store::{NewSecurityEvent, SecurityEventKind};
use std::net::SocketAddr;

/// Who is calling, as the log records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: String,
    /// At most 256 characters.
    pub user_agent: String,
}

impl Client {
    pub fn of(headers: &HeaderMap, peer: SocketAddr) -> Client {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        Client { ip: peer.ip().to_string(), user_agent }
    }
}

/// Middleware: every request carries its [`Client`] as an extension.
pub async fn client(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = Client::of(request.headers(), peer);
    request.extensions_mut().insert(client);
    next.run(request).await
}

/// Appends an event to `user`'s log. A failure to record is logged, and the action stands.
pub async fn record(
    state: &Shared,
    user: UserId,
    kind: SecurityEventKind,
    client: &Client,
    detail: impl Into<String>,
) {
    let event = NewSecurityEvent {
        user,
        at_ms: crate::now_ms(),
        kind,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        detail: detail.into(),
    };
    if let Err(e) = state.store.record_security_event(&event).await {
        tracing::error!(error = %e, user = user.0, kind = kind.as_str(), "cannot record a security event");
    }
}
