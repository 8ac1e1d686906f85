//! Deposits: the chain deposits of every user (pending ones waiting for confirmations, credited
//! ones, and the rest), and manual credits for deposits that arrive off-chain (a bank transfer,
//! cash): an operator credits a user with the transfer's reference. The reference is the
//! engine's deposit key (`bank:<reference>`), so the same reference credits once, however often
//! it is entered.

use super::AdminPrincipal;
use super::pages::{AdminChrome, Line, render, unavailable};
use crate::state::Shared;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::{Command, ExternalKey, Reject};
use bourse_store::DepositStatus;
use serde::Deserialize;

/// Deposits shown per page.
const SHOWN: u32 = 100;

#[derive(Template)]
#[template(path = "admin/deposits.html")]
struct DepositsPage {
    chrome: Option<AdminChrome>,
    assets: Vec<String>,
    /// `pending`, `credited` or `all`.
    shown: &'static str,
    deposits: Vec<Line>,
    /// The link to older deposits, when there may be some.
    older: Option<String>,
    error: String,
    notice: String,
    fresh: bool,
}

#[derive(Default, Deserialize)]
pub struct DepositsQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    credited: Option<String>,
}

async fn page(
    state: &Shared,
    p: &AdminPrincipal,
    q: &DepositsQuery,
    status: StatusCode,
    error: String,
    notice: String,
) -> Response {
    let chrome = Some(p.chrome());
    let (shown, filter) = match q.status.as_deref() {
        Some("credited") => ("credited", Some(DepositStatus::Credited)),
        Some("all") => ("all", None),
        _ => ("pending", Some(DepositStatus::Pending)),
    };
    let rows = match state.store.recent_deposits(filter, q.before, SHOWN).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(chrome, "deposits", &e),
    };
    let older = (rows.len() == SHOWN as usize).then(|| {
        let last = rows.last().map_or(0, |d| d.id).to_string();
        crate::web::format::with_query("/deposits", &[("status", shown), ("before", &last)])
    });
    let Ok(mirror) = state.mirror.read() else {
        return super::pages::message(
            chrome,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Try again.",
        );
    };
    let mut assets: Vec<String> = mirror.assets.values().map(|a| a.symbol.clone()).collect();
    assets.sort();
    let utc = crate::web::format::utc_seconds;
    let deposits = rows
        .iter()
        .map(|d| {
            let (symbol, scale) = mirror
                .assets
                .get(&d.asset)
                .map(|a| (a.symbol.as_str(), a.scale))
                .unwrap_or(("?", 0));
            Line {
                cells: vec![
                    d.id.to_string(),
                    utc(d.first_seen_ms),
                    d.user.0.to_string(),
                    format!("{} {symbol}", crate::views::units(d.amount, scale)),
                    d.confirmations.to_string(),
                    d.status.as_str().into(),
                    format!("{}:{}", d.txid, d.vout),
                ],
            }
        })
        .collect();
    drop(mirror);
    let fresh = p.is_fresh(state);
    render(status, &DepositsPage { chrome, assets, shown, deposits, older, error, notice, fresh })
}

/// `GET /deposits?status=pending|credited|all&before=ID`: chain deposits of every user,
/// newest first, and the form for off-chain credits.
pub async fn list(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    axum::extract::Query(q): axum::extract::Query<DepositsQuery>,
) -> Response {
    let notice =
        q.credited.as_ref().map(|r| format!("Credited (reference {r}).")).unwrap_or_default();
    page(&state, &p, &q, StatusCode::OK, String::new(), notice).await
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
        let user = super::user_id(&f.user)?;
        let reference = f.reference.trim();
        let key = ExternalKey::new(&format!("bank:{reference}"))
            .ok()
            .filter(|_| !reference.is_empty() && reference.len() <= 100)
            .ok_or_else(|| {
                bad("the reference is 1 to 100 printable characters without spaces".into())
            })?;
        let (asset, scale, symbol) = super::asset(&state, &f.asset)?;
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
        match super::refusal(&outcome.events) {
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
        Err((status, error)) => {
            page(&state, &p, &DepositsQuery::default(), status, error, String::new()).await
        }
    }
}
