//! `/account/withdrawal-addresses`: the withdrawal-address whitelist — turn it on or off, add an
//! address (confirmed by the mailed link, usable after the delay), remove one. The forms post
//! here and share their logic with the REST endpoints (`api::whitelist`).

use super::account::login_first;
use super::format::utc;
use super::pages::{Chrome, render, user_post, with_retry_after};
use crate::api::whitelist::{self, WithdrawalAddressView};
use crate::error::ApiError;
use crate::state::Shared;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bourse_core::UserId;
use serde::Deserialize;

const PATH: &str = "/account/withdrawal-addresses";

pub struct AddressLine {
    a: WithdrawalAddressView,
    added: String,
    usable_from: String,
}

#[derive(Template)]
#[template(path = "whitelist.html")]
struct WhitelistPage {
    chrome: Chrome,
    enabled: bool,
    two_factor: bool,
    addresses: Vec<AddressLine>,
    /// The symbols of the assets with a wallet.
    assets: Vec<String>,
    delay: String,
    notice: String,
    error: String,
    switch_error: String,
    form_asset: String,
    form_address: String,
    form_label: String,
}

impl WhitelistPage {
    async fn load(state: &Shared, chrome: Chrome, user: UserId) -> Result<WhitelistPage, Response> {
        let list = whitelist::whitelist_of(state, user)
            .await
            .map_err(|e| super::pages::error_page(chrome.clone(), e))?;
        let two_factor = state
            .store
            .user(user)
            .await
            .map_err(|e| super::pages::error_page(chrome.clone(), ApiError::from(e)))?
            .is_some_and(|u| u.totp_sealed.is_some());
        let mut assets: Vec<String> =
            state.wallets.values().map(|w| w.chain.symbol().to_string()).collect();
        assets.sort();
        Ok(WhitelistPage {
            enabled: list.enabled,
            two_factor,
            addresses: list
                .addresses
                .into_iter()
                .map(|a| AddressLine {
                    added: utc(a.created_ms),
                    usable_from: a.usable_from_ms.map(utc).unwrap_or_default(),
                    a,
                })
                .collect(),
            form_asset: assets.first().cloned().unwrap_or_default(),
            assets,
            delay: whitelist::delay_text(state.config.withdrawals.address_delay_s),
            notice: String::new(),
            error: String::new(),
            switch_error: String::new(),
            form_address: String::new(),
            form_label: String::new(),
            chrome,
        })
    }
}

pub async fn page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let Some(user) = chrome.user_id else { return login_first(PATH) };
    match WhitelistPage::load(&state, chrome, user).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub struct AddForm {
    asset: String,
    address: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    two_factor_code: Option<String>,
}

/// `POST /account/withdrawal-addresses`: adds an address and says a link was mailed, or shows
/// the form again with the error.
pub async fn add(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<AddForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    let code = f.two_factor_code.as_deref();
    let added = whitelist::add(&state, user, &f.asset, &f.address, &f.label, code, &client).await;
    let mut page = WhitelistPage::load(&state, chrome, user).await?;
    Ok(match added {
        Ok(a) => {
            page.notice = format!(
                "{} address {} added. Open the link we e-mailed you to confirm it.",
                a.asset, a.address
            );
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            page.error = e.message.clone();
            page.form_asset = f.asset;
            page.form_address = f.address;
            page.form_label = f.label;
            with_retry_after(render(e.status, &page), &e)
        }
    })
}

#[derive(Deserialize)]
pub struct SwitchForm {
    /// `on` or `off`.
    enabled: String,
    #[serde(default)]
    two_factor_code: Option<String>,
}

/// `POST /account/withdrawal-addresses/enabled`: turns the whitelist on or off.
pub async fn switch(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<SwitchForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    let on = f.enabled == "on";
    let code = f.two_factor_code.as_deref();
    match whitelist::set_enabled(&state, user, on, code, &client).await {
        Ok(()) => Ok(Redirect::to(PATH).into_response()),
        Err(e) => {
            let mut page = WhitelistPage::load(&state, chrome, user).await?;
            page.switch_error = e.message.clone();
            Ok(with_retry_after(render(e.status, &page), &e))
        }
    }
}

/// `POST /account/withdrawal-addresses/{id}/remove`.
pub async fn remove(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    match whitelist::remove(&state, user, id, &client).await {
        Ok(()) => Ok(Redirect::to(PATH).into_response()),
        Err(e) => Err(super::pages::error_page(chrome, e)),
    }
}
