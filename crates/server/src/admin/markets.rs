//! Markets and assets: each market with its status, grid, limits and fees. An operator halts
//! a market (it accepts cancels only) or resumes it; a superadmin adds assets and markets,
//! edits a market's grid, limits and fees, and cancels every order of a halted market. Each is
//! an engine command (the engine checks it and may refuse with its reason), audited like every
//! admin action.

use super::pages::{AdminChrome, message, render};
use super::{AdminPrincipal, Failure, execute, required_reason};
use crate::market_setup::{self, MarketText};
use crate::state::Shared;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bourse_core::{Command, Event, MarketStatus};
use bourse_store::AdminRole;
use serde::Deserialize;

pub struct MarketLine {
    pub symbol: String,
    pub trading: bool,
    pub tick: String,
    pub lot: String,
    pub min_qty: String,
    pub max_qty: String,
    pub min_notional: String,
    pub maker_fee_ppm: u32,
    pub taker_fee_ppm: u32,
    /// Price levels resting in the book (both sides).
    pub levels: usize,
}

pub struct AssetLine {
    pub id: u32,
    pub symbol: String,
    pub scale: u8,
}

#[derive(Template)]
#[template(path = "admin/markets.html")]
struct MarketsPage {
    chrome: Option<AdminChrome>,
    markets: Vec<MarketLine>,
    assets: Vec<AssetLine>,
    /// Whether the admin may add and edit (a superadmin).
    superadmin: bool,
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
    let chrome = Some(p.chrome());
    let Ok(mirror) = state.mirror.read() else {
        return message(chrome, StatusCode::INTERNAL_SERVER_ERROR, "Error", "Try again.");
    };
    let units = crate::views::units;
    let markets = mirror
        .markets
        .values()
        .map(|m| MarketLine {
            symbol: m.symbol.clone(),
            trading: m.status == MarketStatus::Trading,
            tick: units(m.spec.tick, m.quote.scale),
            lot: units(m.spec.lot, m.base.scale),
            min_qty: units(m.spec.min_qty, m.base.scale),
            max_qty: units(m.spec.max_qty, m.base.scale),
            min_notional: units(m.spec.min_notional, m.quote.scale),
            maker_fee_ppm: m.spec.maker_fee_ppm,
            taker_fee_ppm: m.spec.taker_fee_ppm,
            levels: mirror.books.get(&m.id).map_or(0, |b| b.bids.len() + b.asks.len()),
        })
        .collect();
    let assets = mirror
        .assets
        .values()
        .map(|a| AssetLine { id: a.id.0, symbol: a.symbol.clone(), scale: a.scale })
        .collect();
    drop(mirror);
    let superadmin = p.admin.role >= AdminRole::Superadmin;
    let fresh = p.is_fresh(state);
    render(status, &MarketsPage { chrome, markets, assets, superadmin, error, notice, fresh })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn list(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let notice = q.done.unwrap_or_default().chars().take(200).collect();
    page(&state, &p, StatusCode::OK, String::new(), notice)
}

/// After an action: back to the list with what happened, or the list with the error.
fn answer(state: &Shared, p: &AdminPrincipal, done: Result<String, Failure>) -> Response {
    match done {
        Ok(notice) => {
            let to = format!("/markets?done={}", crate::web::format::encode(&notice));
            Redirect::to(&to).into_response()
        }
        Err((status, error)) => page(state, p, status, error, String::new()),
    }
}

fn market_of(state: &Shared, symbol: &str) -> Result<crate::mirror::MarketInfo, Failure> {
    state
        .mirror
        .read()
        .ok()
        .and_then(|m| m.market_by_symbol(symbol).cloned())
        .ok_or((StatusCode::NOT_FOUND, format!("there is no market {symbol}")))
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
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let market = market_of(&state, &symbol)?;
        let seq = execute(&state, Command::SetMarketStatus { market: market.id, status }).await?;
        state.wait_mirror(seq).await;
        let (action, done) = match status {
            MarketStatus::Halted => ("market.halt", "halted"),
            MarketStatus::Trading => ("market.resume", "resumed"),
        };
        let target = format!("market {}", market.symbol);
        super::audit::record(&state, &p, action, &target, reason, "").await;
        Ok(format!("{} {done}.", market.symbol))
    };
    answer(&state, &p, done.await)
}

#[derive(Deserialize)]
pub struct AssetForm {
    symbol: String,
    scale: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /assets`: adds an asset (its coin node, if any, is configured in `[wallets]`).
pub async fn add_asset(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Form(f): Form<AssetForm>,
) -> Response {
    let done = async {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let scale = f
            .scale
            .trim()
            .parse::<u8>()
            .map_err(|_| bad("the scale is a number of decimal places, 0 to 18".into()))?;
        let spec = market_setup::asset_spec(&f.symbol, scale).map_err(bad)?;
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let symbol = spec.symbol.as_str().to_string();
        let seq = execute(&state, Command::AddAsset(spec)).await?;
        state.wait_mirror(seq).await;
        let detail = format!("scale {scale}");
        super::audit::record(&state, &p, "asset.add", &format!("asset {symbol}"), reason, &detail)
            .await;
        Ok(format!("Asset {symbol} added."))
    };
    answer(&state, &p, done.await)
}

/// A market's grid, limits and fees as the forms send them (empty: not given).
#[derive(Deserialize)]
pub struct MarketFields {
    #[serde(default)]
    tick: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    min_qty: String,
    #[serde(default)]
    max_qty: String,
    #[serde(default)]
    min_notional: String,
    #[serde(default)]
    maker_fee_ppm: String,
    #[serde(default)]
    taker_fee_ppm: String,
}

impl MarketFields {
    fn text(&self) -> Result<MarketText<'_>, Failure> {
        let ppm = |name: &str, v: &str| {
            let v = v.trim();
            (!v.is_empty())
                .then(|| v.parse::<u32>())
                .transpose()
                .map_err(|_| (StatusCode::BAD_REQUEST, format!("the {name} fee is whole ppm")))
        };
        Ok(MarketText {
            tick: Some(&self.tick),
            lot: Some(&self.lot),
            min_qty: Some(&self.min_qty),
            max_qty: Some(&self.max_qty),
            min_notional: Some(&self.min_notional),
            maker_fee_ppm: ppm("maker", &self.maker_fee_ppm)?,
            taker_fee_ppm: ppm("taker", &self.taker_fee_ppm)?,
        })
    }

    /// What the audit log keeps of a form: the fields given.
    fn detail(&self) -> String {
        [
            ("tick", &self.tick),
            ("lot", &self.lot),
            ("min qty", &self.min_qty),
            ("max qty", &self.max_qty),
            ("min notional", &self.min_notional),
            ("maker ppm", &self.maker_fee_ppm),
            ("taker ppm", &self.taker_fee_ppm),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k} {}", v.trim()))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

#[derive(Deserialize)]
pub struct NewMarketForm {
    base: String,
    quote: String,
    #[serde(flatten)]
    fields: MarketFields,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /markets`: adds a market between two assets.
pub async fn add_market(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Form(f): Form<NewMarketForm>,
) -> Response {
    let done = async {
        let side = |symbol: &str| {
            state
                .mirror
                .read()
                .ok()
                .and_then(|m| {
                    m.asset_by_symbol(symbol.trim())
                        .map(|a| market_setup::Side { id: a.id, scale: a.scale })
                })
                .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("there is no asset {symbol}")))
        };
        let (base, quote) = (side(&f.base)?, side(&f.quote)?);
        let spec = market_setup::new_market(base, quote, &f.fields.text()?)
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let seq = execute(&state, Command::AddMarket(spec)).await?;
        state.wait_mirror(seq).await;
        let symbol = format!("{}-{}", f.base.trim(), f.quote.trim()).to_ascii_uppercase();
        let target = format!("market {symbol}");
        super::audit::record(&state, &p, "market.add", &target, reason, &f.fields.detail()).await;
        Ok(format!("Market {symbol} added."))
    };
    answer(&state, &p, done.await)
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(flatten)]
    fields: MarketFields,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /markets/{symbol}/edit`: changes what the form gives of a market's grid (only while
/// its book is empty: the engine refuses otherwise), limits and fees (resting orders keep at
/// most the rate they reserved for).
pub async fn edit(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(symbol): Path<String>,
    Form(f): Form<EditForm>,
) -> Response {
    let done = async {
        let m = market_of(&state, &symbol)?;
        let fees_now = (m.spec.maker_fee_ppm, m.spec.taker_fee_ppm);
        let (change, fees) =
            market_setup::edit_market(m.base.scale, m.quote.scale, fees_now, &f.fields.text()?)
                .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        let target = format!("market {}", m.symbol);
        let mut seq = 0;
        if let Some(change) = change {
            seq = execute(&state, Command::ChangeMarket { market: m.id, change }).await?;
        }
        if let Some((maker_fee_ppm, taker_fee_ppm)) = fees {
            let set = Command::SetFees { market: m.id, maker_fee_ppm, taker_fee_ppm };
            seq = match execute(&state, set).await {
                Ok(seq) => seq,
                // The grid change went through: the log says so with the refusal.
                Err((status, e)) if change.is_some() => {
                    let detail = format!("{}; fees refused: {e}", f.fields.detail());
                    super::audit::record(&state, &p, "market.edit", &target, reason, &detail).await;
                    return Err((status, format!("grid and limits changed; fees: {e}")));
                }
                Err(e) => return Err(e),
            };
        }
        state.wait_mirror(seq).await;
        super::audit::record(&state, &p, "market.edit", &target, reason, &f.fields.detail()).await;
        Ok(format!("{} changed.", m.symbol))
    };
    answer(&state, &p, done.await)
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /markets/{symbol}/cancel-orders`: cancels every open order of a halted market (the
/// engine's `CancelAll` for each user with one). The market must be halted first, so no order
/// arrives while the cancels go through; the funds go back to each user's available balance.
pub async fn cancel_orders(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Path(symbol): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Response {
    let done = async {
        let m = market_of(&state, &symbol)?;
        let reason = required_reason(&f.reason)?;
        p.fresh_totp(&state, f.code.as_deref()).await.map_err(|e| (StatusCode::FORBIDDEN, e))?;
        if m.status != MarketStatus::Halted {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "halt {} first: its orders are cancelled only while it is halted",
                    m.symbol
                ),
            ));
        }
        // Every order placed before the halt is in the read model once it caught up with the
        // engine; none arrives after it.
        let engine_seq = state.engine.status().seq;
        let mut projected = state.projected.clone();
        let caught_up = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            projected.wait_for(|s| *s >= engine_seq),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !caught_up {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the read models are behind the engine; try again in a moment".into(),
            ));
        }
        let users = state
            .store
            .open_order_users(m.id)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let (mut orders, mut last) = (0usize, engine_seq);
        for user in &users {
            let command = Command::CancelAll { user: *user, market: Some(m.id) };
            let outcome = state
                .engine
                .execute(command)
                .await
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            orders +=
                outcome.events.iter().filter(|e| matches!(e, Event::OrderEnded { .. })).count();
            state.note_user_seq(*user, outcome.seq);
            last = outcome.seq;
        }
        state.wait_mirror(last).await;
        let target = format!("market {}", m.symbol);
        let detail = format!("{orders} order(s) of {} user(s) cancelled", users.len());
        super::audit::record(&state, &p, "market.cancel_orders", &target, reason, &detail).await;
        Ok(format!("{}: {detail}.", m.symbol))
    };
    answer(&state, &p, done.await)
}
