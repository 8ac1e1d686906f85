//! An optional CAPTCHA on signup, login and password reset (`[captcha]`, off by default):
//! hCaptcha, reCAPTCHA (v2 checkbox) or Cloudflare Turnstile. A page shows the provider's
//! widget ([`CaptchaConfig::widget`], with the origins it needs in the Content-Security-Policy:
//! [`content_security_policy`]); the widget posts a token with the form, and [`check`] has the
//! provider's siteverify endpoint confirm it server-side before the handler does anything else.
//!
//! The verifier is called like the alert webhook (`alerts.rs`): ureq with its own rustls (ring)
//! configuration, on the blocking pool, under a timeout. A verifier that is down, slow or
//! answers nonsense makes the check fail closed (503 `captcha_unavailable`), never pass.

use crate::error::ApiError;
use axum::http::StatusCode;
use bourse_core::Secret;
use serde::{Deserialize, Deserializer};
use std::sync::OnceLock;
use std::time::Duration;

/// A CAPTCHA provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Hcaptcha,
    Recaptcha,
    Turnstile,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "hcaptcha",
            Provider::Recaptcha => "recaptcha",
            Provider::Turnstile => "turnstile",
        }
    }

    /// The provider's own siteverify endpoint.
    pub fn default_verify_url(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Provider::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
            Provider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        }
    }

    fn script_url(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "https://js.hcaptcha.com/1/api.js",
            Provider::Recaptcha => "https://www.google.com/recaptcha/api.js",
            Provider::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/api.js",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "h-captcha",
            Provider::Recaptcha => "g-recaptcha",
            Provider::Turnstile => "cf-turnstile",
        }
    }

    fn response_field(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "h-captcha-response",
            Provider::Recaptcha => "g-recaptcha-response",
            Provider::Turnstile => "cf-turnstile-response",
        }
    }

    /// The origins the widget loads its script, frames (and for hCaptcha styles and XHRs)
    /// from, as each provider documents them for a Content-Security-Policy.
    fn csp_sources(self) -> &'static str {
        match self {
            Provider::Hcaptcha => "https://hcaptcha.com https://*.hcaptcha.com",
            Provider::Recaptcha => "https://www.google.com https://www.gstatic.com",
            Provider::Turnstile => "https://challenges.cloudflare.com",
        }
    }

    /// The CSP directives the provider's origins are added to.
    fn csp_directives(self) -> &'static [&'static str] {
        match self {
            Provider::Hcaptcha => &["script-src", "frame-src", "style-src", "connect-src"],
            Provider::Recaptcha | Provider::Turnstile => &["script-src", "frame-src"],
        }
    }
}

/// `provider`: one of the names, or absent, `""` or `"none"` for off (so an environment
/// variable can turn a configured CAPTCHA off).
fn deserialize_provider<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Provider>, D::Error> {
    let name = String::deserialize(d)?;
    match name.trim().to_ascii_lowercase().as_str() {
        "" | "none" => Ok(None),
        "hcaptcha" => Ok(Some(Provider::Hcaptcha)),
        "recaptcha" => Ok(Some(Provider::Recaptcha)),
        "turnstile" => Ok(Some(Provider::Turnstile)),
        _ => Err(serde::de::Error::custom(format!(
            "unknown captcha provider `{name}`: expected hcaptcha, recaptcha or turnstile"
        ))),
    }
}

/// `[captcha]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaConfig {
    /// `hcaptcha`, `recaptcha` (v2 checkbox) or `turnstile`; absent: no CAPTCHA.
    #[serde(default, deserialize_with = "deserialize_provider")]
    pub provider: Option<Provider>,
    /// The public site key the widget is shown with.
    #[serde(default)]
    pub site_key: String,
    /// The secret the server verifies tokens with.
    #[serde(default = "empty_secret")]
    pub secret: Secret,
    /// Overrides the provider's siteverify URL (a proxy, tests).
    #[serde(default)]
    pub verify_url: Option<String>,
    /// One verification at most; past it the check fails with 503 `captcha_unavailable`.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn empty_secret() -> Secret {
    Secret::new("")
}
fn default_timeout_ms() -> u64 {
    5_000
}

impl Default for CaptchaConfig {
    fn default() -> CaptchaConfig {
        CaptchaConfig {
            provider: None,
            site_key: String::new(),
            secret: empty_secret(),
            verify_url: None,
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// What a page needs to show the provider's widget: `<script src="{script_url}" async defer>`
/// and `<div class="{class}" data-sitekey="{site_key}"></div>` inside the form, which then
/// posts the token as `{response_field}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widget {
    pub script_url: &'static str,
    pub class: &'static str,
    pub site_key: String,
    pub response_field: &'static str,
}

impl CaptchaConfig {
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// The widget to show; None when the CAPTCHA is off.
    pub fn widget(&self) -> Option<Widget> {
        let provider = self.provider?;
        Some(Widget {
            script_url: provider.script_url(),
            class: provider.class(),
            site_key: self.site_key.clone(),
            response_field: provider.response_field(),
        })
    }

    /// The origins the Content-Security-Policy must allow for the widget; None when off.
    pub fn csp_sources(&self) -> Option<&'static str> {
        self.provider.map(Provider::csp_sources)
    }

    /// Where tokens are verified: `verify_url`, or the provider's own endpoint.
    pub fn verify_url(&self) -> Option<&str> {
        let provider = self.provider?;
        Some(self.verify_url.as_deref().unwrap_or(provider.default_verify_url()))
    }

    /// Called by `Config::validate`: a provider needs its site key and secret.
    pub fn validate(&self) -> Result<(), String> {
        let Some(provider) = self.provider else { return Ok(()) };
        let name = provider.as_str();
        if self.site_key.trim().is_empty() {
            return Err(format!("captcha.site_key must be set when captcha.provider is {name}"));
        }
        if self.secret.expose().trim().is_empty() {
            return Err(format!("captcha.secret must be set when captcha.provider is {name}"));
        }
        if let Some(url) = &self.verify_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("captcha.verify_url must start with http:// or https://".into());
        }
        if self.timeout_ms == 0 {
            return Err("captcha.timeout_ms must be positive".into());
        }
        Ok(())
    }
}

/// The site's Content-Security-Policy ([`crate::web::CONTENT_SECURITY_POLICY`]) with the
/// provider's origins added to the directives its widget needs; unchanged when off. A
/// directive the policy lacks (`frame-src`) is added with `default-src`'s sources first, so
/// what the policy allowed before stays allowed.
pub fn content_security_policy(config: &CaptchaConfig) -> String {
    extend_policy(crate::web::CONTENT_SECURITY_POLICY, config)
}

fn extend_policy(policy: &str, config: &CaptchaConfig) -> String {
    let Some(provider) = config.provider else { return policy.to_string() };
    let sources = provider.csp_sources();
    let mut directives: Vec<String> =
        policy.split(';').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
    let default_src = directives
        .iter()
        .find_map(|d| d.strip_prefix("default-src "))
        .unwrap_or("'self'")
        .to_string();
    for name in provider.csp_directives() {
        let existing = directives
            .iter_mut()
            .find(|d| d.split_whitespace().next().is_some_and(|n| n.eq_ignore_ascii_case(name)));
        match existing {
            Some(directive) => {
                directive.push(' ');
                directive.push_str(sources);
            }
            None => directives.push(format!("{name} {default_src} {sources}")),
        }
    }
    directives.join("; ")
}

/// A token longer than this is refused without asking the provider (real ones are ~2 KiB).
pub const RESPONSE_BYTES_MAX: usize = 4_096;

/// The verifier's answer is read up to this size; a longer one is a failed verification.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;

/// Error codes that mean the operator's configuration is wrong, not the user's answer.
const CONFIG_ERROR_CODES: &[&str] =
    &["missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch", "invalid-sitekey"];

fn required() -> ApiError {
    ApiError::bad_request("captcha_required", "complete the CAPTCHA")
}

fn failed() -> ApiError {
    ApiError::bad_request("captcha_failed", "the CAPTCHA was not solved; try again")
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "captcha_unavailable",
        "the CAPTCHA cannot be checked right now; try again shortly",
    )
}

/// The process's one HTTP client for verifiers (keeps connections to the provider alive). No
/// redirects: a siteverify endpoint answers, it does not send the secret elsewhere.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent("bourse")
            .build()
            .into()
    })
}

/// What became of one verification.
#[derive(Debug)]
enum Outcome {
    Passed,
    Refused(Vec<String>),
    Unavailable(String),
}

/// Posts the token to the verifier and reads its answer (blocking: run on the blocking pool).
fn verify(url: &str, form: &[(&str, &str)], timeout: Duration) -> Outcome {
    let answer = agent()
        .post(url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .send_form(form.iter().copied());
    let mut answer = match answer {
        Ok(answer) => answer,
        Err(e) => return Outcome::Unavailable(format!("the verifier does not answer: {e}")),
    };
    let status = answer.status();
    if status.is_server_error() || status.is_redirection() || status.is_informational() {
        return Outcome::Unavailable(format!("the verifier answered {status}"));
    }
    let body = match answer.body_mut().with_config().limit(ANSWER_BYTES_MAX).read_to_vec() {
        Ok(body) => body,
        Err(e) => return Outcome::Unavailable(format!("cannot read the verifier's answer: {e}")),
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Outcome::Unavailable(format!("the verifier answered {status} without JSON"));
    };
    match json.get("success").and_then(serde_json::Value::as_bool) {
        Some(true) if status.is_success() => Outcome::Passed,
        Some(true) => Outcome::Unavailable(format!("the verifier answered {status}")),
        Some(false) => {
            let codes = json
                .get("error-codes")
                .and_then(serde_json::Value::as_array)
                .map(|codes| {
                    codes
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .take(8)
                        .map(|c| c.chars().take(64).collect())
                        .collect()
                })
                .unwrap_or_default();
            Outcome::Refused(codes)
        }
        None => Outcome::Unavailable(format!("the verifier answered {status} without `success`")),
    }
}

/// Has the provider confirm the CAPTCHA token the client posted (`response`, the form's
/// [`Widget::response_field`]). Ok at once when the CAPTCHA is off. Errors: 400
/// `captcha_required` (no token: nothing is sent), 400 `captcha_failed` (the provider refused
/// it), 503 `captcha_unavailable` (the provider cannot be reached in `timeout_ms`, or answers
/// 5xx or nonsense).
pub async fn check(
    config: &CaptchaConfig,
    response: Option<&str>,
    client_ip: &str,
) -> Result<(), ApiError> {
    let Some(provider) = config.provider else { return Ok(()) };
    let response = match response.map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= RESPONSE_BYTES_MAX => r.to_string(),
        _ => return Err(required()),
    };
    let url = config.verify_url().unwrap_or(provider.default_verify_url()).to_string();
    let secret = config.secret.clone();
    let site_key = config.site_key.clone();
    let client_ip = client_ip.to_string();
    let timeout = Duration::from_millis(config.timeout_ms.max(1));
    let call = tokio::task::spawn_blocking(move || {
        let mut form = vec![("secret", secret.expose()), ("response", response.as_str())];
        if !client_ip.is_empty() {
            form.push(("remoteip", client_ip.as_str()));
        }
        if provider == Provider::Hcaptcha {
            form.push(("sitekey", site_key.as_str()));
        }
        verify(&url, &form, timeout)
    });
    // ureq keeps to the timeout; this guards against anything it does not cover.
    let outcome = match tokio::time::timeout(timeout + Duration::from_millis(250), call).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Unavailable(format!("the verification task failed: {e}")),
        Err(_) => Outcome::Unavailable("the verifier timed out".into()),
    };
    match outcome {
        Outcome::Passed => Ok(()),
        Outcome::Refused(codes) => {
            if codes.iter().any(|c| CONFIG_ERROR_CODES.contains(&c.as_str())) {
                tracing::warn!(
                    provider = provider.as_str(),
                    ?codes,
                    "the CAPTCHA provider refuses the site key or secret: check [captcha]"
                );
            } else {
                tracing::debug!(provider = provider.as_str(), ?codes, "a CAPTCHA was refused");
            }
            Err(failed())
        }
        Outcome::Unavailable(reason) => {
            tracing::warn!(
                provider = provider.as_str(),
                error = %reason,
                "the CAPTCHA cannot be verified"
            );
            Err(unavailable())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::Config;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn parse(text: &str) -> Result<CaptchaConfig, String> {
        toml::from_str::<CaptchaConfig>(text).map_err(|e| e.to_string())
    }

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let mut env = vec![("BOURSE_SECRET_KEY".to_string(), KEY.to_string())];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::load(None, env).map_err(|e| e.to_string())
    }

    fn on(provider: Provider) -> CaptchaConfig {
        CaptchaConfig {
            provider: Some(provider),
            site_key: "site".into(),
            secret: Secret::new("s3cret"),
            ..CaptchaConfig::default()
        }
    }

    #[test]
    fn off_by_default() {
        let config = load(&[]).unwrap();
        assert!(!config.captcha.enabled());
        assert_eq!(config.captcha.timeout_ms, 5_000);
        assert!(config.captcha.widget().is_none());
        assert!(config.captcha.csp_sources().is_none());
        assert!(config.captcha.verify_url().is_none());
        assert_eq!(parse("").unwrap().provider, None);
        assert_eq!(parse("provider = \"none\"").unwrap().provider, None);
        assert_eq!(parse("provider = \"\"").unwrap().provider, None);
        assert!(CaptchaConfig::default().validate().is_ok());
    }

    #[test]
    fn parses_each_provider() {
        let config = parse(
            "provider = \"hcaptcha\"\nsite_key = \"k\"\nsecret = \"s\"\n\
             verify_url = \"http://127.0.0.1:1/v\"\ntimeout_ms = 300",
        )
        .unwrap();
        assert_eq!(config.provider, Some(Provider::Hcaptcha));
        assert_eq!(config.site_key, "k");
        assert_eq!(config.secret.expose(), "s");
        assert_eq!(config.verify_url(), Some("http://127.0.0.1:1/v"));
        assert_eq!(config.timeout_ms, 300);
        assert!(config.validate().is_ok());
        for (name, provider, url) in [
            ("hcaptcha", Provider::Hcaptcha, "https://api.hcaptcha.com/siteverify"),
            ("recaptcha", Provider::Recaptcha, "https://www.google.com/recaptcha/api/siteverify"),
            (
                "Turnstile",
                Provider::Turnstile,
                "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            ),
        ] {
            let config =
                parse(&format!("provider = \"{name}\"\nsite_key = \"k\"\nsecret = \"s\"")).unwrap();
            assert_eq!(config.provider, Some(provider));
            assert_eq!(config.verify_url(), Some(url));
            assert_eq!(config.timeout_ms, 5_000);
        }
        let err = parse("provider = \"friendlycaptcha\"").unwrap_err();
        assert!(err.contains("unknown captcha provider"), "{err}");
        let err = parse("provider = \"hcaptcha\"\nsitekey = \"k\"").unwrap_err();
        assert!(err.contains("sitekey"), "{err}");
    }

    #[test]
    fn validation_at_load() {
        let config = load(&[
            ("BOURSE_CAPTCHA__PROVIDER", "turnstile"),
            ("BOURSE_CAPTCHA__SITE_KEY", "1x00000000000000000000AA"),
            ("BOURSE_CAPTCHA__SECRET", "1x0000000000000000000000000000000AA"),
        ])
        .unwrap();
        assert_eq!(config.captcha.provider, Some(Provider::Turnstile));
        let debug = format!("{config:?}");
        assert!(!debug.contains("1x0000000000000000000000000000000AA"), "{debug}");

        let err = load(&[("BOURSE_CAPTCHA__PROVIDER", "hcaptcha")]).unwrap_err();
        assert!(err.contains("captcha.site_key must be set"), "{err}");
        let err = load(&[
            ("BOURSE_CAPTCHA__PROVIDER", "recaptcha"),
            ("BOURSE_CAPTCHA__SITE_KEY", "k"),
            ("BOURSE_CAPTCHA__SECRET", " "),
        ])
        .unwrap_err();
        assert!(err.contains("captcha.secret must be set"), "{err}");
        let err = load(&[
            ("BOURSE_CAPTCHA__PROVIDER", "recaptcha"),
            ("BOURSE_CAPTCHA__SITE_KEY", "k"),
            ("BOURSE_CAPTCHA__SECRET", "s"),
            ("BOURSE_CAPTCHA__VERIFY_URL", "ftp://x"),
        ])
        .unwrap_err();
        assert!(err.contains("captcha.verify_url"), "{err}");
        let err = load(&[
            ("BOURSE_CAPTCHA__PROVIDER", "recaptcha"),
            ("BOURSE_CAPTCHA__SITE_KEY", "k"),
            ("BOURSE_CAPTCHA__SECRET", "s"),
            ("BOURSE_CAPTCHA__TIMEOUT_MS", "0"),
        ])
        .unwrap_err();
        assert!(err.contains("captcha.timeout_ms"), "{err}");
        // Keys and a secret without a provider: off, and fine.
        let config = load(&[("BOURSE_CAPTCHA__SITE_KEY", "k")]).unwrap();
        assert!(!config.captcha.enabled());
    }

    #[test]
    fn widgets() {
        let w = on(Provider::Hcaptcha).widget().unwrap();
        assert_eq!(
            w,
            Widget {
                script_url: "https://js.hcaptcha.com/1/api.js",
                class: "h-captcha",
                site_key: "site".into(),
                response_field: "h-captcha-response",
            }
        );
        let w = on(Provider::Recaptcha).widget().unwrap();
        assert_eq!(
            (w.script_url, w.class, w.response_field),
            ("https://www.google.com/recaptcha/api.js", "g-recaptcha", "g-recaptcha-response")
        );
        let w = on(Provider::Turnstile).widget().unwrap();
        assert_eq!(
            (w.script_url, w.class, w.response_field),
            (
                "https://challenges.cloudflare.com/turnstile/v0/api.js",
                "cf-turnstile",
                "cf-turnstile-response"
            )
        );
    }

    /// The sources of `directive` in `policy`.
    fn directive<'a>(policy: &'a str, directive: &str) -> Vec<&'a str> {
        let found: Vec<Vec<&str>> = policy
            .split(';')
            .map(|d| d.split_whitespace().collect::<Vec<_>>())
            .filter(|d| d.first() == Some(&directive))
            .collect();
        assert_eq!(found.len(), 1, "{directive} once in {policy}");
        found[0][1..].to_vec()
    }

    #[test]
    fn csp() {
        let base = crate::web::CONTENT_SECURITY_POLICY;
        assert_eq!(content_security_policy(&CaptchaConfig::default()), base);

        let policy = content_security_policy(&on(Provider::Hcaptcha));
        for name in ["script-src", "frame-src", "style-src", "connect-src"] {
            let sources = directive(&policy, name);
            assert!(sources.contains(&"'self'"), "{policy}");
            assert!(sources.contains(&"https://hcaptcha.com"), "{policy}");
            assert!(sources.contains(&"https://*.hcaptcha.com"), "{policy}");
        }
        assert_eq!(directive(&policy, "default-src"), ["'self'"]);
        assert_eq!(directive(&policy, "img-src"), directive(base, "img-src"));
        assert_eq!(directive(&policy, "frame-ancestors"), ["'none'"]);
        assert_eq!(directive(&policy, "object-src"), ["'none'"]);

        let policy = content_security_policy(&on(Provider::Recaptcha));
        for name in ["script-src", "frame-src"] {
            assert_eq!(
                directive(&policy, name),
                ["'self'", "https://www.google.com", "https://www.gstatic.com"],
                "{policy}"
            );
        }
        assert_eq!(directive(&policy, "style-src"), directive(base, "style-src"));
        assert_eq!(directive(&policy, "connect-src"), directive(base, "connect-src"));

        let policy = content_security_policy(&on(Provider::Turnstile));
        for name in ["script-src", "frame-src"] {
            assert_eq!(
                directive(&policy, name),
                ["'self'", "https://challenges.cloudflare.com"],
                "{policy}"
            );
        }
        assert_eq!(
            on(Provider::Turnstile).csp_sources(),
            Some("https://challenges.cloudflare.com")
        );
        // A valid header value.
        assert!(axum::http::HeaderValue::from_str(&policy).is_ok());
    }

    #[test]
    fn csp_extends_existing_frame_src() {
        let policy = extend_policy(
            "default-src 'none'; frame-src https://a.example; script-src 'self'",
            &on(Provider::Turnstile),
        );
        assert_eq!(
            policy,
            "default-src 'none'; frame-src https://a.example https://challenges.cloudflare.com; \
             script-src 'self' https://challenges.cloudflare.com"
        );
    }

    #[tokio::test]
    async fn off_or_missing_tokens_ask_nobody() {
        assert!(check(&CaptchaConfig::default(), None, "1.2.3.4").await.is_ok());
        // Nothing listens at this URL: an attempt to verify would be captcha_unavailable.
        let config = CaptchaConfig {
            verify_url: Some("http://127.0.0.1:1/siteverify".into()),
            ..on(Provider::Hcaptcha)
        };
        let long = "x".repeat(RESPONSE_BYTES_MAX + 1);
        for response in [None, Some(""), Some("   "), Some(long.as_str())] {
            let err = check(&config, response, "1.2.3.4").await.unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "captcha_required"));
            assert_eq!(err.message, "complete the CAPTCHA");
        }
        let err = check(&config, Some("token"), "1.2.3.4").await.unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::SERVICE_UNAVAILABLE, "captcha_unavailable")
        );
    }
}
