//! The shipped monitoring (`deploy/prometheus`, `deploy/grafana`): promtool accepts the
//! Prometheus config and the alert rules without a warning, the rules' unit tests pass and cover
//! every alert both firing and quiet, the Grafana dashboard is importable (unique panel ids,
//! every panel queries something, every query is valid PromQL), and every metric any of them
//! names is one bourse exposes (read from `crates/server/src/metrics.rs`).
//!
//! promtool comes from Debian's `prometheus` package (scripts/test installs it); the tests fail,
//! never skip, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::repo;

fn prometheus_dir() -> PathBuf {
    repo().join("deploy/prometheus")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `promtool ARGS` in `dir`: whether it succeeded, and everything it said.
fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// promtool's answer when all is well: only `Checking FILE` and `SUCCESS: ...` lines, so any
/// warning or lint finding fails the test.
fn assert_clean(ok: bool, said: &str) {
    assert!(ok, "{said}");
    for line in said.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(line.starts_with("Checking ") || line.starts_with("SUCCESS: "), "{said}");
    }
}

/// Every series name bourse exposes: the `bourse_*` string literals of `metrics.rs`, plus
/// `_bucket`, `_sum` and `_count` for the ones declared as histograms (the literal right after
/// the name is `"histogram"`).
fn exposed() -> BTreeSet<String> {
    let source = read(&repo().join("crates/server/src/metrics.rs"));
    let mut names = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for (at, _) in source.match_indices("\"bourse_") {
        let rest = &source[at + 1..];
        let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        let name = &rest[..end.unwrap_or(rest.len())];
        names.insert(name.to_string());
        // The rest of this literal (it may hold escaped quotes), then the next token.
        let mut escaped = false;
        let close = rest.char_indices().find(|&(_, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes
        });
        if let Some((close, _)) = close {
            let next =
                rest[close + 1..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            if next.starts_with("\"histogram\"") {
                histograms.insert(name.to_string());
            }
        }
    }
    assert!(
        histograms.contains("bourse_http_request_duration_seconds")
            && histograms.contains("bourse_engine_command_duration_seconds"),
        "the histograms are no longer found in metrics.rs: {histograms:?}"
    );
    for h in &histograms {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{h}{suffix}"));
        }
    }
    names
}

/// Every `bourse_*` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("bourse_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at..];
        let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        found.insert(rest[..end.unwrap_or(rest.len())].to_string());
    }
    found
}

fn assert_exposed(file: &str, text: &str, exposed: &BTreeSet<String>) {
    let unknown: Vec<String> = metric_names(text).difference(exposed).cloned().collect();
    assert!(unknown.is_empty(), "{file} names metrics bourse does not expose: {unknown:?}");
}

/// The alert names of the rules file, in order.
fn alerts(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn the_prometheus_config_checks_without_a_warning() {
    let config = read(&prometheus_dir().join("prometheus.yml"));
    assert!(config.contains("job_name: bourse"), "{config}");
    assert!(config.contains("127.0.0.1:8081"), "the admin listener's default: {config}");
    assert!(config.contains("- bourse-alerts.yml"), "{config}");
    let (ok, said) = promtool(
        &prometheus_dir(),
        &["check", "config", "--lint=all", "--lint-fatal", "prometheus.yml"],
    );
    assert_clean(ok, &said);
    assert!(said.contains("1 rule files found"), "{said}");
}

#[test]
fn the_alert_rules_check_and_their_unit_tests_pass() {
    let (ok, said) = promtool(
        &prometheus_dir(),
        &["check", "rules", "--lint=all", "--lint-fatal", "bourse-alerts.yml"],
    );
    assert_clean(ok, &said);
    let (ok, said) = promtool(&prometheus_dir(), &["test", "rules", "bourse-alerts.test.yml"]);
    assert!(ok && said.contains("SUCCESS"), "{said}");
}

#[test]
fn every_alert_is_there_with_a_severity_and_a_runbook_and_is_tested_both_ways() {
    let rules = read(&prometheus_dir().join("bourse-alerts.yml"));
    let names = alerts(&rules);
    for wanted in [
        "BourseDown",
        "BourseEngineStopped",
        "BourseProjectorLag",
        "BourseDatabaseDown",
        "BourseReconciliationShortfall",
        "BourseNodeDown",
        "BourseNodeStalled",
        "BourseBackupTooOld",
        "BourseMailOutboxBacklog",
        "BourseSlowConsumers",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} is missing from {names:?}");
    }
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "an alert name repeats: {names:?}");
    // Each rule's text: from its `- alert:` line to the next.
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap_or_default().trim();
        let severity = block.contains("severity: critical") || block.contains("severity: warning");
        assert!(severity, "{name} has no severity label");
        assert!(block.contains("summary:") && block.contains("description:"), "{name}");
        assert!(block.contains('`'), "{name}'s description names no command to run");
    }
    let tests = read(&prometheus_dir().join("bourse-alerts.test.yml"));
    for name in &names {
        let case = format!("alertname: {name}\n");
        let fires = tests
            .match_indices(&case)
            .any(|(at, _)| tests[at + case.len()..].trim_start().starts_with("exp_alerts:\n"));
        let quiet = tests
            .match_indices(&case)
            .any(|(at, _)| tests[at + case.len()..].trim_start().starts_with("exp_alerts: []"));
        assert!(fires && quiet, "{name} needs a test where it fires and one where it stays quiet");
    }
}

#[test]
fn the_grafana_dashboard_is_importable_and_queries_valid_promql() {
    let path = repo().join("deploy/grafana/bourse.json");
    let dashboard: Value = serde_json::from_str(&read(&path)).expect("deploy/grafana/bourse.json");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36, "schemaVersion");
    assert_eq!(dashboard["uid"], "bourse");
    assert!(dashboard["id"].is_null(), "an exported dashboard has no database id");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    // Panels, and those nested in collapsed rows.
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        let id = panel["id"].as_u64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "panel id {id} ({title}) is not unique");
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{title}: no gridPos");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no target");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "{title}: a target without a query");
            exprs.push((id, target["refId"].as_str().unwrap_or("A").to_string(), expr.to_string()));
        }
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Engine commands/s",
        "Command latency",
        "Journal fsync",
        "Batch size",
        "Projector lag",
        "Orders per market",
        "Trades per market",
        "HTTP requests by status",
        "HTTP p99 latency by route",
        "WebSocket clients",
        "Slow consumers dropped",
        "Mail outbox depth",
        "Node up",
        "Node blocks",
        "Last block age",
        "Hot wallet and owed",
        "Shortfall",
        "Withdrawals paused",
        "Last backup age",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted:?} in {titles:?}");
    }
    // promtool parses each query as a recording rule, with Grafana's variables filled in.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (id, ref_id, expr) in &exprs {
        let expr = expr.replace("$__rate_interval", "1m").replace("$instance", ".+");
        assert!(!expr.contains('$'), "an unknown Grafana variable in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard:panel_{id}:{ref_id}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    let (ok, said) = promtool(dir.path(), &["check", "rules", "dashboard.yml"]);
    assert_clean(ok, &said);
    assert!(said.contains(&format!("SUCCESS: {} rules found", exprs.len())), "{said}");
}

#[test]
fn every_metric_the_rules_their_tests_and_the_dashboard_name_is_exposed() {
    let exposed = exposed();
    let mut used = BTreeSet::new();
    for file in [
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/bourse-alerts.yml",
        "deploy/prometheus/bourse-alerts.test.yml",
        "deploy/grafana/bourse.json",
    ] {
        let text = read(&repo().join(file));
        assert_exposed(file, &text, &exposed);
        used.extend(metric_names(&text));
    }
    // The scan finds what it should: the names the brief of each part relies on.
    for name in [
        "bourse_engine_running",
        "bourse_projector_lag",
        "bourse_wallet_shortfall",
        "bourse_node_last_block_age_seconds",
        "bourse_backup_last_success_timestamp_seconds",
        "bourse_engine_commands_total",
        "bourse_journal_fsync_seconds_bucket",
        "bourse_engine_batch_commands_bucket",
        "bourse_http_request_duration_seconds_bucket",
    ] {
        assert!(used.contains(name), "{name} is not used");
    }
    // And it would catch a typo.
    assert!(!exposed.contains("bourse_engine_runing"));
    assert!(!exposed.contains("bourse_ws_clients_bucket"), "only histograms have buckets");
}
