//! Balance adjustments: a correction of one user's available balance, the engine's `Adjust`
//! with a mandatory reason, made only when two admins agree. An operator proposes it (user,
//! asset, signed amount, reason); a superadmin other than the proposer approves it, and only
//! then does the engine apply it (or refuse it, e.g. when it would take more than the user has
//! available). Either may reject a pending one. Each step is a compare-and-set in the store and
//! is audited; the ledger entry's reference names the adjustment (`adjustment:#ID reason`).
//!
//! If the process stops between the approval and the engine's answer, the adjustment stays
//! `approved` with no outcome: the user's ledger says whether `#ID` was applied.

use super::pages::{AdminChrome, Line, render, unavailable};
use super::{AdminPrincipal, Failure, execute, required_reason};
use crate::state::Shared;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::{Command, Reason};
use bourse_store::{AdjustmentRow, AdjustmentStatus, NewAdjustment};
use serde::Deserialize;

/// Adjustments listed per page.
const SHOWN: u32 = 50;

pub struct PendingLine {
    pub id: i64,
    pub cells: Vec<String>,
    /// The proposer cannot approve their own.
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "admin/adjustments.html")]
struct AdjustmentsPage {
    chrome: Option<AdminChrome>,
    pending: Vec<PendingLine>,
    recent: Vec<Line>,
    assets: Vec<String>,
    /// The user id the proposal form starts with (from a user's page).
    user: String,
    error: String,
    notice: String,
    fresh: bool,
}

#[derive(Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    user: Option<u64>,
    #[serde(default)]
    done: Option<String>,
}

/// `+1.5` or `-1.5` from a signed amount in minor units.
fn signed_units(delta: i128, scale: u8) -> String {
    let plus = if delta > 0 { "+" } else { "" };
    format!("{plus}{}", crate::views::signed_units(delta, scale))
}

async fn page(
    state: &Shared,
    p: &AdminPrincipal,
    q: &PageQuery,
    status: StatusCode,
    error: String,
) -> Response {
    let chrome = Some(p.chrome());
    let loaded = async {
        let pending = state.store.adjustments(Some(AdjustmentStatus::Pending), None, SHOWN).await?;
        let recent = state.store.adjustments(None, None, SHOWN).await?;
        Ok::<_, bourse_store::StoreError>((pending, recent))
    };
    let (pending, recent) = match loaded.await {
        Ok(x) => x,
        Err(e) => return unavailable(chrome, "adjustments", &e),
    };
    let Ok(mirror) = state.mirror.read() else {
        return super::pages::message(
            chrome,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Try again.",
        );
    };
    let utc = crate::web::format::utc_seconds;
    let describe = |a: &AdjustmentRow| {
        let (symbol, scale) = mirror
            .assets
            .get(&a.asset)
            .map_or_else(|| (format!("asset {}", a.asset.0), 0), |x| (x.symbol.clone(), x.scale));
        vec![
            format!("#{}", a.id),
            utc(a.proposed_ms),
            format!("user {}", a.user.0),
            format!("{} {symbol}", signed_units(a.delta, scale)),
            a.reason.clone(),
            a.proposed_by_email.clone(),
        ]
    };
    let pending = pending
        .iter()
        .map(|a| PendingLine { id: a.id, cells: describe(a), mine: a.proposed_by == p.admin.id })
        .collect();
    let recent = recent
        .iter()
        .map(|a| {
            let mut cells = describe(a);
            cells.push(a.status.as_str().into());
            cells.push(a.decided_by_email.clone().unwrap_or_default());
            cells.push(a.outcome.clone());
            Line { cells }
        })
        .collect();
    let mut assets: Vec<String> = mirror.assets.values().map(|a| a.symbol.clone()).collect();
    drop(mirror);
    assets.sort();
    let notice = q.done.clone().unwrap_or_default().chars().take(200).collect();
    let user = q.user.map(|u| u.to_string()).unwrap_or_default();
    let fresh = p.is_fresh(state);
    render(status, &AdjustmentsPage { chrome, pending, recent, assets, user, error, notice, fresh })
}

/// `GET /adjustments`: those waiting for a second admin, the latest ones, and the form.
pub async fn list(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<PageQuery>,
) -> Response {
    page(&state, &p, &q, StatusCode::OK, String::new()).await
}

async fn answer(state: &Shared, p: &AdminPrincipal, done: Result<String, Failure>) -> Response {
    match done {
        Ok(notice) => {
            let to = format!("/adjustments?done={}", crate::web::format::encode(&notice));
            Redirect::to(&to).into_response()
        }
        Err((status, error)) => page(state, p, &PageQuery::default(), status, error).await,
    }
}

#[derive(Deserialize)]
pub struct ProposeForm {
    user: String,
    asset: String,
    /// Signed, in whole units: `+1.5` credits, `-1.5` debits.
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// The engine reason of adjustment `id`: `#ID reason` (printable ASCII, at most 256).
fn engine_reason(id: i64, reason: &str) -> Option<Reason> {
    Reason::new(&format!("#{id} {reason}")).ok()
}

/// `POST /adjustments`: proposes an adjustment; nothing changes until another admin approves.
pub async fn propose(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Form(f): Form<ProposeForm>,
) -> Response {
    let done = async {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let user = super::user_id(&f.user)?;
        let (asset, scale, symbol) = super::asset(&state, &f.asset)?;
        let text = f.amount.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let delta = bourse_core::decimal::parse_units(digits, scale)
            .ok()
            .filter(|a| *a > 0)
            .and_then(|a| i128::try_from(a).ok())
            .map(|a| if negative { -a } else { a })
            .ok_or_else(|| {
                bad(format!(
                    "the amount is a {symbol} amount other than zero with at most {scale} decimals: +1.5 credits, -1.5 debits"
                ))
            })?;
        let reason = required_reason(&f.reason)?;
        if engine_reason(i64::MAX, reason).is_none() {
            return Err(bad("the reason is plain ASCII text".into()));
        }
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let db = |e: bourse_store::StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        let row = state
            .store
            .user(user)
            .await
            .map_err(db)?
            .ok_or((StatusCode::NOT_FOUND, format!("there is no user {}", user.0)))?;
        let proposal = NewAdjustment {
            user,
            asset,
            delta,
            reason: reason.into(),
            proposed_by: p.admin.id,
            proposed_ms: crate::now_ms(),
        };
        let id = state.store.insert_adjustment(&proposal).await.map_err(db)?;
        let amount = format!("{} {symbol}", signed_units(delta, scale));
        let target = format!("adjustment #{id}: user {} ({})", user.0, row.email);
        super::audit::record(&state, &p, "adjustment.propose", &target, reason, &amount).await;
        Ok(format!("Adjustment #{id} ({amount} for user {}) waits for a second admin.", user.0))
    };
    answer(&state, &p, done.await).await
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

async fn pending(state: &Shared, id: i64) -> Result<AdjustmentRow, Failure> {
    let row = state
        .store
        .adjustment(id)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .ok_or((StatusCode::NOT_FOUND, format!("there is no adjustment #{id}")))?;
    if row.status != AdjustmentStatus::Pending {
        return Err((
            StatusCode::CONFLICT,
            format!("adjustment #{id} is {} already", row.status.as_str()),
        ));
    }
    Ok(row)
}

/// `POST /adjustments/{id}/approve`: the second admin's approval; the engine applies it.
pub async fn approve(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(id): Path<i64>,
    Form(f): Form<DecideForm>,
) -> Response {
    let done = async {
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let a = pending(&state, id).await?;
        if a.proposed_by == p.admin.id {
            return Err((
                StatusCode::FORBIDDEN,
                format!("you proposed adjustment #{id}: another admin must approve it"),
            ));
        }
        let db = |e: bourse_store::StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        let now = crate::now_ms();
        if !state.store.decide_adjustment(id, p.admin.id, true, "", now).await.map_err(db)? {
            return Err((StatusCode::CONFLICT, format!("adjustment #{id} was decided meanwhile")));
        }
        let target = format!("adjustment #{id}: user {}", a.user.0);
        let applied = match engine_reason(id, &a.reason) {
            Some(reason) => {
                let command =
                    Command::Adjust { user: a.user, asset: a.asset, delta: a.delta, reason };
                execute(&state, command).await
            }
            None => Err((StatusCode::CONFLICT, "the reason is not plain ASCII text".into())),
        };
        let outcome = match &applied {
            Ok(seq) => format!("applied at engine seq {seq}"),
            Err((_, e)) => format!("not applied: {e}"),
        };
        let finished =
            state.store.finish_adjustment(id, applied.is_ok(), &outcome, crate::now_ms()).await;
        if let Err(e) = finished {
            tracing::error!(error = %e, id, outcome, "cannot record an adjustment's outcome");
        }
        super::audit::record(&state, &p, "adjustment.approve", &target, &a.reason, &outcome).await;
        let seq = applied
            .map_err(|(status, e)| (status, format!("adjustment #{id} was not applied: {e}")))?;
        state.note_user_seq(a.user, seq);
        state.wait_mirror(seq).await;
        Ok(format!("Adjustment #{id} {outcome}."))
    };
    answer(&state, &p, done.await).await
}

/// `POST /adjustments/{id}/reject`: drops a pending adjustment (its proposer may too).
pub async fn reject(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(id): Path<i64>,
    Form(f): Form<DecideForm>,
) -> Response {
    let done = async {
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let a = pending(&state, id).await?;
        let decided = state
            .store
            .decide_adjustment(id, p.admin.id, false, reason, crate::now_ms())
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if !decided {
            return Err((StatusCode::CONFLICT, format!("adjustment #{id} was decided meanwhile")));
        }
        let target = format!("adjustment #{id}: user {}", a.user.0);
        super::audit::record(&state, &p, "adjustment.reject", &target, reason, "").await;
        Ok(format!("Adjustment #{id} rejected."))
    };
    answer(&state, &p, done.await).await
}
