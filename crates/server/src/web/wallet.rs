//! Deposit and withdrawal pages: `/account/funds/{asset}/deposit` shows the user's deposit
//! address with a QR code, a form for a new one, and the asset's deposits with their
//! confirmations; withdrawals say they are not open yet. Assets without a wallet say so.

use super::account::login_first;
use super::format::utc_seconds;
use super::pages::{Chrome, error_page, message, not_found, render, user_post};
use crate::api::wallet::{DepositView, deposits_of, new_address, wallet};
use crate::state::Shared;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use qrcode::QrCode;
use qrcode::render::svg;

/// Deposits listed on the page.
const DEPOSITS_SHOWN: u32 = 50;

pub struct DepositLine {
    pub d: DepositView,
    pub time: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "deposit.html")]
struct DepositPage {
    chrome: Chrome,
    asset: String,
    confirmations: u32,
    min_deposit: String,
    /// Newest first; the first is the one to use.
    addresses: Vec<String>,
    /// The newest address as an SVG QR code (dark on light whatever the theme, so it scans).
    qr: String,
    deposits: Vec<DepositLine>,
}

/// The address as a QR code, or nothing if it cannot be encoded.
fn qr_svg(address: &str) -> String {
    match QrCode::new(address.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build()
            .split_once("?>")
            .map(|(_, svg)| svg.trim().to_string())
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot draw a QR code");
            String::new()
        }
    }
}

/// `/account/funds/{asset}/{deposit|withdraw}`.
pub async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((asset, action)): Path<(String, String)>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let Some(user) = chrome.user_id else {
        return login_first(&format!("/account/funds/{asset}/{action}"));
    };
    let w = match wallet(&state, &asset) {
        Ok(w) => w,
        Err(e) if e.code == "no_wallet" && matches!(action.as_str(), "deposit" | "withdraw") => {
            let what = if action == "deposit" { "Deposits" } else { "Withdrawals" };
            return message(
                chrome,
                StatusCode::OK,
                &format!("{what} of {asset}"),
                &format!(
                    "{what} of {asset} are not open on this exchange: its operator has not connected a {asset} wallet. Your balance is unchanged."
                ),
                ("/account/funds", "Back to funds"),
            );
        }
        Err(e) => return error_page(chrome, e),
    };
    match action.as_str() {
        "deposit" => {}
        "withdraw" => {
            return message(
                chrome,
                StatusCode::OK,
                &format!("Withdrawals of {asset}"),
                &format!(
                    "Withdrawals of {asset} are not open yet on this exchange. Your balance is unchanged."
                ),
                ("/account/funds", "Back to funds"),
            );
        }
        _ => return not_found(State(state), headers).await,
    }
    state.wait_projected(user).await;
    let coin = &w.coin;
    let loaded = async {
        let addresses = state
            .store
            .deposit_addresses(user, coin.asset, coin.config.addresses_per_user_max)
            .await?;
        let page = deposits_of(&state, user, Some(&coin.symbol), None, DEPOSITS_SHOWN).await?;
        Ok::<_, crate::error::ApiError>((addresses, page))
    };
    let (addresses, page) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(chrome, e),
    };
    let addresses: Vec<String> = addresses.into_iter().map(|a| a.address).collect();
    let deposits = page
        .deposits
        .into_iter()
        .map(|d| DepositLine {
            time: utc_seconds(d.first_seen_ms),
            status: d.status.replace('_', " "),
            d,
        })
        .collect();
    render(
        StatusCode::OK,
        &DepositPage {
            qr: addresses.first().map(|a| qr_svg(a)).unwrap_or_default(),
            chrome,
            asset: coin.symbol.clone(),
            confirmations: coin.config.confirmations,
            min_deposit: crate::views::units(coin.min_deposit, 8),
            addresses,
            deposits,
        },
    )
}

/// `/account/funds/{asset}/deposit/address`: a new deposit address, then back to the page.
pub async fn create_address(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(asset): Path<String>,
) -> Result<Response, Response> {
    let back = format!("/account/funds/{asset}/deposit");
    let (chrome, user) = user_post(&state, &headers, &back).await?;
    Ok(match new_address(&state, user, &asset).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => error_page(chrome, e),
    })
}
