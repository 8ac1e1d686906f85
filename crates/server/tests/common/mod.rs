//! The test kit: starts the real server on 127.0.0.1 with a free port, on SQLite or on a fresh
//! PostgreSQL database, and talks to it over real HTTP and WebSocket.
#![allow(dead_code)]

use bourse_server::Server;
use bourse_server::config::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct App {
    pub server: Option<Server>,
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub secret: String,
    /// Extra `BOURSE_*` settings for this server.
    pub extra_env: Vec<(String, String)>,
}

impl App {
    pub async fn spawn(backend: Backend) -> App {
        App::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> App {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => bourse_store::testing::fresh_sqlite_url(data_dir.path()),
            Backend::Postgres => bourse_store::testing::fresh_postgres_url().await,
        };
        let secret = bourse_server::crypto::random_token().unwrap();
        let extra_env = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut app =
            App { server: None, url: String::new(), data_dir, database_url, secret, extra_env };
        app.start().await;
        app
    }

    /// The engine's process of a split deployment, with `roles` (`engine` and any others): its
    /// link on a port of its own, kept across restarts.
    pub async fn spawn_engine(backend: Backend, roles: &str, extra_env: &[(&str, &str)]) -> App {
        let mut env = vec![("BOURSE_ROLES", roles), ("BOURSE_LINK__LISTEN", "127.0.0.1:0")];
        env.extend_from_slice(extra_env);
        let mut engine = App::spawn_with(backend, &env).await;
        let link = engine.link();
        engine.extra_env.retain(|(k, _)| k != "BOURSE_LINK__LISTEN");
        engine.extra_env.push(("BOURSE_LINK__LISTEN".into(), link));
        engine
    }

    /// The engine link's address of this (engine's) process.
    pub fn link(&self) -> String {
        self.server().state.config.link.listen.unwrap().to_string()
    }

    /// Another process of `engine`'s split deployment, running `roles` (not the engine): its
    /// own data directory, the engine's database, secret and link.
    pub async fn join(engine: &App, roles: &str, extra_env: &[(&str, &str)]) -> App {
        let mut env: Vec<(String, String)> = vec![
            ("BOURSE_ROLES".into(), roles.into()),
            ("BOURSE_LINK__CONNECT".into(), engine.link()),
            ("BOURSE_LINK__CONNECT_WAIT_S".into(), "10".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut app = App {
            server: None,
            url: String::new(),
            data_dir: tempfile::tempdir().unwrap(),
            database_url: engine.database_url.clone(),
            secret: engine.secret.clone(),
            extra_env: env,
        };
        app.start().await;
        app
    }

    pub fn config(&self) -> Config {
        let env = vec![
            ("BOURSE_SECRET_KEY".to_string(), self.secret.clone()),
            ("BOURSE_DATA_DIR".to_string(), self.data_dir.path().display().to_string()),
            ("BOURSE_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("BOURSE_ADMIN__LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("BOURSE_DATABASE_URL".to_string(), self.database_url.clone()),
            // Every test signs up and calls from 127.0.0.1: the per-address limits are tested
            // on their own (tests/throttle.rs), each test setting the limits it checks.
            ("BOURSE_LIMITS__SIGNUPS_PER_IP_HOUR".to_string(), "100000".to_string()),
            ("BOURSE_LIMITS__API_REQUESTS_PER_S".to_string(), "100000".to_string()),
            ("BOURSE_LIMITS__API_BURST".to_string(), "100000".to_string()),
            ("BOURSE_LIMITS__LOGIN_FAILURES_PER_IP".to_string(), "100000".to_string()),
        ];
        Config::load(None, env.into_iter().chain(self.extra_env.iter().cloned())).unwrap()
    }

    pub async fn start(&mut self) {
        let server = Server::start(self.config()).await.unwrap();
        self.url = server.url();
        self.server = Some(server);
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn ws_url(&self) -> String {
        self.url.replace("http://", "ws://") + "/ws"
    }

    /// The newest mail to `to` in the server's mailbox, once it contains `needle` (mail goes
    /// out through the outbox: it lands a moment after the request that queued it).
    pub async fn mail_with(&self, to: &str, needle: &str) -> String {
        let dir: PathBuf = self.data_dir.path().join("mailbox");
        for _ in 0..200 {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            files.sort();
            let newest = files
                .iter()
                .rev()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .find(|text| text.starts_with(&format!("To: {to}\n")));
            if let Some(mail) = newest.filter(|m| m.contains(needle)) {
                return mail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no mail to {to} with {needle:?}")
    }
}

/// Credits `amount` of `asset` to `user` through the engine (what the wallet will do), with a
/// fresh external key each time.
pub async fn deposit(app: &App, user: u64, asset: &str, amount: &str) {
    let (id, scale) = {
        let m = app.server().state.mirror.read().unwrap();
        let a = m.asset_by_symbol(asset).unwrap();
        (a.id, a.scale)
    };
    let amount = bourse_core::decimal::parse_units(amount, scale).unwrap();
    let key = bourse_core::ExternalKey::new(&format!(
        "test:{user}:{asset}:{amount}:{}",
        DEPOSITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
    .unwrap();
    let out = app
        .server()
        .engine()
        .execute(bourse_core::Command::Deposit {
            user: bourse_core::UserId(user),
            asset: id,
            amount,
            key,
        })
        .await
        .unwrap();
    assert!(
        out.events.iter().any(|e| matches!(e, bourse_core::Event::DepositCredited { .. })),
        "{:?}",
        out.events
    );
}

static DEPOSITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A browser-like client (cookies) and, once created, an API key.
pub struct User {
    pub http: reqwest::Client,
    pub base: String,
    pub email: String,
    pub id: u64,
    pub key: Option<(String, String)>,
}

pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().unwrap()
}

/// The password of every user `register` makes.
pub const PASSWORD: &str = "a long enough passphrase";

/// Signs up, follows the verification link from the mailbox, logs in.
pub async fn register(app: &App, email: &str) -> User {
    register_mailed(app, app, email).await
}

/// [`register`] on `app`, whose mail `mailer` sends (the worker's process of a split
/// deployment: the mailbox is in its data directory).
pub async fn register_mailed(app: &App, mailer: &App, email: &str) -> User {
    let http = cookie_client();
    let password = PASSWORD;
    let r = http
        .post(format!("{}/api/v1/auth/signup", app.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let mail = mailer.mail_with(email, "/verify?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let r = http
        .post(format!("{}/api/v1/auth/verify", app.url))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    User {
        http,
        base: app.url.clone(),
        email: email.into(),
        id: body["user_id"].as_u64().unwrap(),
        key: None,
    }
}

impl User {
    pub async fn create_key(&mut self, scopes: &[&str]) -> (String, String) {
        let r = self
            .http
            .post(format!("{}/api/v1/api-keys", self.base))
            .json(&json!({"label": "test", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        let key = (
            body["api_key"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        );
        self.key = Some(key.clone());
        key
    }

    /// A request signed with the user's API key (no cookies): returns (status, body).
    pub async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (key, secret) = self.key.clone().unwrap();
        signed_request(&self.base, &key, &secret, method, path, query, body).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

pub async fn signed_request(
    base: &str,
    key: &str,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let ts = bourse_server::now_ms();
    let query = if query.is_empty() {
        format!("timestamp={ts}")
    } else {
        format!("{query}&timestamp={ts}")
    };
    let body_text = body.map(|b| b.to_string()).unwrap_or_default();
    let signature = bourse_server::crypto::hmac_hex(
        secret.as_bytes(),
        format!("{query}{body_text}").as_bytes(),
    );
    let url = format!("{base}{path}?{query}&signature={signature}");
    let mut req = reqwest::Client::new().request(method, url).header("X-API-KEY", key);
    if !body_text.is_empty() {
        req = req.header("content-type", "application/json").body(body_text);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(app: &App) -> Ws {
    tokio_tungstenite::connect_async(app.ws_url()).await.unwrap().0
}

pub async fn ws_send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// The next JSON text message (skipping pings), or panics after 10 s.
pub async fn ws_next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("ws timeout")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Waits for the next message on `channel`.
pub async fn ws_next_on(ws: &mut Ws, channel: &str) -> Value {
    loop {
        let v = ws_next(ws).await;
        if v["channel"] == channel {
            return v;
        }
    }
}

/// The body of a GET as text.
pub async fn text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
