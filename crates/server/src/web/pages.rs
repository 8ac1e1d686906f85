//! Page handlers: read what a page shows, render its template. Form posts share their logic
//! with the REST endpoints and answer with the page again (errors next to the field) or a
//! redirect.

use crate::api::account::{
    open_session, register, request_reset, reset_password, session_cookie, verify_address,
};
use crate::auth::{same_origin, session_token};
use crate::crypto;
use crate::error::ApiError;
use crate::state::Shared;
use crate::views::{MarketView, TickerView};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bourse_core::UserId;
use serde::Deserialize;

/// What every page's frame needs: who is logged in.
#[derive(Clone)]
pub struct Chrome {
    pub user: Option<String>,
    pub user_id: Option<UserId>,
    pub session_id: Option<i64>,
    pub version: &'static str,
}

impl Chrome {
    pub async fn of(state: &Shared, headers: &HeaderMap) -> Chrome {
        let mut chrome = Chrome {
            user: None,
            user_id: None,
            session_id: None,
            version: env!("CARGO_PKG_VERSION"),
        };
        let Some(token) = session_token(headers) else { return chrome };
        let now = crate::now_ms();
        if let Ok(Some(session)) = state.store.live_session(&crypto::token_hash(&token), now).await
            && let Ok(Some(user)) = state.store.user(session.user).await
        {
            chrome.user = Some(user.email);
            chrome.user_id = Some(user.id);
            chrome.session_id = Some(session.id);
        }
        chrome
    }
}

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "–".into())
}

/// A market with its 24 h figures, as the tables show them.
pub struct MarketRow {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub status: &'static str,
    pub last: String,
    pub change_percent: String,
    pub change_class: &'static str,
    pub high: String,
    pub low: String,
    pub volume: String,
}

impl MarketRow {
    fn new(m: &MarketView, t: Option<TickerView>) -> MarketRow {
        let change = t.as_ref().and_then(|t| t.change_percent.clone());
        let change_class = match change.as_deref() {
            Some(c) if c.starts_with('-') => "down",
            Some(c) if c.chars().any(|d| ('1'..='9').contains(&d)) => "up",
            _ => "",
        };
        MarketRow {
            symbol: m.symbol.clone(),
            base: m.base.clone(),
            quote: m.quote.clone(),
            status: m.status,
            last: dash(t.as_ref().and_then(|t| t.last.clone())),
            change_percent: change.map(|c| format!("{c} %")).unwrap_or_else(|| "–".into()),
            change_class,
            high: dash(t.as_ref().and_then(|t| t.high.clone())),
            low: dash(t.as_ref().and_then(|t| t.low.clone())),
            volume: t.map(|t| t.volume).unwrap_or_else(|| "0".into()),
        }
    }
}

/// Every market with its ticker, in symbol order.
pub fn market_rows(state: &Shared) -> Result<Vec<(MarketView, MarketRow)>, ApiError> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let tickers = state.tickers.lock().map_err(|_| ApiError::internal("tickers", "poisoned"))?;
    let now = crate::now_ms();
    let mut rows: Vec<(MarketView, MarketRow)> = mirror
        .markets
        .iter()
        .map(|(id, info)| {
            let view = MarketView::new(info);
            let row = MarketRow::new(&view, tickers.view(*id, now, &mirror));
            (view, row)
        })
        .collect();
    rows.sort_by(|a, b| a.0.symbol.cmp(&b.0.symbol));
    Ok(rows)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    markets: Vec<MarketRow>,
}

pub async fn home(State(state): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let markets = market_rows(&state)?.into_iter().map(|(_, row)| row).collect();
    let chrome = Chrome::of(&state, &headers).await;
    Ok(render(StatusCode::OK, &HomePage { chrome, markets }))
}

/// The order form as the market page shows it: what was typed, and the answer to it (when the
/// form was posted without JavaScript).
#[derive(Default)]
pub struct OrderForm {
    pub side: String,
    pub kind: String,
    pub price: String,
    pub quantity: String,
    pub price_error: String,
    pub quantity_error: String,
    pub error: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "market.html")]
struct MarketPage {
    chrome: Chrome,
    m: MarketView,
    t: MarketRow,
    intervals: [&'static str; 6],
    kinds: [(&'static str, &'static str); 5],
    form: OrderForm,
}

pub async fn market(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    market_page(&state, chrome, &symbol, OrderForm::default(), StatusCode::OK)
}

/// The market page, with the order form as given.
pub fn market_page(
    state: &Shared,
    chrome: Chrome,
    symbol: &str,
    form: OrderForm,
    status: StatusCode,
) -> Response {
    let found = match market_rows(state) {
        Ok(rows) => rows.into_iter().find(|(view, _)| view.symbol == symbol),
        Err(e) => return error_page(chrome, e),
    };
    match found {
        Some((m, t)) => render(
            status,
            &MarketPage {
                chrome,
                m,
                t,
                intervals: ["1m", "5m", "15m", "1h", "4h", "1d"],
                kinds: [
                    ("limit", "Limit"),
                    ("market", "Market"),
                    ("post_only", "Post-only (limit, maker only)"),
                    ("ioc", "Limit, immediate or cancel"),
                    ("fok", "Limit, fill or kill"),
                ],
                form,
            },
        ),
        None => message(
            chrome,
            StatusCode::NOT_FOUND,
            "No such market",
            &format!("There is no market {symbol}."),
            ("/", "See all markets"),
        ),
    }
}

/// An error as a page: its message, with the HTTP status of the REST error.
pub fn error_page(chrome: Chrome, e: ApiError) -> Response {
    let title =
        if e.status.is_server_error() { "Something went wrong" } else { "This did not work" };
    let text = if e.status.is_server_error() {
        "The exchange could not do this just now. Try again in a moment."
    } else {
        &e.message
    };
    message(chrome, e.status, title, text, ("/", "Go to the markets"))
}

/// Any other path: a page saying so (REST and WebSocket paths answer JSON instead).
pub async fn not_found(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    message(
        chrome,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
        ("/", "Go to the markets"),
    )
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: Chrome,
    title: &'a str,
    text: &'a str,
    link_href: &'a str,
    link_text: &'a str,
}

pub fn message(
    chrome: Chrome,
    status: StatusCode,
    title: &str,
    text: &str,
    (link_href, link_text): (&str, &str),
) -> Response {
    render(status, &MessagePage { chrome, title, text, link_href, link_text })
}

/// One input of a form page.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
    pub error: String,
    pub required: bool,
}

impl Field {
    fn new(name: &'static str, label: &'static str, kind: &'static str) -> Field {
        let autocomplete = match (name, kind) {
            ("email", _) => "email",
            ("password", _) => "current-password",
            _ => "off",
        };
        Field {
            name,
            label,
            kind,
            value: String::new(),
            autocomplete,
            error: String::new(),
            required: true,
        }
    }

    fn optional(mut self) -> Field {
        self.required = false;
        self
    }

    fn value(mut self, value: impl Into<String>) -> Field {
        self.value = value.into();
        self
    }

    fn autocomplete(mut self, autocomplete: &'static str) -> Field {
        self.autocomplete = autocomplete;
        self
    }
}

pub struct FormSpec {
    pub title: &'static str,
    pub notice: String,
    pub error: String,
    pub action: String,
    pub submit: &'static str,
    pub fields: Vec<Field>,
    /// Links under the form: `(href, text)`.
    pub footer: Vec<(&'static str, &'static str)>,
    /// The CAPTCHA widget, on signup, login and reset when `[captcha]` is on.
    pub captcha: Option<crate::captcha::Widget>,
}

impl FormSpec {
    /// Shows `message` next to the field `name`, or above the form when it has no such field.
    fn error_at(&mut self, name: &str, message: String) {
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(f) => f.error = message,
            None => self.error = message,
        }
    }
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    chrome: Chrome,
    form: FormSpec,
}

/// A signup, login or reset form page: with the CAPTCHA widget when one is configured, and the
/// Content-Security-Policy that lets its script and frame load.
fn captcha_form(
    state: &Shared,
    status: StatusCode,
    chrome: Chrome,
    mut form: FormSpec,
) -> Response {
    form.captcha = state.config.captcha.widget();
    let with_widget = form.captcha.is_some();
    let mut response = render(status, &FormPage { chrome, form });
    if with_widget {
        let policy = crate::captcha::content_security_policy(&state.config.captcha);
        if let Ok(value) = header::HeaderValue::from_str(&policy) {
            response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

/// Only a path on this site: never an absolute or protocol-relative URL (open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

fn login_form(email: &str, next: &str) -> FormSpec {
    FormSpec {
        title: "Log in",
        notice: String::new(),
        error: String::new(),
        action: "/login".into(),
        submit: "Log in",
        fields: vec![
            Field::new("email", "E-mail", "email").value(email),
            Field::new("password", "Password", "password"),
            Field::new("two_factor_code", "Two-factor code (only if you turned it on)", "text")
                .autocomplete("one-time-code")
                .optional(),
            Field::new("next", "", "hidden").value(next),
        ],
        footer: vec![("/reset", "Forgot your password?"), ("/signup", "No account yet? Sign up")],
        captcha: None,
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let form = login_form("", &safe_next(q.next.as_deref()));
    captcha_form(&state, StatusCode::OK, chrome, form)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    two_factor_code: Option<String>,
    next: Option<String>,
    /// The CAPTCHA widget's answer, under each provider's field name.
    #[serde(
        default,
        alias = "h-captcha-response",
        alias = "g-recaptcha-response",
        alias = "cf-turnstile-response"
    )]
    captcha: Option<String>,
}

/// The frame of a form post, or the refusal of one sent from another site.
pub async fn form_post(state: &Shared, headers: &HeaderMap) -> Result<Chrome, Response> {
    let chrome = Chrome::of(state, headers).await;
    if !same_origin(headers, &state.config.public_url()) {
        return Err(cross_site(chrome));
    }
    Ok(chrome)
}

/// [`form_post`] for a post that needs a login: without one, to the login page and back to
/// `back`.
pub async fn user_post(
    state: &Shared,
    headers: &HeaderMap,
    back: &str,
) -> Result<(Chrome, UserId), Response> {
    let chrome = form_post(state, headers).await?;
    match chrome.user_id {
        Some(user) => Ok((chrome, user)),
        None => Err(super::account::login_first(back)),
    }
}

pub fn cross_site(chrome: Chrome) -> Response {
    message(
        chrome,
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another site.",
        ("/", "Go to the markets"),
    )
}

pub async fn login(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    let next = safe_next(f.next.as_deref());
    let code = f.two_factor_code.as_deref().filter(|c| !c.trim().is_empty());
    let captcha = f.captcha.as_deref();
    Ok(match open_session(&state, &f.email, f.password, code, captcha, &client).await {
        Ok((cookie, _)) => ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response(),
        Err(e) => {
            let mut form = login_form(&f.email, &next);
            match e.code {
                "two_factor_required" | "bad_two_factor_code" => {
                    form.error_at("two_factor_code", e.message.clone());
                }
                _ => form.error = e.message.clone(),
            }
            with_retry_after(captcha_form(&state, e.status, chrome, form), &e)
        }
    })
}

/// A page answering a rate limit carries its `Retry-After` like the API's answer.
pub fn with_retry_after(mut response: Response, e: &ApiError) -> Response {
    if let Some(s) = e.retry_after_s {
        response.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
    response
}

fn signup_form(email: &str) -> FormSpec {
    FormSpec {
        title: "Sign up",
        notice: String::new(),
        error: String::new(),
        action: "/signup".into(),
        submit: "Create account",
        fields: vec![
            Field::new("email", "E-mail", "email").value(email),
            Field::new("password", "Password (at least 10 characters)", "password")
                .autocomplete("new-password"),
        ],
        footer: vec![("/login", "Already have an account? Log in")],
        captcha: None,
    }
}

pub async fn signup_page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    captcha_form(&state, StatusCode::OK, chrome, signup_form(""))
}

#[derive(Deserialize)]
pub struct SignupForm {
    email: String,
    password: String,
    /// The CAPTCHA widget's answer, under each provider's field name.
    #[serde(
        default,
        alias = "h-captcha-response",
        alias = "g-recaptcha-response",
        alias = "cf-turnstile-response"
    )]
    captcha: Option<String>,
}

pub async fn signup(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<SignupForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    Ok(match register(&state, &f.email, f.password, f.captcha.as_deref(), &client).await {
        Ok(()) => message(
            chrome,
            StatusCode::OK,
            "Check your e-mail",
            "We sent a link to confirm your address. Open it within 48 hours, then log in.",
            ("/login", "Log in"),
        ),
        Err(e) => {
            let mut form = signup_form(&f.email);
            let field = match e.code {
                "weak_password" => "password",
                _ if e.status.is_client_error() => "email",
                _ => "",
            };
            form.error_at(field, e.message.clone());
            with_retry_after(captcha_form(&state, e.status, chrome, form), &e)
        }
    })
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: Option<String>,
}

/// The page a mailed link opens: one button that posts the link's token to `action` (a link
/// prefetcher changes nothing).
fn token_page(
    chrome: Chrome,
    title: &'static str,
    notice: &str,
    action: &str,
    submit: &'static str,
    q: TokenForm,
) -> Response {
    let form = FormSpec {
        title,
        notice: notice.into(),
        error: String::new(),
        action: action.into(),
        submit,
        fields: vec![Field::new("token", "", "hidden").value(q.token.unwrap_or_default())],
        footer: Vec::new(),
        captcha: None,
    };
    render(StatusCode::OK, &FormPage { chrome, form })
}

pub async fn verify_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let notice = "Press the button to confirm the address this link was sent to.";
    token_page(chrome, "Confirm your e-mail address", notice, "/verify", "Confirm my address", q)
}

pub async fn verify(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    Ok(match verify_address(&state, f.token.as_deref().unwrap_or(""), &client).await {
        Ok(()) => message(
            chrome,
            StatusCode::OK,
            "Address confirmed",
            "Your e-mail address is confirmed. You can log in now.",
            ("/login", "Log in"),
        ),
        Err(e) => message(
            chrome,
            e.status,
            "This link does not work",
            &e.message,
            ("/signup", "Sign up again"),
        ),
    })
}

/// The link of a "new login" mail opens a page that signs out with a POST (a link prefetcher
/// signs out nothing).
pub async fn sign_out_everywhere_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let notice = "Press the button to end every session of the account this link was sent to. Then reset your password.";
    let (title, submit) = ("Sign out every session", "Sign out everywhere");
    token_page(chrome, title, notice, "/sign-out-everywhere", submit, q)
}

pub async fn sign_out_everywhere(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    let token = f.token.as_deref().unwrap_or("");
    Ok(match crate::api::account::sign_out_everywhere(&state, token, &client).await {
        Ok(_) => {
            let clear = [(header::SET_COOKIE, session_cookie(&state, "", 0))];
            let page = message(
                chrome,
                StatusCode::OK,
                "Signed out everywhere",
                "Every session of the account has ended. Choose a new password now.",
                ("/reset", "Reset the password"),
            );
            (clear, page).into_response()
        }
        Err(e) => {
            message(chrome, e.status, "This link does not work", &e.message, ("/login", "Log in"))
        }
    })
}

/// The link of a withdrawal's confirmation mail opens a page that confirms with a POST (a link
/// prefetcher confirms nothing).
pub async fn confirm_withdrawal_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let notice = "Press the button to confirm the withdrawal this link was mailed for. Until then it is not sent.";
    let (title, submit) = ("Confirm your withdrawal", "Confirm the withdrawal");
    token_page(chrome, title, notice, "/confirm-withdrawal", submit, q)
}

pub async fn confirm_withdrawal(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    let token = f.token.as_deref().unwrap_or("");
    Ok(match crate::withdrawal_safety::confirm(&state, token).await {
        Ok(w) => {
            let text = if w.status == bourse_store::WithdrawalStatus::Review {
                "Confirmed. Because of its size, an operator approves it before it is sent."
            } else {
                "Confirmed. It goes out with the next batch; follow it on your funds page."
            };
            message(
                chrome,
                StatusCode::OK,
                "Withdrawal confirmed",
                text,
                ("/account/funds", "Funds"),
            )
        }
        Err(e) => message(
            chrome,
            e.status,
            "This link does not work",
            &e.message,
            ("/account/funds", "Funds"),
        ),
    })
}

/// The link of a whitelist address's confirmation mail opens a page that confirms with a POST.
pub async fn confirm_address_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let notice = "Press the button to confirm the withdrawal address this link was mailed for.";
    let (title, submit) = ("Confirm a withdrawal address", "Confirm the address");
    token_page(chrome, title, notice, "/confirm-address", submit, q)
}

pub async fn confirm_address(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    let token = f.token.as_deref().unwrap_or("");
    let back = ("/account/withdrawal-addresses", "Withdrawal addresses");
    Ok(match crate::api::whitelist::confirm(&state, token, &client).await {
        Ok(a) => {
            let when = match a.usable_from_ms {
                Some(from) if a.status == "waiting" => {
                    format!("from {} UTC", super::format::utc_seconds(from))
                }
                _ => "from now on".into(),
            };
            let text = format!(
                "The {} address {} is confirmed. Withdrawals may go to it {when}.",
                a.asset, a.address
            );
            message(chrome, StatusCode::OK, "Address confirmed", &text, back)
        }
        Err(e) => message(chrome, e.status, "This link does not work", &e.message, back),
    })
}

pub async fn logout(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    // The session `Chrome::of` already found, not a second lookup.
    if let (Some(user), Some(id)) = (chrome.user_id, chrome.session_id) {
        match state.store.revoke_session(user, id).await {
            Ok(_) => {
                let kind = bourse_store::SecurityEventKind::Logout;
                crate::security::record(&state, user, kind, &client, format!("session {id}")).await;
            }
            Err(e) => tracing::error!(error = %e, "cannot end a session"),
        }
    }
    Ok(([(header::SET_COOKIE, session_cookie(&state, "", 0))], Redirect::to("/")).into_response())
}

fn reset_request_form(email: &str) -> FormSpec {
    FormSpec {
        title: "Reset your password",
        notice: "Enter the address of your account: we mail it a link to choose a new password."
            .into(),
        error: String::new(),
        action: "/reset".into(),
        submit: "Mail me a link",
        fields: vec![Field::new("email", "E-mail", "email").value(email)],
        footer: vec![("/login", "Back to log in")],
        captcha: None,
    }
}

fn reset_form(token: &str) -> FormSpec {
    FormSpec {
        title: "Choose a new password",
        notice: "Every session of the account is signed out when the password changes.".into(),
        error: String::new(),
        action: "/reset/confirm".into(),
        submit: "Set the new password",
        fields: vec![
            Field::new("password", "New password (at least 10 characters)", "password")
                .autocomplete("new-password"),
            Field::new("token", "", "hidden").value(token),
        ],
        footer: Vec::new(),
        captcha: None,
    }
}

/// `/reset`: the request form, or with `?token=` (the mailed link) the new-password form.
pub async fn reset_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    match q.token.as_deref() {
        Some(token) if !token.is_empty() => {
            render(StatusCode::OK, &FormPage { chrome, form: reset_form(token) })
        }
        _ => captcha_form(&state, StatusCode::OK, chrome, reset_request_form("")),
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
    /// The CAPTCHA widget's answer, under each provider's field name.
    #[serde(
        default,
        alias = "h-captcha-response",
        alias = "g-recaptcha-response",
        alias = "cf-turnstile-response"
    )]
    captcha: Option<String>,
}

pub async fn reset_request(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<EmailForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    Ok(match request_reset(&state, &f.email, f.captcha.as_deref(), &client).await {
        Ok(()) => message(
            chrome,
            StatusCode::OK,
            "Check your e-mail",
            "If this address has an account, we sent it a link to choose a new password. The link works once, within an hour.",
            ("/login", "Log in"),
        ),
        Err(e) => {
            let mut form = reset_request_form(&f.email);
            form.error_at("email", e.message);
            captcha_form(&state, e.status, chrome, form)
        }
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
}

pub async fn reset_confirm(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Result<Response, Response> {
    let chrome = form_post(&state, &headers).await?;
    Ok(match reset_password(&state, &f.token, f.password, &client).await {
        Ok(()) => {
            // This browser's session ended with the others.
            let clear = [(header::SET_COOKIE, session_cookie(&state, "", 0))];
            let chrome = Chrome { user: None, user_id: None, session_id: None, ..chrome };
            let page = message(
                chrome,
                StatusCode::OK,
                "Password changed",
                "Your new password is set and every session was signed out. Log in with the new password.",
                ("/login", "Log in"),
            );
            (clear, page).into_response()
        }
        Err(e) if e.code == "weak_password" => {
            let mut form = reset_form(&f.token);
            form.error_at("password", e.message);
            render(e.status, &FormPage { chrome, form })
        }
        Err(e) => message(
            chrome,
            e.status,
            "This link does not work",
            &e.message,
            ("/reset", "Ask for a new link"),
        ),
    })
}
