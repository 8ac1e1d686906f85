//! Manual credits for deposits that arrive off-chain (a bank transfer, cash): an operator
//! credits a user with the transfer's reference. The reference is the engine's deposit key
//! (`bank:<reference>`), so the same reference credits once, however often it is entered.

use super::AdminPrincipal;
use super::pages::{AdminChrome, render};
use crate::state::Shared;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::{Command, Event, ExternalKey, Reject, UserId};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/deposits.html")]
struct DepositsPage {
    chrome: Option<AdminChrome>,
    assets: Vec<String>,
    error: String,
    notice: String,
    fresh: bool,
}

fn page(
    state: &Shared,
    p: &AdminPrincipal,
    status: StatusCode,
    error: String,
    notice: String,
) -> Response {
    let mut assets: Vec<String> = state
        .mirror
        .read()
        .map(|m| m.assets.values().map(|a| a.symbol.clone()).collect())
        .unwrap_or_default();
    assets.sort();
    let chrome = Some(p.chrome());
    render(status, &DepositsPage { chrome, assets, error, notice, fresh: p.is_fresh(state) })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    credited: Option<String>,
}

pub async fn form(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    axum::extract::Query(q): axum::extract::Query<NoticeQuery>,
) -> Response {
    let notice = q.credited.map(|r| format!("Credited (reference {r}).")).unwrap_or_default();
    page(&state, &p, StatusCode::OK, String::new(), notice)
}

#[derive(Deserialize)]
pub struct CreditForm {
    user: String,
    asset: String,
    amount: String,
    reference: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /deposits/credit`.
pub async fn credit(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Form(f): Form<CreditForm>,
) -> Response {
    let done = async {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let user = f
            .user
            .trim()
            .parse::<u64>()
            .map(UserId)
            .map_err(|_| bad("the user is a user id".into()))?;
        let reference = f.reference.trim();
        let key = ExternalKey::new(&format!("bank:{reference}"))
            .ok()
            .filter(|_| !reference.is_empty() && reference.len() <= 100)
            .ok_or_else(|| {
                bad("the reference is 1 to 100 printable characters without spaces".into())
            })?;
        let (asset, scale, symbol) = state
            .mirror
            .read()
            .ok()
            .and_then(|m| {
                m.asset_by_symbol(f.asset.trim()).map(|a| (a.id, a.scale, a.symbol.clone()))
            })
            .ok_or_else(|| bad(format!("there is no asset {}", f.asset.trim())))?;
        let amount = bourse_core::decimal::parse_units(f.amount.trim(), scale)
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| {
                bad(format!(
                    "the amount is a positive {symbol} amount with at most {scale} decimals"
                ))
            })?;
        let reason = f.reason.trim();
        if reason.chars().count() > 200 {
            return Err(bad("the note is at most 200 characters".into()));
        }
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let row = state
            .store
            .user(user)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
            .ok_or((StatusCode::NOT_FOUND, format!("there is no user {}", user.0)))?;
        let outcome = state
            .engine
            .execute(Command::Deposit { user, asset, amount, key })
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        match outcome.events.iter().find_map(|e| match e {
            Event::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }) {
            None => {}
            Some(Reject::DuplicateDeposit) => {
                return Err((
                    StatusCode::CONFLICT,
                    format!("reference {reference} was credited already: nothing credited"),
                ));
            }
            Some(other) => {
                return Err((StatusCode::CONFLICT, format!("the engine refused: {other}")));
            }
        }
        state.note_user_seq(user, outcome.seq);
        let shown = bourse_core::decimal::format_units_trimmed(amount, scale);
        let target = format!("user {} ({})", user.0, row.email);
        let detail = format!("{shown} {symbol}, reference {reference}");
        super::audit::record(&state, &p, "deposit.credit", &target, reason, &detail).await;
        Ok(reference.to_string())
    };
    match done.await {
        Ok(reference) => {
            let to = format!("/deposits?credited={}", crate::web::format::encode(&reference));
            Redirect::to(&to).into_response()
        }
        Err((status, error)) => page(&state, &p, status, error, String::new()),
    }
}
