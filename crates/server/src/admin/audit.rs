//! The admin audit log: every admin action (who, when, what, to what, why, from which
//! address), append-only in the store, and the page that lists it.

use super::AdminPrincipal;
use super::pages::{AdminChrome, render, unavailable};
use crate::security::Client;
use crate::state::Shared;
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bourse_store::{AdminActionRow, NewAdminAction};
use serde::Deserialize;

/// Records an action of the admin behind `p`. A failure to record is logged as an error.
pub async fn record(
    state: &Shared,
    p: &AdminPrincipal,
    action: &str,
    target: &str,
    reason: &str,
    detail: &str,
) {
    record_for(state, p.admin.id, &p.client, action, target, reason, detail).await;
}

/// [`record`] for an admin not logged in yet (the login and its failures).
pub async fn record_for(
    state: &Shared,
    admin: i64,
    client: &Client,
    action: &str,
    target: &str,
    reason: &str,
    detail: &str,
) {
    let entry = NewAdminAction {
        admin,
        at_ms: crate::now_ms(),
        ip: client.ip.clone(),
        action: action.into(),
        target: target.into(),
        reason: reason.chars().take(500).collect(),
        detail: detail.into(),
    };
    if let Err(e) = state.store.record_admin_action(&entry).await {
        tracing::error!(error = %e, admin, action, target, "cannot record an admin action");
    }
}

/// Entries on one page.
const PAGE: u32 = 100;

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Option<AdminChrome>,
    entries: Vec<(String, AdminActionRow)>,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
}

pub async fn page(
    State(state): State<Shared>,
    Extension(p): Extension<AdminPrincipal>,
    Query(q): Query<PageQuery>,
) -> Response {
    let chrome = Some(p.chrome());
    match state.store.admin_actions(q.before, PAGE).await {
        Ok(rows) => {
            let next = (rows.len() == PAGE as usize).then(|| rows.last().map(|r| r.id)).flatten();
            let entries =
                rows.into_iter().map(|r| (crate::web::format::utc_seconds(r.at_ms), r)).collect();
            render(StatusCode::OK, &AuditPage { chrome, entries, next })
        }
        Err(e) => unavailable(chrome, "audit page", &e),
    }
}
