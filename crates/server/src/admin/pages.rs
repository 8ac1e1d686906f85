//! The admin app's page frame, its message page, and the dashboard.

use super::AdminPrincipal;
use crate::state::Shared;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bourse_store::{AdjustmentStatus, DepositStatus, WithdrawalStatus};

pub use crate::web::pages::render;

/// What every admin page's frame shows: who is logged in.
#[derive(Clone, Debug)]
pub struct AdminChrome {
    pub email: String,
    pub role: &'static str,
}

/// One row of a plain table (the `table` macro of `admin/macros.html`).
pub struct Line {
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage<'a> {
    chrome: Option<AdminChrome>,
    title: &'a str,
    text: &'a str,
}

/// The database did not answer: logged with what was being done, and said on a page.
pub fn unavailable(
    chrome: Option<AdminChrome>,
    what: &str,
    e: &bourse_store::StoreError,
) -> Response {
    tracing::error!(error = %e, what, "admin app: database error");
    message(chrome, StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "The database does not answer.")
}

pub fn message(
    chrome: Option<AdminChrome>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    render(status, &MessagePage { chrome, title, text })
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard {
    chrome: Option<AdminChrome>,
    users: u64,
    review: usize,
    unconfirmed: usize,
    pending_deposits: usize,
    /// Each asset's fees earned in the last 24 hours: (symbol, amount).
    fees: Vec<(String, String)>,
    /// Adjustments waiting for a second admin.
    adjustments: usize,
    engine_seq: u64,
    projected_seq: u64,
    /// Each market's last 24 hours.
    tickers: Vec<crate::views::TickerView>,
    health: crate::api::public::Health,
}

pub async fn dashboard(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
) -> Response {
    let chrome = Some(p.chrome());
    let limit = bourse_store::LIST_LIMIT_MAX;
    let loaded = async {
        let users = state.store.count_users().await?;
        let review = state.store.withdrawals_in_status(WithdrawalStatus::Review, limit).await?;
        let unconfirmed =
            state.store.withdrawals_in_status(WithdrawalStatus::Unconfirmed, limit).await?;
        let deposits =
            state.store.recent_deposits(Some(DepositStatus::Pending), None, limit).await?;
        let adjustments =
            state.store.adjustments(Some(AdjustmentStatus::Pending), None, limit).await?;
        let fees = super::reports::last_day(&state, crate::now_ms()).await?;
        let counts = (review.len(), unconfirmed.len(), deposits.len(), adjustments.len());
        Ok::<_, bourse_store::StoreError>((users, counts, fees))
    };
    let tickers = match (state.mirror.read(), state.tickers.lock()) {
        (Ok(mirror), Ok(tickers)) => {
            let now = crate::now_ms();
            mirror.markets.keys().filter_map(|m| tickers.view(*m, now, &mirror)).collect()
        }
        _ => Vec::new(),
    };
    let health = crate::api::public::health_of(&state).await;
    match loaded.await {
        Ok((users, (review, unconfirmed, pending_deposits, adjustments), fees)) => render(
            StatusCode::OK,
            &Dashboard {
                chrome,
                users,
                review,
                unconfirmed,
                pending_deposits,
                fees,
                adjustments,
                engine_seq: state.engine.status().seq,
                projected_seq: *state.projected.borrow(),
                tickers,
                health,
            },
        ),
        Err(e) => unavailable(chrome, "dashboard", &e),
    }
}

#[derive(Template)]
#[template(path = "admin/wallets.html")]
struct WalletsPage {
    chrome: Option<AdminChrome>,
    /// Each node with when its wallet was last reconciled.
    nodes: Vec<(crate::api::public::NodeView, String)>,
}

/// `GET /wallets`: each coin's node, its hot wallet against what users are owed, and whether
/// withdrawals are paused.
pub async fn wallets(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
) -> Response {
    let health = crate::api::public::health_of(&state).await;
    let nodes = health
        .nodes
        .into_iter()
        .map(|n| {
            let at = n.reconciled_ms.map_or_else(|| "not yet".into(), crate::web::format::utc);
            (n, at)
        })
        .collect();
    render(StatusCode::OK, &WalletsPage { chrome: Some(p.chrome()), nodes })
}
