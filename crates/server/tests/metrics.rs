//! `/health`, `/ready` and `/metrics` over real HTTP: the metrics page parses with Prometheus's
//! own text parser (`prometheus_client`, installed by scripts/test) and its key series move when
//! orders flow; it is served on the admin listener, so the admin allowlist guards it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, register};
use std::collections::HashMap;

/// `/metrics` as sample name with labels → value text.
async fn scrape(app: &App) -> (String, HashMap<String, String>) {
    let text = reqwest::get(format!("{}/metrics", app.server().admin_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect();
    (text, samples)
}

fn number(samples: &HashMap<String, String>, name: &str) -> u64 {
    samples.get(name).unwrap_or_else(|| panic!("no {name}")).parse().unwrap()
}

/// Parses `text` with Prometheus's Python client; the metric family names it read.
async fn prometheus_families(text: &str) -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfor f in p(sys.stdin.read()):\n    print(f.name)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run python3");
    child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics (scripts/test installs it):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[tokio::test]
async fn health_ready_and_metrics_that_move_with_orders() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let health = reqwest::get(format!("{}/health", app.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/ready", app.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        (body["ready"].as_bool(), body["problems"].as_array().map(Vec::len)),
        (Some(true), Some(0)),
        "{body}"
    );

    let (text, before) = scrape(&app).await;
    let families = prometheus_families(&text).await;
    for family in [
        "bourse_engine_seq",
        "bourse_projector_lag",
        "bourse_ws_clients",
        "bourse_mail_outbox_depth",
        "bourse_orders",
        "bourse_trades",
        "bourse_http_requests",
        "bourse_http_request_duration_seconds",
        "bourse_engine_commands",
        "bourse_engine_batch_commands",
        "bourse_journal_fsync_seconds",
    ] {
        assert!(families.iter().any(|f| f == family), "{family} not in {families:?}");
    }
    let orders = "bourse_orders_total{market=\"BTC-USDT\"}";
    let trades = "bourse_trades_total{market=\"BTC-USDT\"}";
    let (orders_before, trades_before) = (number(&before, orders), number(&before, trades));

    // Two crossing orders through the API.
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    common::deposit(&app, alice.id, "BTC", "1").await;
    common::deposit(&app, bob.id, "USDT", "100000").await;
    alice.create_key(&["read", "trade"]).await;
    bob.create_key(&["read", "trade"]).await;
    for (user, side) in [(&alice, "sell"), (&bob, "buy")] {
        let order = serde_json::json!({"market": "BTC-USDT", "side": side, "type": "limit", "price": "60000", "quantity": "0.1"});
        let (status, body) =
            user.signed(reqwest::Method::POST, "/api/v1/orders", "", Some(order)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (text, after) = scrape(&app).await;
    prometheus_families(&text).await;
    assert_eq!(number(&after, orders), orders_before + 2);
    assert_eq!(number(&after, trades), trades_before + 1);
    assert!(number(&after, "bourse_engine_seq") > number(&before, "bourse_engine_seq"));
    // The engine's own series: at least the two orders, each batch journaled once.
    for (name, at_least) in [
        ("bourse_engine_commands_total", 2),
        ("bourse_engine_batch_commands_sum", 2),
        ("bourse_engine_batch_commands_count", 1),
        ("bourse_journal_fsync_seconds_count", 1),
    ] {
        assert!(number(&after, name) >= number(&before, name) + at_least, "{name}: {text}");
    }
    assert_eq!(
        number(&after, "bourse_engine_commands_total"),
        number(&after, "bourse_engine_batch_commands_sum")
    );
    let batches = number(&after, "bourse_engine_batches_total");
    assert_eq!(number(&after, "bourse_engine_batch_commands_count"), batches);
    assert_eq!(number(&after, "bourse_journal_fsync_seconds_count"), batches);
    assert_eq!(number(&after, "bourse_journal_fsync_seconds_bucket{le=\"+Inf\"}"), batches);
    assert!(number(&after, "bourse_engine_batch_commands_bucket{le=\"4096\"}") <= batches);
    assert!(after.contains_key("bourse_journal_fsync_seconds_bucket{le=\"0.0001\"}"), "{text}");
    assert!(after.contains_key("bourse_journal_fsync_seconds_bucket{le=\"0.00025\"}"), "{text}");
    assert!(after.contains_key("bourse_journal_fsync_seconds_bucket{le=\"1\"}"), "{text}");
    assert!(after.get("bourse_journal_fsync_seconds_sum").is_some_and(|s| s.contains('.')));
    let placed =
        "bourse_http_requests_total{method=\"POST\",route=\"/api/v1/orders\",status=\"201\"}";
    assert_eq!(number(&after, placed), 2, "{text}");
    assert_eq!(
        number(&after, "bourse_engine_command_duration_seconds_count{command=\"place\"}"),
        2
    );
    assert!(text.contains("bourse_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/orders\",status=\"201\",le=\"+Inf\"} 2"), "{text}");

    // Only the admin allowlist reaches it.
    let outside = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = outside.get(format!("{}/metrics", app.server().admin_url())).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
