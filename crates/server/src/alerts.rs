//! Operator alerts to a webhook (`[alerts] webhook_url`, off by default): every alert recorded
//! in the store's `operator_alerts` — a reversed deposit, a wallet short of what users hold, a
//! send a node refused — is posted in order as Slack-compatible JSON `{"text": …}`. The sink's
//! cursor in the store moves after each delivery, so a webhook that is down delays alerts and
//! loses none (an alert may arrive twice if the process dies between the post and the cursor).

use bourse_core::Secret;
use bourse_store::Store;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `[alerts]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A Slack-compatible incoming webhook (`https://hooks.slack.com/services/…`); a secret.
    #[serde(default)]
    pub webhook_url: Option<Secret>,
    /// How often new alerts are looked for (and a failed post tried again).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_interval_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            webhook_url: None,
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// The webhook's name as a sink in the store.
pub const SINK: &str = "webhook";

/// Alerts posted per pass at most.
const BATCH: u32 = 100;

/// Posts one alert (blocking: run on the blocking pool).
fn post(agent: &ureq::Agent, url: &str, text: String) -> Result<(), String> {
    let answer = agent
        .post(url)
        .send_json(serde_json::json!({ "text": text }))
        .map_err(|e| format!("the webhook does not take it: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", answer.status()))
    }
}

/// Posts every alert after the sink's cursor, oldest first; returns how many went out.
async fn deliver(store: &dyn Store, agent: &ureq::Agent, url: &str) -> Result<usize, String> {
    let cursor = store.alert_sink_cursor(SINK).await.map_err(|e| e.to_string())?;
    let mut sent = 0;
    for alert in store.alerts_after(cursor, BATCH).await.map_err(|e| e.to_string())? {
        let text = format!("bourse alert from {}: {}", alert.source, alert.message);
        let (agent, url) = (agent.clone(), url.to_string());
        tokio::task::spawn_blocking(move || post(&agent, &url, text))
            .await
            .map_err(|e| e.to_string())??;
        store.set_alert_sink_cursor(SINK, alert.id).await.map_err(|e| e.to_string())?;
        sent += 1;
    }
    Ok(sent)
}

/// Posts alerts to the webhook every `interval_ms` until `stop`; nothing without a webhook.
pub async fn run_webhook(
    store: Arc<dyn Store>,
    config: AlertsConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(url) = config.webhook_url else { return };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(config.timeout_ms.max(1))))
        .http_status_as_error(false)
        .build()
        .into();
    let interval = Duration::from_millis(config.interval_ms.max(10));
    loop {
        match deliver(store.as_ref(), &agent, url.expose()).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "operator alerts posted to the webhook"),
            Err(e) => tracing::warn!(error = %e, "operator alerts wait for the webhook"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
