//! The server's configuration: a TOML file plus `BOURSE_*` environment overrides
//! (`BOURSE_LISTEN`, `BOURSE_DATA_DIR`, `BOURSE_DATABASE_URL`, `BOURSE_SECRET_KEY`, ... and
//! `BOURSE_LIMITS__BODY_BYTES_MAX` for nested keys). Secrets are [`Secret`]s: they never appear
//! in `Debug` output or logs.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use bourse_core::Secret;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens. Loopback unless configured otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Journal, snapshots and (by default) the SQLite database.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default `sqlite://<data_dir>/bourse.db`.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// At least 32 random bytes, hex; the keys that seal API secrets are derived from it.
    pub secret_key: Secret,
    /// The URL users reach the site at (links in e-mails; `https://` makes cookies `Secure`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Override for the cookies' `Secure` flag (default: `public_url` is https).
    #[serde(default)]
    pub cookie_secure: Option<bool>,
    /// The reverse proxies in front of the server (addresses or CIDR ranges, a list or a
    /// comma-separated string): a request from one of them is from the address it names in
    /// `X-Forwarded-For`, for rate limits, lockouts, API-key allowlists and the security log.
    /// Empty (the default): the header is ignored, so no client can pick its own address.
    #[serde(default, deserialize_with = "address_list")]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub engine: EngineSettings,
    /// Coin wallets by asset symbol (`[wallets.LTC]`): the node each asset's deposits and
    /// withdrawals go through. An asset without one has no deposits or withdrawals.
    #[serde(default)]
    pub wallets: std::collections::BTreeMap<String, bourse_wallet::chain::WalletConfig>,
    /// Outgoing mail (`[mail]`): SMTP, or the local mailbox without it.
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    /// Operator alerts to a webhook (`[alerts]`), off by default.
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// A CAPTCHA on signup, login and password reset (`[captcha]`: `provider` = `hcaptcha`,
    /// `recaptcha` or `turnstile`, `site_key`, `secret`, optional `verify_url`, `timeout_ms`
    /// 5000), verified server-side with the provider; off by default.
    #[serde(default)]
    pub captcha: crate::captcha::CaptchaConfig,
    /// Withdrawal safety (`[withdrawals]`): e-mail confirmation, daily limits, operator review.
    #[serde(default)]
    pub withdrawals: crate::withdrawal_safety::WithdrawalSafety,
    /// The admin app (`[admin]`): its own listener, IP allowlist and session rules.
    #[serde(default)]
    pub admin: crate::admin::AdminConfig,
    /// Backups (`[backup]`): the scheduled job's destination, interval and retention.
    #[serde(default)]
    pub backup: crate::backups::BackupConfig,
    /// The roles this process runs: `all` (the default), `engine`, or
    /// any other combination of roles (a split deployment; see `roles.rs`).
    #[serde(default)]
    pub roles: crate::roles::Roles,
    /// The engine link between the processes of a split deployment (`[link]`).
    #[serde(default)]
    pub link: crate::roles::LinkSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub body_bytes_max: usize,
    pub request_timeout_ms: u64,
    /// Idle session lifetime (sliding).
    pub session_idle_hours: u64,
    /// Default and largest receive window of signed requests.
    pub recv_window_default_ms: u64,
    pub recv_window_max_ms: u64,
    pub ws_connections_max: usize,
    pub ws_subscriptions_max: usize,
    /// Messages queued for one WebSocket client before it is disconnected as too slow.
    pub ws_queue_messages: usize,
    pub ws_message_bytes_max: usize,
    /// Concurrent password hashes (argon2id uses ~19 MiB each).
    pub password_hashes_parallel: usize,
    /// Wrong passwords or codes for one account (whoever tries) before it is locked out for
    /// `lockout_s`, twice as long at each further failure, up to `lockout_max_s`.
    pub login_failures_per_account: u32,
    /// The same, per client IP address (whatever accounts it tries).
    pub login_failures_per_ip: u32,
    pub lockout_s: u64,
    pub lockout_max_s: u64,
    /// Signups and password-reset requests per client IP address per hour.
    pub signups_per_ip_hour: u64,
    /// API requests per client IP address per second, and the burst allowed at once; over it
    /// the answer is `429 too_many_requests` with `Retry-After`.
    pub api_requests_per_s: u64,
    pub api_burst: u64,
    /// `/ready` answers 503 while the read models are more than this many engine commands
    /// behind the engine.
    pub ready_lag_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 64 * 1024,
            request_timeout_ms: 10_000,
            session_idle_hours: 24,
            recv_window_default_ms: 5_000,
            recv_window_max_ms: 60_000,
            ws_connections_max: 10_000,
            ws_subscriptions_max: 64,
            ws_queue_messages: 1_024,
            ws_message_bytes_max: 16 * 1024,
            password_hashes_parallel: 2,
            login_failures_per_account: 5,
            login_failures_per_ip: 20,
            lockout_s: 60,
            lockout_max_s: 3_600,
            signups_per_ip_hour: 20,
            api_requests_per_s: 50,
            api_burst: 200,
            ready_lag_max: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    pub snapshot_every: u64,
    pub queue_capacity: usize,
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        EngineSettings { snapshot_every: 1_000_000, queue_capacity: 65_536 }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Invalid { path: Option<PathBuf>, message: String },
}

impl Config {
    /// Reads `file` (if given), applies `BOURSE_*` variables from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Invalid {
                    path: Some(path.to_path_buf()),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env);
        let config: Config =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
                ConfigError::Invalid { path: file.map(Path::to_path_buf), message: e.to_string() }
            })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: file.map(Path::to_path_buf),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let key = hex::decode(self.secret_key.expose()).map_err(|_| {
            "secret_key must be hex (run `bourse init` for a fresh one)".to_string()
        })?;
        if key.len() < 32 {
            return Err("secret_key must be at least 32 bytes (64 hex digits)".into());
        }
        if self.limits.body_bytes_max == 0 || self.limits.ws_queue_messages == 0 {
            return Err("limits must be positive".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("public_url must start with http:// or https://".into());
        }
        self.captcha.validate()?;
        self.admin.validate()?;
        self.backup.validate()?;
        self.link.validate(self.roles)?;
        if let Some(bad) =
            self.trusted_proxies.iter().find(|p| crate::auth::parse_cidr(p).is_none())
        {
            return Err(format!("trusted_proxies: {bad:?} is not an address or CIDR range"));
        }
        Ok(())
    }

    pub fn database_url(&self) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => Secret::new(format!("sqlite://{}", self.data_dir.join("bourse.db").display())),
        }
    }

    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure.unwrap_or_else(|| {
            self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        })
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// A config file with a freshly generated secret key (for `bourse init`).
    pub fn template(data_dir: &Path) -> Result<String, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(format!(
            "# bourse configuration. Every key can be overridden by BOURSE_<KEY> (nested:\n\
             # BOURSE_LIMITS__BODY_BYTES_MAX). Keep this file private: it holds secrets.\n\
             listen = \"127.0.0.1:8080\"\n\
             data_dir = {data_dir:?}\n\
             # database_url = \"postgres://bourse@127.0.0.1/bourse\"  # default: SQLite in data_dir\n\
             # public_url = \"https://exchange.example.com\"\n\
             secret_key = \"{}\"\n",
            hex::encode(key),
            data_dir = data_dir.display().to_string(),
        ))
    }
}

/// A list of addresses, or one string of them separated by commas or spaces (as an environment
/// variable gives it).
pub(crate) fn address_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(match List::deserialize(d)? {
        List::One(s) => s.split([',', ' ']).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        List::Many(v) => v,
    })
}

/// `BOURSE_A__B=v` sets `a.b = v`. Values are parsed as TOML scalars when they parse
/// (numbers, booleans), strings otherwise.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) {
    for (name, value) in env {
        let Some(key) = name.strip_prefix("BOURSE_") else { continue };
        // Variables that are not configuration keys.
        if matches!(key, "LOG" | "LOG_FORMAT" | "CONFIG") || key.starts_with("TEST_") {
            continue;
        }
        let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
        let parsed = match format!("v = {value}").parse::<toml::Table>() {
            Ok(mut t) => match t.remove("v") {
                Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_))) => v,
                _ => toml::Value::String(value),
            },
            Err(_) => toml::Value::String(value),
        };
        set_path(table, &path, parsed);
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn env_overrides_file_values_and_nested_keys() {
        let env = vec![
            ("BOURSE_SECRET_KEY".to_string(), KEY.to_string()),
            ("BOURSE_LISTEN".to_string(), "127.0.0.1:9999".to_string()),
            ("BOURSE_LIMITS__BODY_BYTES_MAX".to_string(), "1000".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.limits.body_bytes_max, 1000);
        assert!(!config.cookie_secure());
    }

    #[test]
    fn secrets_are_redacted_and_bad_keys_refused() {
        let env = vec![("BOURSE_SECRET_KEY".to_string(), KEY.to_string())];
        let config = Config::load(None, env).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("redacted"));
        let short = vec![("BOURSE_SECRET_KEY".to_string(), "abcd".to_string())];
        assert!(Config::load(None, short).is_err());
        let unknown = vec![
            ("BOURSE_SECRET_KEY".to_string(), KEY.to_string()),
            ("BOURSE_NO_SUCH_KEY".to_string(), "1".to_string()),
        ];
        let err = Config::load(None, unknown).unwrap_err().to_string();
        assert!(err.contains("no_such_key"), "{err}");
    }

    #[test]
    fn amounts_are_exact_text_from_env_or_file() {
        let env = |value: &str| {
            vec![
                ("BOURSE_SECRET_KEY".to_string(), KEY.to_string()),
                ("BOURSE_WITHDRAWALS__DAILY_LIMITS__LTC".to_string(), value.to_string()),
            ]
        };
        // A whole number parses as one from the environment: kept as its text.
        let config = Config::load(None, env("100")).unwrap();
        assert_eq!(config.withdrawals.daily_limits.get("ltc").map(String::as_str), Some("100"));
        let config = Config::load(None, env("0.25")).unwrap();
        assert_eq!(config.withdrawals.daily_limits.get("ltc").map(String::as_str), Some("0.25"));
        // A float in a file is refused: amounts are exact.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bourse.toml");
        std::fs::write(
            &path,
            format!("secret_key = \"{KEY}\"\n[withdrawals]\nreview_above = {{ LTC = 0.1 }}\n"),
        )
        .unwrap();
        let err = Config::load(Some(&path), Vec::new()).unwrap_err().to_string();
        assert!(err.contains("decimal string"), "{err}");
    }

    #[test]
    fn template_is_a_valid_config() {
        let text = Config::template(Path::new("/tmp/x")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bourse.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }
}
