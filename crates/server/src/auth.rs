//! Who is calling: a session cookie (browsers) or an API key with an HMAC-SHA256 signature
//! (programs). The middleware runs before every private route, buffers the (size-limited) body
//! for the signature, checks scope, IP allowlist and CSRF, and leaves a [`Principal`] in the
//! request's extensions. Handlers never authenticate on their own.
//!
//! Signed requests (the Binance rule, so one verifier serves `/api/v1` and `/api/v3`): header
//! `X-API-KEY` (or `X-MBX-APIKEY`); parameters `timestamp` (ms), optional `recvWindow` and
//! `signature` last, in the query string or (as ccxt sends Binance orders) in a form body; the
//! signature is the hex HMAC-SHA256, under the key's secret, of the raw query string followed
//! by the raw body, without the `signature` pair.

use crate::crypto;
use crate::error::ApiError;
use crate::state::{API_KEY_CACHE_MAX, CachedKey, Shared};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bourse_core::UserId;
use bourse_store::Scopes;
use std::net::{IpAddr, SocketAddr};

pub const SESSION_COOKIE: &str = "bourse_session";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Session { id: i64 },
    ApiKey { id: i64, scopes: Scopes },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub via: Via,
}

/// What a route demands of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A session or a key with this scope.
    Scope(Scopes),
    /// A browser session only (account security: sessions, API keys).
    Session,
}

pub async fn require(
    State((state, requirement)): State<(Shared, Requirement)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<crate::security::Client>()
        .map_or(peer.ip(), |client| client.addr);
    match authenticate(&state, requirement, ip, request).await {
        Ok((principal, mut request)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authenticate(
    state: &Shared,
    requirement: Requirement,
    ip: IpAddr,
    request: Request,
) -> Result<(Principal, Request), ApiError> {
    let headers = request.headers();
    let key = headers.get("x-api-key").or_else(|| headers.get("x-mbx-apikey"));
    if let Some(key) = key {
        if requirement == Requirement::Session {
            return Err(ApiError::forbidden(
                "session_required",
                "this action needs a logged-in session, not an API key",
            ));
        }
        let key = key
            .to_str()
            .map_err(|_| ApiError::unauthorized("invalid_api_key", "API key format invalid"))?
            .to_string();
        return verify_signed(state, requirement, ip, &key, request).await;
    }
    let token = session_token(headers).ok_or_else(|| {
        ApiError::unauthorized("unauthenticated", "log in or sign the request with an API key")
    })?;
    let now = crate::now_ms();
    let session =
        state.store.live_session(&crypto::token_hash(&token), now).await?.ok_or_else(|| {
            ApiError::unauthorized("session_expired", "the session has expired; log in again")
        })?;
    if !same_origin(headers, &state.config.public_url()) && !is_safe(request.method()) {
        return Err(ApiError::forbidden("csrf", "cross-site request refused"));
    }
    // Sliding expiry, written at most once a minute per session.
    if now - session.last_seen_ms > 60_000 {
        let idle = i64::try_from(state.config.limits.session_idle_hours)
            .unwrap_or(24)
            .saturating_mul(3_600_000);
        state.store.touch_session(session.id, now, now.saturating_add(idle)).await?;
    }
    Ok((Principal { user: session.user, via: Via::Session { id: session.id } }, request))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// CSRF defence for cookie-authenticated requests: a browser says where a request comes from
/// (`Sec-Fetch-Site`, `Origin`); anything cross-site is refused. Programs that send neither
/// header are not browsers and cannot be made to carry a victim's cookie.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            origin == public_url.trim_end_matches('/')
                || origin == format!("http://{host}")
                || origin == format!("https://{host}")
        }
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_string())
        })
    })
}

/// The answer to anything a locked account tries.
pub fn locked_account() -> ApiError {
    ApiError::forbidden("account_locked", "this account is locked; contact the exchange")
}

/// Drops `user`'s keys from the cache: the next request with one reads the database again (a
/// locked account's keys then stop working at once).
pub fn forget_keys_of(state: &Shared, user: bourse_core::UserId) {
    if let Ok(mut cache) = state.api_keys.lock() {
        cache.retain(|_, k| k.user != user);
    }
}

/// The opened key, from the cache or the database.
pub async fn open_key(state: &Shared, key: &str, now: i64) -> Result<CachedKey, ApiError> {
    let ttl = state.api_key_ttl_ms();
    if let Ok(cache) = state.api_keys.lock()
        && let Some(hit) = cache.get(key)
        && now - hit.loaded_ms < ttl
    {
        return Ok(hit.clone());
    }
    let row =
        state.store.api_key(key).await?.ok_or_else(|| {
            ApiError::unauthorized("invalid_api_key", "unknown or revoked API key")
        })?;
    if state.store.user(row.user).await?.is_some_and(|u| u.locked_ms.is_some()) {
        return Err(locked_account());
    }
    let secret = state
        .keys
        .open(&row.secret_sealed)
        .map_err(|e| ApiError::internal("an API secret does not open", e))?;
    let opened = CachedKey {
        id: row.id,
        user: row.user,
        scopes: row.scopes,
        ip_allowlist: row.ip_allowlist,
        secret,
        loaded_ms: now,
    };
    if let Ok(mut cache) = state.api_keys.lock() {
        if cache.len() >= API_KEY_CACHE_MAX {
            cache.retain(|_, k| now - k.loaded_ms < ttl);
        }
        if cache.len() < API_KEY_CACHE_MAX {
            cache.insert(key.to_string(), opened.clone());
        }
    }
    Ok(opened)
}

async fn verify_signed(
    state: &Shared,
    requirement: Requirement,
    ip: IpAddr,
    key: &str,
    request: Request,
) -> Result<(Principal, Request), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.limits.body_bytes_max;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "request body too large")
    })?;
    let query = parts.uri.query().unwrap_or("");
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let signed = parse_signed(query, &bytes, form)?;
    let now = crate::now_ms();
    let recv_window = match signed.recv_window {
        Some(w) if w > state.config.limits.recv_window_max_ms => {
            return Err(ApiError::bad_request(
                "bad_recv_window",
                format!("recvWindow must be at most {}", state.config.limits.recv_window_max_ms),
            ));
        }
        Some(w) => w,
        None => state.config.limits.recv_window_default_ms,
    };
    check_timestamp(signed.timestamp, now, recv_window)?;
    let row = open_key(state, key, now).await?;
    if !crypto::hmac_verify(&row.secret, &signed.payload, &signed.signature) {
        return Err(ApiError::unauthorized(
            "invalid_signature",
            "signature for this request is not valid",
        ));
    }
    if !ip_allowed(&row.ip_allowlist, ip) {
        return Err(ApiError::forbidden(
            "ip_not_allowed",
            "this API key may not be used from this address",
        ));
    }
    if let Requirement::Scope(scope) = requirement
        && !row.scopes.contains(scope)
    {
        return Err(ApiError::forbidden(
            "missing_scope",
            "this API key lacks the scope for this action",
        ));
    }
    let principal =
        Principal { user: row.user, via: Via::ApiKey { id: row.id, scopes: row.scopes } };
    Ok((principal, Request::from_parts(parts, Body::from(bytes))))
}

#[derive(Debug)]
pub struct Signed {
    pub timestamp: u64,
    pub recv_window: Option<u64>,
    pub signature: String,
    /// What was signed: the raw query and then the raw body, without the `signature` pair.
    pub payload: Vec<u8>,
}

/// The signing parameters of one side of a request (the query or a form body): `timestamp`,
/// `recvWindow`, `signature`, and the pairs without the signature, as they came.
#[derive(Default)]
struct Side<'a> {
    timestamp: Option<u64>,
    recv_window: Option<u64>,
    signature: Option<&'a str>,
    kept: Vec<&'a str>,
}

fn scan(text: &str) -> Result<Side<'_>, ApiError> {
    let mut side = Side::default();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "signature" => {
                side.signature = Some(value);
                continue;
            }
            "timestamp" => side.timestamp = value.parse::<u64>().ok(),
            "recvWindow" | "recv_window" => {
                // Binance allows three decimals of milliseconds; whole milliseconds count.
                let whole = value.split('.').next().unwrap_or("");
                side.recv_window = Some(whole.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "bad_recv_window",
                        "recvWindow must be a number of milliseconds",
                    )
                })?);
            }
            _ => {}
        }
        side.kept.push(pair);
    }
    Ok(side)
}

/// The signing parameters of a request. They are in the query string, or — as ccxt sends a
/// Binance order — all in an `application/x-www-form-urlencoded` body (`form`), the query
/// winning where both name one. The payload is the raw query and the raw body, the
/// `signature` pair left out of whichever carried it.
pub fn parse_signed(query: &str, body: &[u8], form: bool) -> Result<Signed, ApiError> {
    let q = scan(query)?;
    let body_text = if form { std::str::from_utf8(body).ok() } else { None };
    let b = match body_text {
        Some(text) => scan(text)?,
        None => Side::default(),
    };
    let mut payload = q.kept.join("&").into_bytes();
    let signature = match (q.signature, b.signature) {
        (Some(s), _) => {
            payload.extend_from_slice(body);
            s
        }
        (None, Some(s)) => {
            payload.extend_from_slice(b.kept.join("&").as_bytes());
            s
        }
        (None, None) => "",
    };
    if signature.is_empty() {
        return Err(ApiError::bad_request(
            "missing_signature",
            "the signature parameter is missing",
        ));
    }
    let timestamp = q.timestamp.or(b.timestamp).ok_or_else(|| {
        ApiError::bad_request(
            "missing_timestamp",
            "the timestamp parameter is missing or malformed",
        )
    })?;
    Ok(Signed {
        timestamp,
        recv_window: q.recv_window.or(b.recv_window),
        signature: signature.to_string(),
        payload,
    })
}

/// Binance's rule: `timestamp < now + 1000` and `now - timestamp <= recvWindow` (µs
/// timestamps are accepted too).
pub fn check_timestamp(timestamp: u64, now_ms: i64, recv_window_ms: u64) -> Result<(), ApiError> {
    let ts = if timestamp > 100_000_000_000_000 { timestamp / 1000 } else { timestamp };
    let now = u64::try_from(now_ms).unwrap_or(0);
    if ts >= now.saturating_add(1000) {
        return Err(ApiError::bad_request(
            "timestamp_ahead",
            "timestamp for this request was 1000ms ahead of the server's time",
        ));
    }
    if now.saturating_sub(ts) > recv_window_ms {
        return Err(ApiError::bad_request(
            "timestamp_outside_recv_window",
            "timestamp for this request is outside of the recvWindow",
        ));
    }
    Ok(())
}

/// True if the list is empty or `ip` matches an address or CIDR in it.
pub fn ip_allowed(list: &[String], ip: IpAddr) -> bool {
    list.is_empty() || list.iter().any(|entry| cidr_contains(entry, ip))
}

pub fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
        None => {
            let a = entry.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn cidr_contains(entry: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = parse_cidr(entry) else { return false };
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ip_allowed(&[], ip("1.2.3.4")));
        let list = vec!["10.0.0.0/8".to_string(), "192.168.1.7".to_string()];
        assert!(ip_allowed(&list, ip("10.200.1.1")));
        assert!(ip_allowed(&list, ip("192.168.1.7")));
        assert!(!ip_allowed(&list, ip("192.168.1.8")));
        assert!(ip_allowed(&list, ip("::ffff:10.1.1.1")));
        assert!(ip_allowed(&["::1".to_string()], ip("::1")));
        assert!(ip_allowed(&["0.0.0.0/0".to_string()], ip("8.8.8.8")));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nonsense").is_none());
    }

    #[test]
    fn signed_query_and_window() {
        let q = parse_signed(
            "market=BTC-USDT&timestamp=1000&recvWindow=5000&signature=ab",
            b"{}",
            false,
        )
        .unwrap();
        assert_eq!(q.payload, b"market=BTC-USDT&timestamp=1000&recvWindow=5000{}");
        assert_eq!(q.timestamp, 1000);
        assert_eq!(q.recv_window, Some(5000));
        assert!(parse_signed("timestamp=1", b"", false).is_err());
        assert!(parse_signed("signature=ab", b"", false).is_err());
        // ccxt's Binance order: everything in a form body; the query (if any) comes first.
        let body = b"timestamp=7&symbol=BTCUSDT&recvWindow=10000&signature=cd";
        let q = parse_signed("", body, true).unwrap();
        assert_eq!((q.timestamp, q.recv_window, q.signature.as_str()), (7, Some(10000), "cd"));
        assert_eq!(q.payload, b"timestamp=7&symbol=BTCUSDT&recvWindow=10000");
        let q = parse_signed("a=1", body, true).unwrap();
        assert_eq!(q.payload, b"a=1timestamp=7&symbol=BTCUSDT&recvWindow=10000");
        // A JSON body is signed as it is, never read for parameters.
        assert!(parse_signed("", body, false).is_err());
        assert!(check_timestamp(10_000, 10_500, 5000).is_ok());
        assert!(check_timestamp(10_000, 16_000, 5000).is_err());
        assert!(check_timestamp(12_000, 10_000, 5000).is_err());
    }
}
