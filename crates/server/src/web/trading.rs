//! The trading forms that work without JavaScript: place an order from the market page, cancel
//! one order or all of them from the orders page. Each shares its logic with the REST endpoint
//! (`api::trading`) and checks the same-origin rule first.

use super::pages::{OrderForm, error_page, market_page, safe_next, user_post};
use crate::api::trading::{PlaceRequest, cancel_all_orders, cancel_ref, place_order};
use crate::state::Shared;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bourse_core::{OrderId, OrderRef};
use serde::Deserialize;

/// What the market page's order form posts: the order type select combines the type and the
/// time in force, as on the page.
#[derive(Deserialize)]
pub struct PlaceForm {
    side: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    quantity: String,
}

pub async fn place(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    Form(f): Form<PlaceForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, &format!("/markets/{symbol}")).await?;
    let (kind, time_in_force) = match f.kind.as_str() {
        "market" => ("market", None),
        "limit" => ("limit", None),
        tif @ ("post_only" | "ioc" | "fok") => ("limit", Some(tif.to_string())),
        other => (other, None),
    };
    let request = PlaceRequest {
        market: symbol.clone(),
        side: f.side.clone(),
        kind: kind.to_string(),
        price: (kind == "limit").then(|| f.price.trim().to_string()),
        quantity: Some(f.quantity.trim().to_string()),
        quote_amount: None,
        time_in_force,
        client_order_id: None,
        stp: None,
    };
    let mut form = OrderForm {
        side: f.side,
        kind: f.kind,
        price: f.price,
        quantity: f.quantity,
        ..OrderForm::default()
    };
    let status = match place_order(&state, user, &request).await {
        Ok(placed) => {
            form.status =
                format!("Order {}: {}", placed.order.id, placed.order.status.replace('_', " "));
            StatusCode::OK
        }
        Err(e) => {
            // The field the error is about, as the page's script decides it.
            let about = format!("{} {}", e.code, e.message);
            if about.contains("price") || about.contains("tick") {
                form.price_error = e.message;
            } else if ["quantity", "lot", "notional", "balance", "funds"]
                .iter()
                .any(|w| about.contains(w))
            {
                form.quantity_error = e.message;
            } else {
                form.error = e.message;
            }
            e.status
        }
    };
    Ok(market_page(&state, chrome, &symbol, form, status))
}

#[derive(Deserialize)]
pub struct BackForm {
    #[serde(default)]
    next: String,
    #[serde(default)]
    market: String,
}

/// `/account/orders/{id}/cancel`, back to `next` (a path on this site).
pub async fn cancel(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Form(f): Form<BackForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, "/account/orders").await?;
    Ok(match cancel_ref(&state, user, None, OrderRef::Id(OrderId(id))).await {
        Ok(_) => Redirect::to(&safe_next(Some(&f.next))).into_response(),
        Err(e) => error_page(chrome, e),
    })
}

/// `/account/orders/cancel-all`: every open order, or those of `market`.
pub async fn cancel_all(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<BackForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, "/account/orders").await?;
    let market = match f.market.as_str() {
        "" => Ok(None),
        m => crate::api::public::market(&state, m).map(|m| Some(m.id)),
    };
    let done = match market {
        Ok(market) => cancel_all_orders(&state, user, market).await,
        Err(e) => Err(e),
    };
    Ok(match done {
        Ok(_) => Redirect::to(&safe_next(Some(&f.next))).into_response(),
        Err(e) => error_page(chrome, e),
    })
}
