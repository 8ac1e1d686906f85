//! The security audit log: what happened to an account's security (logins and failed logins,
//! logouts and revoked sessions, password changes, API keys, withdrawals), with the client's IP
//! address and user agent. Append-only in the store; each user reads their own on the security
//! page and at `GET /api/v1/security-events`.

use crate::state::Shared;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use bourse_core::UserId;
use bourse_store::{NewSecurityEvent, SecurityEventKind};
use std::net::{IpAddr, SocketAddr};

/// Who is calling, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// [`Client::addr`] as text.
    pub ip: String,
    /// The peer's address, or behind a trusted proxy the one it forwarded for.
    pub addr: IpAddr,
    /// At most 256 characters.
    pub user_agent: String,
}

/// The most `X-Forwarded-For` hops looked at.
const FORWARDED_HOPS_MAX: usize = 16;

impl Client {
    pub fn of(headers: &HeaderMap, peer: SocketAddr, trusted_proxies: &[String]) -> Client {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let addr = client_addr(headers, peer.ip(), trusted_proxies);
        Client { ip: addr.to_string(), addr, user_agent }
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy. Then it is the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy: each proxy appends the address it
/// saw, so the entries right of that one were written by trusted proxies, and the ones left of
/// it by anyone (the client may send the header itself).
pub fn client_addr(headers: &HeaderMap, peer: IpAddr, trusted_proxies: &[String]) -> IpAddr {
    let trusted =
        |ip: IpAddr| !trusted_proxies.is_empty() && crate::auth::ip_allowed(trusted_proxies, ip);
    if !trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut addr = peer;
    for hop in hops.iter().rev().take(FORWARDED_HOPS_MAX) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                addr = ip;
                if !trusted(ip) {
                    break;
                }
            }
            // Not an address: what is left of it cannot be trusted either.
            Err(_) => break,
        }
    }
    addr
}

/// Middleware: every request carries its [`Client`] as an extension.
pub async fn client(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = Client::of(request.headers(), peer, &state.config.trusted_proxies);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies = vec!["10.0.0.0/8".to_string(), "127.0.0.1".to_string()];
        let h = forwarded(&["198.51.100.9, 203.0.113.5", "10.1.2.3"]);
        // No trusted proxy configured, or a peer that is not one: the header is ignored.
        assert_eq!(client_addr(&h, ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(client_addr(&h, ip("192.0.2.1"), &proxies), ip("192.0.2.1"));
        // Through two trusted hops: the nearest untrusted address, not what the client wrote.
        assert_eq!(client_addr(&h, ip("127.0.0.1"), &proxies), ip("203.0.113.5"));
        // Nothing forwarded, or nonsense: the last trusted hop.
        assert_eq!(client_addr(&HeaderMap::new(), ip("127.0.0.1"), &proxies), ip("127.0.0.1"));
        let h = forwarded(&["203.0.113.5, not-an-ip, 10.0.0.7"]);
        assert_eq!(client_addr(&h, ip("127.0.0.1"), &proxies), ip("10.0.0.7"));
        // IPv6 clients.
        let h = forwarded(&["2001:db8::5"]);
        assert_eq!(client_addr(&h, ip("127.0.0.1"), &proxies), ip("2001:db8::5"));
    }
}
