//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations and the view types, served at `GET /api/v1/openapi.json`.

use super::{account, public, trading, two_factor, wallet, whitelist};
use crate::error::ErrorBody;
use crate::views::{
    AssetView, BalanceView, CandleView, FillView, LedgerView, MarketView, OrderView, TickerView,
    TradeView, names,
};
use axum::Json;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Where the routes of [`super::routes`] are mounted.
pub const PREFIX: &str = "/api/v1";

const API_KEY_DESCRIPTION: &str = "A signed request (the Binance rule). Send the key in the \
`X-API-KEY` header (or `X-MBX-APIKEY`) and add the query parameters `timestamp` (Unix ms), \
optionally `recvWindow` (ms, default 5000) and, last, `signature`. The signature is the hex \
HMAC-SHA256, under the key's secret, of the raw query string without the `signature` pair, \
immediately followed by the raw request body (empty for GET and DELETE). A request is refused \
if `timestamp` is 1000 ms or more ahead of the server's clock or older than `recvWindow`. \
Keys carry scopes (`read`, `trade`, `withdraw`) and an optional IP allowlist; API keys cannot \
manage sessions or API keys.";

const SESSION_DESCRIPTION: &str = "The `bourse_session` cookie set by `POST /auth/login` \
(HttpOnly, SameSite=Lax, sliding expiry). Cross-site unsafe requests (per `Sec-Fetch-Site` or \
`Origin`) are refused with `csrf`.";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bourse REST API",
        description = "Amounts and prices are exact decimal strings in each asset's precision, \
ids are numbers and times are Unix milliseconds. Every error is `{code, message}` with a stable \
`code`."
    ),
    paths(
        openapi_json,
        public::time,
        public::health,
        public::assets,
        public::markets,
        public::tickers,
        public::ticker,
        public::depth,
        public::trades,
        public::candles,
        account::signup,
        account::verify_email,
        account::login,
        account::password_reset,
        account::password_reset_confirm,
        account::logout,
        account::me,
        account::sessions,
        account::sign_out_everywhere_api,
        account::security_events,
        account::revoke_session,
        account::api_keys,
        account::create_api_key,
        account::revoke_api_key,
        two_factor::setup,
        two_factor::enable_api,
        two_factor::disable_api,
        trading::balances,
        trading::place,
        trading::cancel_all,
        trading::cancel,
        trading::cancel_by_client_id,
        trading::get_order,
        trading::list_orders,
        trading::fills,
        trading::ledger,
        wallet::addresses,
        wallet::create_address,
        wallet::deposits,
        wallet::withdraw,
        wallet::withdrawals,
        wallet::confirm_withdrawal,
        whitelist::list,
        whitelist::add_api,
        whitelist::remove_api,
        whitelist::set_enabled_api,
        whitelist::confirm_api,
    ),
    components(schemas(
        ErrorBody,
        names::Side,
        names::OrderType,
        names::TimeInForce,
        names::StpMode,
        names::OrderStatus,
        names::EndReason,
        names::MarketStatus,
        names::LedgerKind,
        names::Role,
        names::Scope,
        AssetView,
        MarketView,
        OrderView,
        FillView,
        TradeView,
        BalanceView,
        LedgerView,
        CandleView,
        TickerView,
        public::ServerTime,
        public::Health,
        public::BackupView,
        public::NodeView,
        public::Depth,
        account::Credentials,
        account::LoginRequest,
        two_factor::Setup,
        two_factor::EnableRequest,
        two_factor::Enabled,
        two_factor::DisableRequest,
        account::VerifyRequest,
        account::ResetRequest,
        account::ResetConfirm,
        account::NewKeyRequest,
        account::SecurityEventView,
        account::SignOutRequest,
        account::SignedOut,
        account::SecurityEventsPage,
        account::Message,
        account::LoginResponse,
        account::Me,
        account::SessionView,
        account::Revoked,
        account::CreatedApiKey,
        account::ApiKeyView,
        whitelist::Whitelist,
        whitelist::WithdrawalAddressView,
        whitelist::NewWhitelistAddress,
        whitelist::WhitelistSwitch,
        whitelist::AddressConfirmRequest,
        trading::PlaceRequest,
        trading::PlaceResponse,
        trading::CancelResponse,
        trading::CancelAllResponse,
        trading::OrdersPage,
        trading::FillsPage,
        trading::LedgerPage,
        wallet::DepositAddressView,
        wallet::NewAddressRequest,
        wallet::DepositView,
        wallet::DepositsPage,
        wallet::WithdrawRequest,
        wallet::WithdrawalView,
        wallet::WithdrawalsPage,
        wallet::ConfirmRequest,
    )),
    modifiers(&Mounted),
    tags(
        (name = "public", description = "Market data and service status; no authentication"),
        (name = "account", description = "Sign-up, login, sessions and API keys"),
        (name = "trading", description = "Balances, orders, fills and the ledger"),
        (name = "wallet", description = "Deposit addresses and deposits"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes and mounts every path under [`PREFIX`].
struct Mounted;

impl Modify for Mounted {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                API_KEY_DESCRIPTION,
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                SESSION_DESCRIPTION,
            ))),
        );
        let paths = std::mem::take(&mut openapi.paths.paths);
        openapi.paths.paths =
            paths.into_iter().map(|(path, item)| (format!("{PREFIX}{path}"), item)).collect();
    }
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document itself.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "The OpenAPI 3 document of `/api/v1`", body = Object)))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}
