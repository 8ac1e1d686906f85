//! The account's money pages: funds (balances with available, locked and held, and the ledger
//! of every change), orders and trades. Each history is filtered, paged (newest first) and
//! exported as CSV with the same filters. Reads only: the forms that change anything are in
//! `web::trading`.

use super::account::login_first;
use super::format::{csv_record, rfc3339, utc_seconds, with_query};
use super::pages::{Chrome, error_page, render};
use crate::api::trading::{fills_cursor, parse_fills_cursor};
use crate::error::{ApiError, ApiResult};
use crate::state::Shared;
use crate::views::{FillView, LedgerView, OrderView, signed_units};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_core::{AssetId, MarketId, OrderId, TradeId, UserId};
use bourse_store::{FillFilter, LIST_LIMIT_MAX, LedgerFilter, OrderFilter};
use serde::Deserialize;

/// Rows on one page of a history.
const PAGE_ROWS: u32 = 50;
/// Rows in one CSV export at most (newest first); the response says when it stopped there.
pub const CSV_ROWS_MAX: usize = 100_000;

/// The filters of every history page, as the GET forms send them (an empty value is no filter).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    market: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    asset: String,
    #[serde(default)]
    before: String,
}

impl Filters {
    fn market(&self, state: &Shared) -> ApiResult<Option<MarketId>> {
        if self.market.is_empty() {
            return Ok(None);
        }
        Ok(Some(crate::api::public::market(state, &self.market)?.id))
    }

    fn asset(&self, state: &Shared) -> ApiResult<Option<AssetId>> {
        if self.asset.is_empty() {
            return Ok(None);
        }
        let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
        mirror.assets.values().find(|a| a.symbol == self.asset).map(|a| Some(a.id)).ok_or_else(
            || ApiError::not_found("unknown_asset", format!("no asset {:?}", self.asset)),
        )
    }

    fn before<T: std::str::FromStr>(&self) -> ApiResult<Option<T>> {
        if self.before.is_empty() {
            return Ok(None);
        }
        self.before
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("bad_cursor", "the page cursor is not valid"))
    }

    /// The page's own address with these filters and another cursor.
    fn link(&self, path: &str, before: &str) -> String {
        with_query(
            path,
            &[
                ("market", &self.market),
                ("status", &self.status),
                ("asset", &self.asset),
                ("before", before),
            ],
        )
    }
}

fn mirror_err<T>(_: T) -> ApiError {
    ApiError::internal("mirror", "poisoned lock")
}

fn market_symbols(state: &Shared) -> ApiResult<Vec<String>> {
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let mut symbols: Vec<String> = mirror.markets.values().map(|m| m.symbol.clone()).collect();
    symbols.sort();
    Ok(symbols)
}

/// A CSV download: `text/csv`, an attachment named after the history and the day.
fn csv_response(name: &str, body: String, truncated: bool) -> Response {
    let day = rfc3339(crate::now_ms()).chars().take(10).collect::<String>();
    let disposition = format!("attachment; filename=\"bourse-{name}-{day}.csv\"");
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"))],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    if truncated {
        response.headers_mut().insert("x-bourse-truncated", HeaderValue::from_static("true"));
    }
    response
}

/// The logged-in user of a history request (after the read model has caught up with their
/// last command), or the redirect to log in and come back to `back`.
async fn viewer(
    state: &Shared,
    headers: &HeaderMap,
    back: &str,
) -> Result<(Chrome, UserId), Response> {
    let chrome = Chrome::of(state, headers).await;
    let Some(user) = chrome.user_id else { return Err(login_first(back)) };
    state.wait_projected(user).await;
    Ok((chrome, user))
}

/// A CSV export being written: the header, then rows up to [`CSV_ROWS_MAX`].
struct CsvWriter {
    out: String,
    rows: usize,
    truncated: bool,
}

impl CsvWriter {
    fn new(header: &[&str]) -> CsvWriter {
        let mut out = String::new();
        csv_record(&mut out, header);
        CsvWriter { out, rows: 0, truncated: false }
    }

    /// Writes the rows; false once the export is full (the rest is left out).
    fn extend(&mut self, rows: impl Iterator<Item = Vec<String>>) -> bool {
        for cells in rows {
            if self.rows == CSV_ROWS_MAX {
                self.truncated = true;
                return false;
            }
            self.rows += 1;
            csv_record(&mut self.out, &cells.iter().map(String::as_str).collect::<Vec<_>>());
        }
        true
    }
}

/// The cursor after a page of `LIST_LIMIT_MAX` rows; none after a shorter (the last) page.
fn next_of<R, C>(rows: &[R], cursor: impl Fn(&R) -> C) -> Option<C> {
    if rows.len() < LIST_LIMIT_MAX as usize { None } else { rows.last().map(cursor) }
}

const ORDER_COLUMNS: [&str; 17] = [
    "order_id",
    "created",
    "market",
    "side",
    "type",
    "time_in_force",
    "price",
    "quantity",
    "quote_amount",
    "filled_quantity",
    "filled_quote",
    "fee",
    "fee_asset",
    "status",
    "end_reason",
    "client_order_id",
    "updated",
];

fn order_cells(o: &OrderView) -> Vec<String> {
    vec![
        o.id.to_string(),
        rfc3339(o.created_ms),
        o.market.clone(),
        o.side.into(),
        o.kind.into(),
        o.time_in_force.unwrap_or("").into(),
        o.price.clone().unwrap_or_default(),
        o.quantity.clone().unwrap_or_default(),
        o.quote_amount.clone().unwrap_or_default(),
        o.filled_quantity.clone(),
        o.filled_quote.clone(),
        o.fee.clone(),
        o.fee_asset.clone(),
        o.status.into(),
        o.end_reason.unwrap_or("").into(),
        o.client_order_id.clone().unwrap_or_default(),
        rfc3339(o.updated_ms),
    ]
}

const FILL_COLUMNS: [&str; 11] = [
    "trade_id",
    "order_id",
    "time",
    "market",
    "side",
    "role",
    "price",
    "quantity",
    "notional",
    "fee",
    "fee_asset",
];

fn fill_cells(t: &FillView) -> Vec<String> {
    vec![
        t.trade_id.to_string(),
        t.order_id.to_string(),
        rfc3339(t.time_ms),
        t.market.clone(),
        t.side.into(),
        t.role.into(),
        t.price.clone(),
        t.quantity.clone(),
        t.notional.clone(),
        t.fee.clone(),
        t.fee_asset.clone(),
    ]
}

const LEDGER_COLUMNS: [&str; 12] = [
    "entry_id",
    "time",
    "asset",
    "kind",
    "reference",
    "delta_available",
    "delta_locked",
    "delta_held",
    "available",
    "locked",
    "held",
    "seq",
];

fn ledger_cells(e: &LedgerView) -> Vec<String> {
    vec![
        e.id.to_string(),
        rfc3339(e.time_ms),
        e.asset.clone(),
        e.kind.into(),
        e.reference.clone(),
        e.delta_available.clone(),
        e.delta_locked.clone(),
        e.delta_held.clone(),
        e.available.clone(),
        e.locked.clone(),
        e.held.clone(),
        e.seq.to_string(),
    ]
}

/// `/account/{orders|trades|ledger}.csv`: the whole history with the page's filters.
pub async fn csv(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
    Query(f): Query<Filters>,
) -> Response {
    let page = match file.as_str() {
        "orders.csv" => "/account/orders",
        "trades.csv" => "/account/trades",
        "ledger.csv" => "/account/funds",
        _ => return super::pages::not_found(State(state), headers).await,
    };
    let (chrome, user) = match viewer(&state, &headers, &f.link(page, "")).await {
        Ok(v) => v,
        Err(redirect) => return redirect,
    };
    let written = async {
        Ok::<_, ApiError>(match file.as_str() {
            "orders.csv" => {
                let (mut w, mut before) = (CsvWriter::new(&ORDER_COLUMNS), None);
                loop {
                    let rows = order_rows(&state, user, &f, before, LIST_LIMIT_MAX).await?;
                    before = next_of(&rows, |o| o.id);
                    if !w.extend(rows.iter().map(order_cells)) || before.is_none() {
                        break ("orders", w);
                    }
                }
            }
            "trades.csv" => {
                let (mut w, mut before) = (CsvWriter::new(&FILL_COLUMNS), None);
                loop {
                    let (rows, last) = fill_rows(&state, user, &f, before, LIST_LIMIT_MAX).await?;
                    before = next_of(&rows, |_| last).flatten();
                    if !w.extend(rows.iter().map(fill_cells)) || before.is_none() {
                        break ("trades", w);
                    }
                }
            }
            _ => {
                let (mut w, mut before) = (CsvWriter::new(&LEDGER_COLUMNS), None);
                loop {
                    let rows = ledger_rows(&state, user, &f, before, LIST_LIMIT_MAX).await?;
                    before = next_of(&rows, |e| e.id);
                    if !w.extend(rows.iter().map(ledger_cells)) || before.is_none() {
                        break ("ledger", w);
                    }
                }
            }
        })
    };
    match written.await {
        Ok((name, w)) => csv_response(name, w.out, w.truncated),
        Err(e) => error_page(chrome, e),
    }
}

// ---- orders ------------------------------------------------------------------------------

pub struct OrderLine {
    pub o: OrderView,
    pub time: String,
    pub kind: String,
    pub status: String,
    pub end_reason: String,
    pub open: bool,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    markets: Vec<String>,
    market: String,
    status: String,
    rows: Vec<OrderLine>,
    older: String,
    csv: String,
    here: String,
}

async fn order_rows(
    state: &Shared,
    user: UserId,
    f: &Filters,
    before: Option<u64>,
    limit: u32,
) -> ApiResult<Vec<OrderView>> {
    let filter = OrderFilter {
        market: f.market(state)?,
        open_only: crate::api::trading::open_only(
            Some(f.status.as_str()).filter(|s| !s.is_empty()),
        )?,
        before: before.map(OrderId),
        limit,
    };
    let rows = state.store.orders(user, &filter).await?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok(rows.iter().map(|r| OrderView::new(r, &mirror)).collect())
}

pub async fn orders(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    const PATH: &str = "/account/orders";
    let (chrome, user) = match viewer(&state, &headers, &f.link(PATH, &f.before)).await {
        Ok(v) => v,
        Err(redirect) => return redirect,
    };
    let loaded = async {
        let rows = order_rows(&state, user, &f, f.before()?, PAGE_ROWS + 1).await?;
        Ok::<_, ApiError>((rows, market_symbols(&state)?))
    };
    let (mut rows, markets) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(chrome, e),
    };
    let older = if rows.len() > PAGE_ROWS as usize {
        rows.truncate(PAGE_ROWS as usize);
        rows.last().map(|o| f.link(PATH, &o.id.to_string())).unwrap_or_default()
    } else {
        String::new()
    };
    let rows = rows
        .into_iter()
        .map(|o| OrderLine {
            time: utc_seconds(o.created_ms),
            kind: match o.time_in_force {
                Some(tif) if tif != "gtc" => format!("{} {}", o.kind, tif.replace('_', "-")),
                _ => o.kind.to_string(),
            },
            open: matches!(o.status, "open" | "partially_filled"),
            status: o.status.replace('_', " "),
            end_reason: o.end_reason.unwrap_or("").replace('_', " "),
            o,
        })
        .collect();
    let page = OrdersPage {
        markets,
        market: f.market.clone(),
        status: f.status.clone(),
        rows,
        older,
        csv: f.link("/account/orders.csv", ""),
        here: f.link(PATH, &f.before),
        chrome,
    };
    render(StatusCode::OK, &page)
}

// ---- trades ------------------------------------------------------------------------------

pub struct FillLine {
    pub f: FillView,
    pub time: String,
}

#[derive(Template)]
#[template(path = "trades.html")]
struct TradesPage {
    chrome: Chrome,
    markets: Vec<String>,
    market: String,
    rows: Vec<FillLine>,
    older: String,
    csv: String,
}

async fn fill_rows(
    state: &Shared,
    user: UserId,
    f: &Filters,
    before: Option<(u64, MarketId, TradeId)>,
    limit: u32,
) -> ApiResult<(Vec<FillView>, Option<(u64, MarketId, TradeId)>)> {
    let filter = FillFilter { market: f.market(state)?, order: None, before, limit };
    let rows = state.store.fills(user, &filter).await?;
    let last = rows.last().map(|t| (t.seq, t.market, t.id));
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok((rows.iter().filter_map(|t| FillView::new(t, user, &mirror)).collect(), last))
}

pub async fn trades(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    const PATH: &str = "/account/trades";
    let (chrome, user) = match viewer(&state, &headers, &f.link(PATH, &f.before)).await {
        Ok(v) => v,
        Err(redirect) => return redirect,
    };
    let loaded = async {
        let page = fill_rows(
            &state,
            user,
            &f,
            if f.before.is_empty() { None } else { Some(parse_fills_cursor(&f.before)?) },
            PAGE_ROWS,
        )
        .await?;
        Ok::<_, ApiError>((page, market_symbols(&state)?))
    };
    let ((rows, last), markets) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(chrome, e),
    };
    let older = match last {
        Some((seq, m, t)) if rows.len() == PAGE_ROWS as usize => {
            f.link(PATH, &fills_cursor((seq, m, t)))
        }
        _ => String::new(),
    };
    let rows = rows.into_iter().map(|f| FillLine { time: utc_seconds(f.time_ms), f }).collect();
    let page = TradesPage {
        markets,
        market: f.market.clone(),
        rows,
        older,
        csv: f.link("/account/trades.csv", ""),
        chrome,
    };
    render(StatusCode::OK, &page)
}

// ---- funds -------------------------------------------------------------------------------

pub struct FundLine {
    pub asset: String,
    pub available: String,
    pub locked: String,
    pub held: String,
    pub total: String,
}

pub struct LedgerLine {
    pub e: LedgerView,
    pub time: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "funds.html")]
struct FundsPage {
    chrome: Chrome,
    funds: Vec<FundLine>,
    assets: Vec<String>,
    asset: String,
    rows: Vec<LedgerLine>,
    older: String,
    csv: String,
}

/// Every asset of the exchange with the user's balance in it (zero where there is none).
async fn fund_lines(state: &Shared, user: UserId) -> ApiResult<Vec<FundLine>> {
    let balances = state.store.balances(user).await?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok(mirror
        .assets
        .values()
        .map(|a| {
            let b = balances.iter().find(|b| b.asset == a.id);
            let (available, locked, held) =
                b.map(|b| (b.available, b.locked, b.held)).unwrap_or_default();
            let total = available.saturating_add(locked).saturating_add(held);
            FundLine {
                asset: a.symbol.clone(),
                available: signed_units(available, a.scale),
                locked: signed_units(locked, a.scale),
                held: signed_units(held, a.scale),
                total: signed_units(total, a.scale),
            }
        })
        .collect())
}

async fn ledger_rows(
    state: &Shared,
    user: UserId,
    f: &Filters,
    before: Option<i64>,
    limit: u32,
) -> ApiResult<Vec<LedgerView>> {
    let filter = LedgerFilter { asset: f.asset(state)?, before, limit };
    let rows = state.store.ledger(user, &filter).await?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok(rows.iter().map(|r| LedgerView::new(r, &mirror)).collect())
}

pub async fn funds(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    const PATH: &str = "/account/funds";
    let (chrome, user) = match viewer(&state, &headers, &f.link(PATH, &f.before)).await {
        Ok(v) => v,
        Err(redirect) => return redirect,
    };
    let loaded = async {
        let funds = fund_lines(&state, user).await?;
        let rows = ledger_rows(&state, user, &f, f.before()?, PAGE_ROWS + 1).await?;
        Ok::<_, ApiError>((funds, rows))
    };
    let (funds, mut rows) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(chrome, e),
    };
    let older = if rows.len() > PAGE_ROWS as usize {
        rows.truncate(PAGE_ROWS as usize);
        rows.last().map(|e| f.link(PATH, &e.id.to_string())).unwrap_or_default()
    } else {
        String::new()
    };
    let page = FundsPage {
        assets: funds.iter().map(|x| x.asset.clone()).collect(),
        funds,
        asset: f.asset.clone(),
        rows: rows
            .into_iter()
            .map(|e| LedgerLine { time: utc_seconds(e.time_ms), kind: e.kind.replace('_', " "), e })
            .collect(),
        older,
        csv: f.link("/account/ledger.csv", ""),
        chrome,
    };
    render(StatusCode::OK, &page)
}
