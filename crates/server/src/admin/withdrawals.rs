//! The queue of withdrawals waiting in `review` (above `withdrawals.review_above`), and the
//! operator's approve and reject. Approving moves the withdrawal on to `held` (the wallet then
//! sends it with its next batch) once enough different admins approved it (two above
//! `withdrawals.two_admins_above`); rejecting, with a reason, moves it to `cancelling`, and the
//! withdrawal sweeper releases its hold through the engine (`WithdrawalFail`). Both moves are
//! compare-and-sets on the `review` status, so two admins can never both decide one withdrawal.

use super::AdminPrincipal;
use super::pages::{AdminChrome, render, unavailable};
use crate::state::Shared;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_store::{StoreError, WithdrawalRow, WithdrawalStatus};
use serde::Deserialize;

pub struct QueueLine {
    pub id: i64,
    pub user: String,
    pub asset: String,
    pub amount: String,
    pub address: String,
    pub requested: String,
    /// Who approved it so far.
    pub approved_by: Vec<String>,
    pub needed: usize,
}

#[derive(Template)]
#[template(path = "admin/withdrawals.html")]
struct QueuePage {
    chrome: Option<AdminChrome>,
    lines: Vec<QueueLine>,
    error: String,
    notice: String,
    /// Whether a TOTP code entered in this session is still fresh (the forms ask otherwise).
    fresh: bool,
}

/// The withdrawal's asset symbol and decimals.
fn asset_of(state: &Shared, w: &WithdrawalRow) -> (String, u8) {
    state
        .mirror
        .read()
        .ok()
        .and_then(|m| m.assets.get(&w.asset).map(|a| (a.symbol.clone(), a.scale)))
        .unwrap_or_default()
}

async fn queue_page(
    state: &Shared,
    p: &AdminPrincipal,
    status: StatusCode,
    error: String,
    notice: String,
) -> Response {
    let chrome = Some(p.chrome());
    let loaded = async {
        let limit = bourse_store::LIST_LIMIT_MAX;
        let rows = state.store.withdrawals_in_status(WithdrawalStatus::Review, limit).await?;
        let admins = state.store.admins().await?;
        let mut lines = Vec::with_capacity(rows.len());
        for w in rows {
            let (symbol, scale) = asset_of(state, &w);
            let user = state.store.user(w.user).await?.map(|u| u.email).unwrap_or_default();
            let approved_by = state
                .store
                .withdrawal_approvals(w.id)
                .await?
                .into_iter()
                .map(|id| {
                    admins.iter().find(|a| a.id == id).map(|a| a.email.clone()).unwrap_or_default()
                })
                .collect();
            lines.push(QueueLine {
                id: w.id,
                user: format!("{user} (user {})", w.user.0),
                amount: bourse_core::decimal::format_units_trimmed(w.amount, scale),
                needed: state.config.withdrawals.approvals_needed(&symbol, scale, w.amount),
                asset: symbol,
                address: w.address,
                requested: crate::web::format::utc_seconds(w.created_ms),
                approved_by,
            });
        }
        Ok::<_, StoreError>(lines)
    };
    match loaded.await {
        Ok(lines) => {
            let fresh = p.is_fresh(state);
            render(status, &QueuePage { chrome, lines, error, notice, fresh })
        }
        Err(e) => unavailable(chrome, "withdrawal queue", &e),
    }
}

pub async fn queue(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
) -> Response {
    queue_page(&state, &p, StatusCode::OK, String::new(), String::new()).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    reason: String,
}

/// Why a decision cannot be made, as the queue page shows it.
struct Refusal(StatusCode, String);

async fn in_review(state: &Shared, id: i64) -> Result<WithdrawalRow, Refusal> {
    match state.store.withdrawal_by_id(id).await {
        Ok(Some(w)) if w.status == WithdrawalStatus::Review => Ok(w),
        Ok(Some(w)) => Err(Refusal(
            StatusCode::CONFLICT,
            format!("withdrawal {id} no longer waits for review (it is {})", w.status.as_str()),
        )),
        Ok(None) => Err(Refusal(StatusCode::NOT_FOUND, format!("there is no withdrawal {id}"))),
        Err(e) => Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// After a decision: back to the queue with a notice, or the queue with the refusal.
async fn answer(state: &Shared, p: &AdminPrincipal, done: Result<String, Refusal>) -> Response {
    match done {
        Ok(_) => Redirect::to("/withdrawals").into_response(),
        Err(Refusal(status, error)) => queue_page(state, p, status, error, String::new()).await,
    }
}

/// `POST /withdrawals/{id}/approve`: one approval; the withdrawal goes on to be sent once it
/// has as many as it needs.
pub async fn approve(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(id): Path<i64>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let done = async {
        p.fresh_totp(&state, f.code.as_deref())
            .await
            .map_err(|e| Refusal(StatusCode::FORBIDDEN, e))?;
        let w = in_review(&state, id).await?;
        let (symbol, scale) = asset_of(&state, &w);
        let needed = state.config.withdrawals.approvals_needed(&symbol, scale, w.amount);
        let now = crate::now_ms();
        let approvals = match state.store.approve_withdrawal(id, p.admin.id, now).await {
            Ok(a) => a,
            Err(StoreError::Conflict(_)) => {
                return Err(Refusal(
                    StatusCode::CONFLICT,
                    format!(
                        "you approved withdrawal {id} already: another admin must approve it too"
                    ),
                ));
            }
            Err(e) => return Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        };
        let amount = bourse_core::decimal::format_units_trimmed(w.amount, scale);
        let detail = format!(
            "{amount} {symbol} to {} for user {}; approval {} of {needed}",
            w.address,
            w.user.0,
            approvals.len()
        );
        let target = format!("withdrawal {id}");
        super::audit::record(&state, &p, "withdrawal.approve", &target, &f.reason, &detail).await;
        if approvals.len() >= needed {
            let (from, to) = (WithdrawalStatus::Review, WithdrawalStatus::Held);
            let moved = state
                .store
                .transition_withdrawal(id, from, to, None, now)
                .await
                .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            if !moved {
                return Err(Refusal(
                    StatusCode::CONFLICT,
                    format!("withdrawal {id} was decided by someone else meanwhile"),
                ));
            }
            // It leaves with the wallet's next batch.
        }
        Ok(detail)
    };
    answer(&state, &p, done.await).await
}

/// `POST /withdrawals/{id}/reject`: with a reason (the user is told it); its funds are
/// released.
pub async fn reject(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(id): Path<i64>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let done = async {
        let reason = f.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "a rejection needs a reason (at most 200 characters); the user is told it".into(),
            ));
        }
        p.fresh_totp(&state, f.code.as_deref())
            .await
            .map_err(|e| Refusal(StatusCode::FORBIDDEN, e))?;
        let w = in_review(&state, id).await?;
        let now = crate::now_ms();
        let why = format!("rejected by the exchange: {reason}");
        let (from, to) = (WithdrawalStatus::Review, WithdrawalStatus::Cancelling);
        let moved = state
            .store
            .transition_withdrawal(id, from, to, Some(&why), now)
            .await
            .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if !moved {
            return Err(Refusal(
                StatusCode::CONFLICT,
                format!("withdrawal {id} was decided by someone else meanwhile"),
            ));
        }
        let (symbol, scale) = asset_of(&state, &w);
        let amount = bourse_core::decimal::format_units_trimmed(w.amount, scale);
        let detail = format!("{amount} {symbol} to {} for user {}", w.address, w.user.0);
        let target = format!("withdrawal {id}");
        super::audit::record(&state, &p, "withdrawal.reject", &target, reason, &detail).await;
        // The sweeper releases the hold at once.
        let _ = crate::withdrawal_safety::sweep(&state).await;
        if let Ok(Some(user)) = state.store.user(w.user).await {
            let body = format!(
                "Your withdrawal of {amount} {symbol} to {} was not approved: {reason}\n\nThe funds are back in your available balance.",
                w.address
            );
            state
                .mail(&user.email, &format!("Your {symbol} withdrawal was not approved"), &body)
                .await;
        }
        Ok(detail)
    };
    answer(&state, &p, done.await).await
}
