//! Reports: the exchange's fee income per asset and period (UTC days or months), read from
//! the hourly `fee_revenue` rows the projector keeps (trade fees, which the engine takes in the
//! quote asset, and the fees of completed withdrawals); as a page and as CSV.

use super::AdminPrincipal;
use super::pages::{AdminChrome, Line, render, unavailable};
use crate::state::Shared;
use crate::web::format::{csv_record, date, month, parse_date, with_query};
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_store::FeeRevenueRow;
use serde::Deserialize;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;
/// The longest period one report covers.
const MAX_DAYS: i64 = 400;

#[derive(Default, Deserialize)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD` (default: 29 days before `to`).
    #[serde(default)]
    from: Option<String>,
    /// Last day, included (default: today).
    #[serde(default)]
    to: Option<String>,
    /// `day` or `month`.
    #[serde(default)]
    by: Option<String>,
}

/// A checked report period: `[from_ms, to_ms)` in whole UTC days.
struct Period {
    from_ms: i64,
    to_ms: i64,
    monthly: bool,
}

impl Period {
    /// The last 30 days, by day.
    fn recent(now_ms: i64) -> Period {
        let to_ms = now_ms.div_euclid(DAY_MS) * DAY_MS + DAY_MS;
        Period { from_ms: to_ms - 30 * DAY_MS, to_ms, monthly: false }
    }

    fn of(q: &ReportQuery, now_ms: i64) -> Result<Period, String> {
        let day = |v: &Option<String>, name: &str| match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => parse_date(v)
                .map(Some)
                .ok_or_else(|| format!("{name} is a date, YYYY-MM-DD (not {v:?})")),
        };
        let last = day(&q.to, "to")?.unwrap_or(now_ms.div_euclid(DAY_MS) * DAY_MS);
        let from_ms = day(&q.from, "from")?.unwrap_or(last - 29 * DAY_MS);
        let to_ms = last + DAY_MS;
        if from_ms >= to_ms {
            return Err("from is after to".into());
        }
        if to_ms - from_ms > MAX_DAYS * DAY_MS {
            return Err(format!("a report covers at most {MAX_DAYS} days"));
        }
        let monthly = match q.by.as_deref() {
            None | Some("" | "day") => false,
            Some("month") => true,
            Some(_) => return Err("by is day or month".into()),
        };
        Ok(Period { from_ms, to_ms, monthly })
    }

    fn query(&self) -> [(&'static str, String); 3] {
        [
            ("from", date(self.from_ms)),
            ("to", date(self.to_ms - DAY_MS)),
            ("by", if self.monthly { "month" } else { "day" }.into()),
        ]
    }
}

/// One asset's fees in one period, in minor units.
#[derive(Clone, Copy, Default)]
struct Sums {
    trade: u128,
    withdrawal: u128,
}

impl Sums {
    fn add(&mut self, row: &FeeRevenueRow) {
        self.trade = self.trade.saturating_add(row.trade_fees);
        self.withdrawal = self.withdrawal.saturating_add(row.withdrawal_fees);
    }
}

/// The fees of `[from_ms, to_ms)` per (period label, asset symbol) in order, with each asset's
/// scale; `label` names the period of an hour's row.
async fn sums(
    state: &Shared,
    from_ms: i64,
    to_ms: i64,
    label: impl Fn(i64) -> String,
) -> Result<(BTreeMap<(String, String), Sums>, BTreeMap<String, u8>), bourse_store::StoreError> {
    let rows = state.store.fee_revenue(from_ms, to_ms).await?;
    let mut sums = BTreeMap::<(String, String), Sums>::new();
    let mut scales = BTreeMap::new();
    let mirror = state.mirror.read().ok();
    for row in &rows {
        let (symbol, scale) = mirror
            .as_ref()
            .and_then(|m| m.assets.get(&row.asset))
            .map_or_else(|| (format!("asset {}", row.asset.0), 0), |a| (a.symbol.clone(), a.scale));
        scales.insert(symbol.clone(), scale);
        sums.entry((label(row.hour_ms), symbol)).or_default().add(row);
    }
    Ok((sums, scales))
}

/// Each asset's fees earned in the last 24 hours (the dashboard's): `(symbol, amount)`.
pub(super) async fn last_day(
    state: &Shared,
    now_ms: i64,
) -> Result<Vec<(String, String)>, bourse_store::StoreError> {
    let hour = 3_600_000;
    let to = now_ms.div_euclid(hour) * hour + hour;
    let (sums, scales) = sums(state, to - DAY_MS, to, |_| String::new()).await?;
    Ok(sums
        .into_iter()
        .map(|((_, symbol), s)| {
            let total = s.trade.saturating_add(s.withdrawal);
            let amount = crate::views::units(total, scales.get(&symbol).copied().unwrap_or(0));
            (symbol, amount)
        })
        .collect())
}

/// The report's rows: period, asset, trade fees, withdrawal fees, total (decimal text).
async fn report(state: &Shared, period: &Period) -> Result<Vec<Line>, bourse_store::StoreError> {
    let label = |ms: i64| if period.monthly { month(ms).0 } else { date(ms) };
    let (sums, scales) = sums(state, period.from_ms, period.to_ms, label).await?;
    Ok(sums
        .into_iter()
        .map(|((period, symbol), s)| {
            let scale = scales.get(&symbol).copied().unwrap_or(0);
            let units = |v| crate::views::units(v, scale);
            Line {
                cells: vec![
                    period,
                    symbol,
                    units(s.trade),
                    units(s.withdrawal),
                    units(s.trade.saturating_add(s.withdrawal)),
                ],
            }
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/reports.html")]
struct ReportsPage {
    chrome: Option<AdminChrome>,
    from: String,
    to: String,
    monthly: bool,
    lines: Vec<Line>,
    csv: String,
    error: String,
}

/// `GET /reports?from=&to=&by=day|month`: fee revenue per asset and period.
pub async fn page(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let chrome = Some(p.chrome());
    let now = crate::now_ms();
    let (period, error) = match Period::of(&q, now) {
        Ok(period) => (period, String::new()),
        Err(e) => (Period::recent(now), e),
    };
    let lines = match report(&state, &period).await {
        Ok(lines) => lines,
        Err(e) => return unavailable(chrome, "reports", &e),
    };
    let query = period.query();
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let [(_, from), (_, to), _] = query.clone();
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    render(
        status,
        &ReportsPage {
            chrome,
            from,
            to,
            monthly: period.monthly,
            lines,
            csv: with_query("/reports/fees.csv", &pairs),
            error,
        },
    )
}

/// `GET /reports/fees.csv?from=&to=&by=`: the same report as CSV.
pub async fn csv(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let period = match Period::of(&q, crate::now_ms()) {
        Ok(period) => period,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let lines = match report(&state, &period).await {
        Ok(lines) => lines,
        Err(e) => return unavailable(Some(p.chrome()), "reports", &e),
    };
    let mut out = String::new();
    csv_record(&mut out, &["period", "asset", "trade_fees", "withdrawal_fees", "total"]);
    for line in &lines {
        csv_record(&mut out, &line.cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let name = format!(
        "attachment; filename=\"bourse-fees-{}-{}.csv\"",
        date(period.from_ms),
        date(period.to_ms - DAY_MS)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        out,
    )
        .into_response()
}
