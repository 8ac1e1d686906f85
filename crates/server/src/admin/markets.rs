//! Markets: each with its status, steps, limits and fees; an operator halts one (it accepts
//! cancels only) or resumes it — engine commands, audited like every admin action.

use super::AdminPrincipal;
use super::pages::{AdminChrome, message, render};
use crate::state::Shared;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::{Command, Event, MarketStatus};
use serde::Deserialize;

pub struct MarketLine {
    pub symbol: String,
    pub trading: bool,
    pub tick: String,
    pub lot: String,
    pub fees: String,
}

#[derive(Template)]
#[template(path = "admin/markets.html")]
struct MarketsPage {
    chrome: Option<AdminChrome>,
    markets: Vec<MarketLine>,
    error: String,
    fresh: bool,
}

fn page(state: &Shared, p: &AdminPrincipal, status: StatusCode, error: String) -> Response {
    let chrome = Some(p.chrome());
    let Ok(mirror) = state.mirror.read() else {
        return message(chrome, StatusCode::INTERNAL_SERVER_ERROR, "Error", "Try again.");
    };
    let markets = mirror
        .markets
        .values()
        .map(|m| MarketLine {
            symbol: m.symbol.clone(),
            trading: m.status == MarketStatus::Trading,
            tick: crate::views::units(m.spec.tick, m.quote.scale),
            lot: crate::views::units(m.spec.lot, m.base.scale),
            fees: format!("maker {} ppm, taker {} ppm", m.spec.maker_fee_ppm, m.spec.taker_fee_ppm),
        })
        .collect();
    render(status, &MarketsPage { chrome, markets, error, fresh: p.is_fresh(state) })
}

pub async fn list(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
) -> Response {
    page(&state, &p, StatusCode::OK, String::new())
}

#[derive(Deserialize)]
pub struct StatusForm {
    /// `halt` or `resume`.
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /markets/{symbol}/status`: halts or resumes a market.
pub async fn set_status(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(symbol): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let done = async {
        let status = match f.action.as_str() {
            "halt" => MarketStatus::Halted,
            "resume" => MarketStatus::Trading,
            _ => return Err((StatusCode::BAD_REQUEST, "the action is halt or resume".to_string())),
        };
        let reason = f.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err((StatusCode::BAD_REQUEST, "give a reason (at most 200 characters)".into()));
        }
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let market = state
            .mirror
            .read()
            .ok()
            .and_then(|m| m.market_by_symbol(&symbol).map(|m| m.id))
            .ok_or((StatusCode::NOT_FOUND, format!("there is no market {symbol}")))?;
        let outcome = state
            .engine
            .execute(Command::SetMarketStatus { market, status })
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if let Some(reason) = outcome.events.iter().find_map(|e| match e {
            Event::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }) {
            return Err((StatusCode::CONFLICT, format!("the engine refused: {reason}")));
        }
        state.wait_mirror(outcome.seq).await;
        let action = if status == MarketStatus::Halted { "market.halt" } else { "market.resume" };
        super::audit::record(&state, &p, action, &format!("market {symbol}"), reason, "").await;
        Ok(())
    };
    match done.await {
        Ok(()) => Redirect::to("/markets").into_response(),
        Err((status, error)) => page(&state, &p, status, error),
    }
}
