//! Deposit and withdrawal pages: `/account/funds/{asset}/deposit` shows the user's deposit
//! address with a QR code, a form for a new one, and the asset's deposits with their
//! confirmations; `/account/funds/{asset}/withdraw` a withdrawal form (fee and minimum shown)
//! and the asset's withdrawals with their txids. Assets without a wallet say so.

use super::account::login_first;
use super::format::utc_seconds;
use super::pages::{Chrome, error_page, message, not_found, render, user_post};
use crate::api::wallet::{
    DepositView, WithdrawalView, deposits_of, new_address, request_withdrawal, wallet,
};
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
pub(crate) fn qr_svg(address: &str) -> String {
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
            return withdraw_page(
                &state,
                chrome,
                user,
                &w,
                WithdrawForm::default(),
                StatusCode::OK,
            )
            .await;
        }
        _ => return not_found(State(state), headers).await,
    }
    state.wait_projected(user).await;
    let coin = &w.chain;
    let loaded = async {
        let addresses = state
            .store
            .deposit_addresses(user, coin.asset(), coin.addresses_per_user_max())
            .await?;
        let page = deposits_of(&state, user, Some(coin.symbol()), None, DEPOSITS_SHOWN).await?;
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
            asset: coin.symbol().to_string(),
            confirmations: coin.confirmations(),
            min_deposit: crate::views::units(coin.min_deposit(), coin.scale()),
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

/// What the withdraw form holds, and the answer to it.
#[derive(Default, serde::Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    two_factor_code: Option<String>,
    #[serde(skip)]
    address_error: String,
    #[serde(skip)]
    amount_error: String,
    #[serde(skip)]
    error: String,
}

pub struct WithdrawalLine {
    pub w: WithdrawalView,
    pub time: String,
}

#[derive(Template)]
#[template(path = "withdraw.html")]
struct WithdrawPage {
    chrome: Chrome,
    asset: String,
    fee: String,
    min: String,
    available: String,
    confirmations: u32,
    form: WithdrawForm,
    withdrawals: Vec<WithdrawalLine>,
    two_factor: bool,
    email_confirmation: bool,
    /// With the whitelist on: its usable addresses for this asset.
    whitelist: Option<Vec<String>>,
}

async fn withdraw_page(
    state: &Shared,
    chrome: Chrome,
    user: bourse_core::UserId,
    w: &crate::wallets::Wallet,
    form: WithdrawForm,
    status: StatusCode,
) -> Response {
    state.wait_projected(user).await;
    let coin = &w.chain;
    let loaded = async {
        let balance = state.store.balance(user, coin.asset()).await?;
        let filter =
            bourse_store::WithdrawalFilter { asset: Some(coin.asset()), before: None, limit: 50 };
        let rows = state.store.withdrawals(user, &filter).await?;
        let row = state.store.user(user).await?;
        let two_factor = row.as_ref().is_some_and(|u| u.totp_sealed.is_some());
        let whitelist = if row.as_ref().is_some_and(|u| u.address_whitelist) {
            let now = crate::now_ms();
            let listed = state.store.withdrawal_addresses(user).await?;
            Some(
                listed
                    .into_iter()
                    .filter(|a| {
                        a.asset == coin.asset() && a.usable_from_ms.is_some_and(|t| t <= now)
                    })
                    .map(|a| a.address)
                    .collect(),
            )
        } else {
            None
        };
        Ok::<_, crate::error::ApiError>((balance, rows, two_factor, whitelist))
    };
    let (balance, rows, two_factor, whitelist) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(chrome, e),
    };
    let scale = coin.scale();
    render(
        status,
        &WithdrawPage {
            asset: coin.symbol().to_string(),
            fee: crate::views::units(coin.withdrawal_fee(), scale),
            min: crate::views::units(coin.withdrawal_min(), scale),
            available: crate::views::signed_units(balance.map(|b| b.available).unwrap_or(0), scale),
            confirmations: coin.confirmations(),
            two_factor,
            whitelist,
            email_confirmation: state.config.withdrawals.email_confirmation,
            form,
            withdrawals: rows
                .iter()
                .map(|r| WithdrawalLine {
                    w: WithdrawalView::new(r, coin.symbol(), scale),
                    time: utc_seconds(r.created_ms),
                })
                .collect(),
            chrome,
        },
    )
}

/// `GET /account/funds/{asset}/withdraw` (a route of its own beside the POST).
pub async fn withdraw_form(
    state: State<Shared>,
    headers: HeaderMap,
    Path(asset): Path<String>,
) -> Response {
    page(state, headers, Path((asset, "withdraw".to_string()))).await
}

/// `POST /account/funds/{asset}/withdraw`: holds the withdrawal and goes back to the page, or
/// shows the form again with the error next to its field.
pub async fn withdraw(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Path(asset): Path<String>,
    axum::Form(mut f): axum::Form<WithdrawForm>,
) -> Result<Response, Response> {
    let back = format!("/account/funds/{asset}/withdraw");
    let (chrome, user) = user_post(&state, &headers, &back).await?;
    let w = wallet(&state, &asset).map_err(|e| error_page(chrome.clone(), e))?;
    let code = f.two_factor_code.take();
    let requested = async {
        crate::api::two_factor::require(&state, user, code.as_deref()).await?;
        request_withdrawal(&state, user, &asset, &f.address, &f.amount, &client).await
    };
    Ok(match requested.await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => {
            let status = e.status;
            match e.code {
                "bad_address" | "address_not_whitelisted" => f.address_error = e.message,
                "withdrawals_locked"
                | "two_factor_required"
                | "bad_two_factor_code"
                | "too_many_attempts" => f.error = e.message,
                "node_unavailable" | "internal" | "unavailable" => f.error = e.message,
                _ => f.amount_error = e.message,
            }
            withdraw_page(&state, chrome, user, &w, f, status).await
        }
    })
}
