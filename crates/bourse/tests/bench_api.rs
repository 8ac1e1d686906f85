//! Smoke test of `bourse bench api`: a short run against an in-process server prints every
//! figure, places orders and delivers trades to the WebSocket clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::process::Command;

#[test]
fn bench_api_prints_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(["bench", "api", "--seconds", "2", "--clients", "8", "--ws-clients", "20", "--json"])
        .env("BOURSE_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench api failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}): {stdout}");
    });
    for key in [
        "orders_per_s",
        "order_p50_ms",
        "order_p99_ms",
        "ws_clients",
        "ws_delivery_p50_ms",
        "ws_delivery_p99_ms",
        "errors",
        "seconds",
    ] {
        assert!(figures.get(key).is_some(), "no {key} in {figures}");
    }
    let number = |key: &str| figures[key].as_f64().unwrap_or_else(|| panic!("{key}: {figures}"));
    assert!(number("orders_per_s") > 0.0, "{figures}");
    assert!(number("order_p50_ms") > 0.0, "{figures}");
    assert!(number("order_p99_ms") >= number("order_p50_ms"), "{figures}");
    assert_eq!(figures["ws_clients"], 20, "{figures}");
    assert_eq!(figures["ws_connect_failures"], 0, "{figures}");
    assert!(figures["ws_clients_with_trades"].as_u64().unwrap() > 0, "{figures}");
    assert!(figures["ws_trades_received"].as_u64().unwrap() > 0, "{figures}");
    assert!(number("ws_delivery_p50_ms") > 0.0, "{figures}");
    assert!(number("ws_delivery_p99_ms") >= number("ws_delivery_p50_ms"), "{figures}");
    assert_eq!(figures["errors"], 0, "{figures}");
}
