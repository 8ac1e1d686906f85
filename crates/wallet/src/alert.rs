//! Operator alerts: what an operator must look at now. Each is logged at error level with
//! `alert = true` and recorded in the store's append-only `operator_alerts`, where the admin
//! views and a webhook can find it. Raising one never fails the caller: a store that cannot
//! record it leaves the log line.

use bourse_store::{NewAlert, Store};

/// Raises an alert from `source` (e.g. `wallet:LTC`).
pub async fn raise(store: &dyn Store, source: &str, message: String, now_ms: i64) {
    tracing::error!(alert = true, source, "OPERATOR ALERT: {message}");
    let alert = NewAlert { at_ms: now_ms, source: source.to_string(), message };
    if let Err(e) = store.insert_alert(&alert).await {
        tracing::error!(source, error = %e, "the alert above could not be recorded");
    }
}
