//! `bourse status [--url URL]...`: asks a running exchange how it is (`/api/v1/health` and
//! `/ready`) and prints one line per part — engine, read models, database, WebSocket, each coin
//! node and wallet, readiness, backups — marked OK, WARN or FAIL (in colour on a terminal).
//! In a split deployment each further `--url` names another process's listener with `/ready`
//! (the engine's, the wallet's, the worker's, the admin app's): one line each, with its roles.
//! Exits 0 when nothing fails, 1 when something does, 2 when the exchange does not answer.

use crate::serve::{ServeArgs, load_config};
use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::Value;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The exchange's URL, e.g. http://127.0.0.1:8080 (default: its `listen` address from the
    /// configuration). Repeat it for the other processes of a split deployment (their
    /// `[admin] listen`, e.g. http://127.0.0.1:9101): the first is the gateway's.
    #[arg(long)]
    pub url: Vec<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// How long each request may take.
const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    Ok,
    Warn,
    Fail,
}

/// `GET path` on `authority` (plain HTTP): the status code and the JSON body.
async fn get(authority: &str, path: &str) -> Result<(u16, Value)> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .uri(path)
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    match tokio::time::timeout(WAIT, exchange).await {
        Ok(result) => result,
        Err(_) => bail!("no answer within {} s", WAIT.as_secs()),
    }
}

/// `v[key]`, or null.
fn at<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// The lines to print: (mark, part, what it says).
fn lines(health: &Value, ready: &Value, ready_ok: bool) -> Vec<(Mark, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let mut out = Vec::new();
    let running = at(health, "engine_running").as_bool().unwrap_or(false);
    out.push((
        if running { Mark::Ok } else { Mark::Fail },
        "engine".to_string(),
        if running {
            format!("running, sequence {}", number(at(health, "engine_seq")))
        } else {
            "stopped".into()
        },
    ));
    let lag = number(at(health, "projector_lag"));
    out.push((
        if ready_ok || lag == 0 { Mark::Ok } else { Mark::Warn },
        "read models".into(),
        format!("{lag} command(s) behind the engine"),
    ));
    let database = text(at(health, "database"));
    out.push((
        if database == "ok" { Mark::Ok } else { Mark::Fail },
        "database".into(),
        format!("{database} ({})", text(at(health, "database_backend"))),
    ));
    out.push((
        Mark::Ok,
        "websocket".into(),
        format!("{} client(s)", number(at(health, "websocket_clients"))),
    ));
    for node in at(health, "nodes").as_array().into_iter().flatten() {
        let state = text(at(node, "state"));
        let mut mark = match state.as_str() {
            "normal" => Mark::Ok,
            "delayed" | "syncing" => Mark::Warn,
            _ => Mark::Fail,
        };
        let mut said = if at(node, "reachable").as_bool().unwrap_or(false) {
            format!(
                "{state}, {} blocks, last {} s ago, hot wallet {}",
                number(at(node, "blocks")),
                at(node, "last_block_age_s").as_i64().unwrap_or(0),
                text(at(node, "hot_wallet_balance"))
            )
        } else {
            format!("unreachable: {}", text(at(node, "error")))
        };
        if at(node, "withdrawals_paused").as_bool().unwrap_or(false) {
            mark = Mark::Fail;
            said.push_str(&format!("; withdrawals paused, short {}", text(at(node, "shortfall"))));
        }
        out.push((mark, format!("node {}", text(at(node, "asset"))), said));
    }
    let problems: Vec<String> = at(ready, "problems")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    out.push((
        if ready_ok { Mark::Ok } else { Mark::Fail },
        "ready".into(),
        if ready_ok { "yes".into() } else { format!("no: {}", problems.join("; ")) },
    ));
    out.push(backup_line(at(health, "backup"), bourse_server::now_ms()));
    out
}

/// The last backup: missing is a warning (a new exchange), failed or overdue is a failure.
fn backup_line(backup: &Value, now_ms: i64) -> (Mark, String, String) {
    let scheduled = at(backup, "scheduled").as_bool().unwrap_or(false);
    let interval_s = at(backup, "interval_s").as_i64().unwrap_or(86_400).max(60);
    let failed = at(backup, "last_attempt_failed").as_bool().unwrap_or(false);
    let schedule = if scheduled {
        format!("every {}", human_age(interval_s))
    } else {
        "not scheduled".to_string()
    };
    let Some(last_ms) = at(backup, "last_success_ms").as_i64() else {
        let mark = if failed { Mark::Fail } else { Mark::Warn };
        let said =
            if failed { "none has succeeded; the last attempt failed" } else { "none recorded" };
        return (mark, "backups".into(), format!("{said} ({schedule})"));
    };
    let age_s = (now_ms - last_ms).max(0) / 1000;
    let overdue = age_s > interval_s.max(86_400) + 3_600;
    let mark = if failed || overdue { Mark::Fail } else { Mark::Ok };
    let mut said = format!(
        "last {} (seq {}), {} ago, {schedule}",
        at(backup, "last_name").as_str().unwrap_or_default(),
        at(backup, "last_seq").as_u64().unwrap_or(0),
        human_age(age_s)
    );
    if failed {
        said.push_str("; the last attempt failed (see the log)");
    } else if overdue {
        said.push_str("; overdue");
    }
    (mark, "backups".into(), said)
}

fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} days", s / 86_400),
    }
}

/// `host:port` of an `http://` URL.
fn authority_of(url: &str) -> Result<String> {
    Ok(url
        .strip_prefix("http://")
        .context(
            "the URL must start with http:// (ask the exchange's own listener, not a TLS proxy)",
        )?
        .trim_end_matches('/')
        .to_string())
}

/// Another process of a split deployment, by its `/ready`.
fn process_line(url: &str, answer: Result<(u16, Value)>) -> (Mark, String, String) {
    match answer {
        Ok((status, ready)) => {
            let roles = at(&ready, "roles").as_str().unwrap_or("?").to_string();
            let problems: Vec<&str> = at(&ready, "problems")
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if status == 200 {
                (Mark::Ok, "process".into(), format!("{roles} at {url}: ready"))
            } else {
                let why = if problems.is_empty() {
                    format!("answers {status}")
                } else {
                    problems.join("; ")
                };
                (Mark::Fail, "process".into(), format!("{roles} at {url}: not ready: {why}"))
            }
        }
        Err(e) => (Mark::Fail, "process".into(), format!("{url} does not answer: {e:#}")),
    }
}

pub fn run(args: &StatusArgs) -> Result<ExitCode> {
    let (url, others) = match args.url.split_first() {
        Some((url, others)) => (url.clone(), others),
        None => (format!("http://{}", load_config(&args.serve)?.listen), &[][..]),
    };
    let authority = authority_of(&url)?;
    let others: Vec<(String, String)> =
        others.iter().map(|u| Ok((u.clone(), authority_of(u)?))).collect::<Result<_>>()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answers = rt.block_on(async {
        let health = get(&authority, "/api/v1/health").await?;
        let ready = get(&authority, "/ready").await?;
        Ok::<_, anyhow::Error>((health, ready))
    });
    let ((_, health), (ready_status, ready)) = match answers {
        Ok(answers) => answers,
        Err(e) => {
            eprintln!("FAIL  the exchange at {url} does not answer: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let colour = std::io::stdout().is_terminal();
    let mut lines = lines(&health, &ready, ready_status == 200);
    for (url, authority) in &others {
        let answer = rt.block_on(get(authority, "/ready"));
        lines.push(process_line(url, answer));
    }
    for (mark, part, said) in &lines {
        let (word, code) = match mark {
            Mark::Ok => ("OK  ", "32"),
            Mark::Warn => ("WARN", "33"),
            Mark::Fail => ("FAIL", "31"),
        };
        if colour {
            println!("\x1b[{code}m{word}\x1b[0m  {part:<12} {said}");
        } else {
            println!("{word}  {part:<12} {said}");
        }
    }
    let worst = lines.iter().map(|(m, _, _)| *m).max().unwrap_or(Mark::Ok);
    Ok(if worst == Mark::Fail { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
