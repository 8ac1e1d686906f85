//! Users: search (by id, e-mail or deposit address), a user's detail (balances, open orders,
//! deposits, withdrawals, sessions, security log) and what an operator may do to an account —
//! lock and unlock it, sign out every session, reset its two-factor authentication — each with
//! a reason, a fresh TOTP code, an entry in the audit log and a mail to the user.

use super::AdminPrincipal;
use super::pages::{AdminChrome, Line, message, render, unavailable};
use crate::state::Shared;
use crate::views::{BalanceView, OrderView};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::UserId;
use bourse_store::{SecurityEventKind, StoreError, UserRow};
use serde::Deserialize;

/// Rows each list of the detail page shows (the newest).
const SHOWN: u32 = 50;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub struct UserLine {
    pub id: u64,
    pub email: String,
    pub created: String,
    pub state: String,
}

fn state_of(u: &UserRow) -> String {
    let mut parts = Vec::new();
    if u.locked_ms.is_some() {
        parts.push("locked");
    }
    if !u.email_verified {
        parts.push("e-mail not verified");
    }
    if u.totp_sealed.is_some() {
        parts.push("2FA on");
    }
    parts.join(", ")
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct SearchPage {
    chrome: Option<AdminChrome>,
    q: String,
    users: Vec<UserLine>,
}

/// `GET /users?q=`: a number is a user id, anything else a part of an e-mail or a deposit
/// address (exact).
pub async fn search(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let chrome = Some(p.chrome());
    let text = q.q.trim().chars().take(128).collect::<String>();
    let found = async {
        let mut rows = Vec::new();
        if let Ok(id) = text.parse::<u64>() {
            rows.extend(state.store.user(UserId(id)).await?);
        }
        if let Some(id) = state.store.user_by_deposit_address(&text).await? {
            rows.extend(state.store.user(id).await?);
        }
        for u in state.store.search_users(&text, SHOWN).await? {
            if !rows.iter().any(|r: &UserRow| r.id == u.id) {
                rows.push(u);
            }
        }
        Ok::<_, StoreError>(rows)
    };
    match found.await {
        Ok(rows) => {
            let users = rows
                .iter()
                .map(|u| UserLine {
                    id: u.id.0,
                    email: u.email.clone(),
                    created: crate::web::format::utc(u.created_ms),
                    state: state_of(u),
                })
                .collect();
            render(StatusCode::OK, &SearchPage { chrome, q: text, users })
        }
        Err(e) => unavailable(chrome, "users", &e),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct DetailPage {
    chrome: Option<AdminChrome>,
    id: u64,
    email: String,
    created: String,
    state: String,
    locked: bool,
    two_factor: bool,
    balances: Vec<BalanceView>,
    orders: Vec<OrderView>,
    deposits: Vec<Line>,
    withdrawals: Vec<Line>,
    sessions: Vec<Line>,
    events: Vec<Line>,
    error: String,
    fresh: bool,
}

async fn detail_page(
    state: &Shared,
    p: &AdminPrincipal,
    id: u64,
    status: StatusCode,
    error: String,
) -> Response {
    let chrome = Some(p.chrome());
    let user = UserId(id);
    let loaded = async {
        let Some(row) = state.store.user(user).await? else { return Ok(None) };
        let now = crate::now_ms();
        let balances = state.store.balances(user).await?;
        let filter =
            bourse_store::OrderFilter { market: None, open_only: true, before: None, limit: SHOWN };
        let orders = state.store.orders(user, &filter).await?;
        let filter = bourse_store::DepositFilter { asset: None, before: None, limit: SHOWN };
        let deposits = state.store.deposits(user, &filter).await?;
        let filter = bourse_store::WithdrawalFilter { asset: None, before: None, limit: SHOWN };
        let withdrawals = state.store.withdrawals(user, &filter).await?;
        let sessions = state.store.sessions(user, now).await?;
        let filter = bourse_store::SecurityEventFilter { before: None, limit: SHOWN };
        let events = state.store.security_events(user, &filter).await?;
        Ok::<_, StoreError>(Some((row, balances, orders, deposits, withdrawals, sessions, events)))
    };
    let (row, balances, orders, deposits, withdrawals, sessions, events) = match loaded.await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return message(
                chrome,
                StatusCode::NOT_FOUND,
                "No such user",
                &format!("There is no user {id}."),
            );
        }
        Err(e) => return unavailable(chrome, "users", &e),
    };
    let utc = crate::web::format::utc_seconds;
    let Ok(mirror) = state.mirror.read() else {
        return message(chrome, StatusCode::INTERNAL_SERVER_ERROR, "Error", "Try again.");
    };
    let asset = |a: &bourse_core::AssetId| {
        mirror.assets.get(a).map(|x| (x.symbol.clone(), x.scale)).unwrap_or_default()
    };
    let page = DetailPage {
        chrome,
        id,
        email: row.email.clone(),
        created: utc(row.created_ms),
        state: state_of(&row),
        locked: row.locked_ms.is_some(),
        two_factor: row.totp_sealed.is_some(),
        balances: balances.iter().map(|b| BalanceView::new(b, &mirror)).collect(),
        orders: orders.iter().map(|o| OrderView::new(o, &mirror)).collect(),
        deposits: deposits
            .iter()
            .map(|d| {
                let (symbol, scale) = asset(&d.asset);
                Line {
                    cells: vec![
                        utc(d.first_seen_ms),
                        format!("{} {symbol}", crate::views::units(d.amount, scale)),
                        d.status.as_str().into(),
                        format!("{}:{}", d.txid, d.vout),
                    ],
                }
            })
            .collect(),
        withdrawals: withdrawals
            .iter()
            .map(|w| {
                let (symbol, scale) = asset(&w.asset);
                Line {
                    cells: vec![
                        utc(w.created_ms),
                        format!("{} {symbol}", crate::views::units(w.amount, scale)),
                        w.status.as_str().into(),
                        w.address.clone(),
                        w.txid.clone().unwrap_or_default(),
                    ],
                }
            })
            .collect(),
        sessions: sessions
            .iter()
            .map(|s| Line {
                cells: vec![
                    utc(s.created_ms),
                    utc(s.last_seen_ms),
                    s.ip.clone(),
                    s.user_agent.clone(),
                ],
            })
            .collect(),
        events: events
            .iter()
            .map(|e| Line {
                cells: vec![utc(e.at_ms), e.kind.as_str().into(), e.ip.clone(), e.detail.clone()],
            })
            .collect(),
        error,
        fresh: p.is_fresh(state),
    };
    render(status, &page)
}

pub async fn detail(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(id): Path<u64>,
) -> Response {
    detail_page(&state, &p, id, StatusCode::OK, String::new()).await
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// What an operator does to an account.
#[derive(Clone, Copy)]
enum Action {
    Lock,
    Unlock,
    SignOut,
    ResetTwoFactor,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Lock => "user.lock",
            Action::Unlock => "user.unlock",
            Action::SignOut => "user.sign_out",
            Action::ResetTwoFactor => "user.reset_two_factor",
        }
    }
}

async fn act(
    state: &Shared,
    p: &AdminPrincipal,
    id: u64,
    action: Action,
    f: &ActionForm,
) -> Result<(), (StatusCode, String)> {
    let reason = super::required_reason(&f.reason)?;
    p.fresh_totp(state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
    let db = |e: StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let user = UserId(id);
    let row = state
        .store
        .user(user)
        .await
        .map_err(db)?
        .ok_or((StatusCode::NOT_FOUND, format!("there is no user {id}")))?;
    let now = crate::now_ms();
    let site = state.config.public_url();
    let client = &p.client;
    let (detail, mail) = match action {
        Action::Lock => {
            state.store.set_user_locked(user, Some(now)).await.map_err(db)?;
            let ended = state.store.revoke_sessions(user, None).await.map_err(db)?;
            crate::auth::forget_keys_of(state, user);
            let kind = SecurityEventKind::SessionRevoked;
            crate::security::record(state, user, kind, client, "account locked by the exchange")
                .await;
            (
                format!("{ended} session(s) ended"),
                Some((
                    "Your account is locked",
                    format!(
                        "The exchange locked your bourse account: {reason}\n\nYou cannot log in, trade through API keys or withdraw until it is unlocked. Reply to this mail or contact the exchange's support."
                    ),
                )),
            )
        }
        Action::Unlock => {
            state.store.set_user_locked(user, None).await.map_err(db)?;
            (
                String::new(),
                Some((
                    "Your account is unlocked",
                    format!(
                        "The exchange unlocked your bourse account. You can log in again at {site}/login"
                    ),
                )),
            )
        }
        Action::SignOut => {
            let ended = state.store.revoke_sessions(user, None).await.map_err(db)?;
            let kind = SecurityEventKind::SessionRevoked;
            crate::security::record(
                state,
                user,
                kind,
                client,
                "every session ended by the exchange",
            )
            .await;
            (format!("{ended} session(s) ended"), None)
        }
        Action::ResetTwoFactor => {
            if row.totp_sealed.is_none() {
                return Err((StatusCode::CONFLICT, "two-factor authentication is off".into()));
            }
            state.store.disable_totp(user).await.map_err(db)?;
            let ended = state.store.revoke_sessions(user, None).await.map_err(db)?;
            let kind = SecurityEventKind::TwoFactorDisabled;
            crate::security::record(state, user, kind, client, "reset by the exchange").await;
            (
                format!("{ended} session(s) ended"),
                Some((
                    "Two-factor authentication was reset",
                    format!(
                        "The exchange turned off two-factor authentication on your bourse account at your request: {reason}\n\nWithdrawals are locked for 24 hours. Turn it on again on your security page: {site}/account/security\n\nIf you did not ask for this, contact the exchange at once."
                    ),
                )),
            )
        }
    };
    let target = format!("user {id} ({})", row.email);
    super::audit::record(state, p, action.name(), &target, reason, &detail).await;
    if let Some((subject, body)) = mail {
        state.mail(&row.email, subject, &body).await;
    }
    Ok(())
}

async fn answer(
    state: &Shared,
    p: &AdminPrincipal,
    id: u64,
    done: Result<(), (StatusCode, String)>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/users/{id}")).into_response(),
        Err((status, error)) => detail_page(state, p, id, status, error).await,
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub async fn $name(
            State(state): State<Shared>,
            Extension(p): Extension<AdminPrincipal>,
            Path(id): Path<u64>,
            Form(f): Form<ActionForm>,
        ) -> Response {
            let done = act(&state, &p, id, $action, &f).await;
            answer(&state, &p, id, done).await
        }
    };
}

action_handler!(lock, Action::Lock);
action_handler!(unlock, Action::Unlock);
action_handler!(sign_out, Action::SignOut);
action_handler!(reset_two_factor, Action::ResetTwoFactor);
