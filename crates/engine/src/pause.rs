//! Holding the engine still for a moment: a backup fixes the database's snapshot while no
//! command can be applied, so the journal's end and the database describe one instant.

use crate::runner::{EngineError, EngineHandle};
use bourse_core::Exchange;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// While this lives (and at most the `max` given to [`EngineHandle::pause`]), the engine thread
/// applies nothing. Dropping it lets the engine go on.
#[derive(Debug)]
pub struct PauseGuard {
    release: mpsc::Sender<()>,
    expired: Arc<AtomicBool>,
}

impl PauseGuard {
    /// Lets the engine go on. `true` if it was still held until now; `false` if `max` ran out
    /// first (whatever was done under the pause may then have raced with new commands).
    pub fn release(self) -> bool {
        let held = !self.expired.load(Ordering::Acquire);
        let _ = self.release.send(());
        held && !self.expired.swap(true, Ordering::AcqRel)
    }
}

impl EngineHandle {
    /// Stops the engine after every command submitted before this call is applied and durable,
    /// runs `f` on its state there, and keeps it stopped until the returned guard is released
    /// or dropped, or `max` passes. Returns the state's seq and `f`'s result. Submitters wait
    /// (the queue fills and `try_submit` answers `Busy`) for as long as the pause lasts, so keep
    /// it to milliseconds.
    pub async fn pause<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Exchange) -> R + Send + 'static,
        max: Duration,
    ) -> Result<(u64, R, PauseGuard), EngineError> {
        if !self.is_local() {
            return Err(EngineError::NotLocal);
        }
        let (release, released) = mpsc::channel::<()>();
        let expired = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let engine_expired = expired.clone();
        let hold = move |exchange: &Exchange| {
            let result = f(exchange);
            if tx.send((exchange.seq(), result)).is_err() {
                return;
            }
            // Released, dropped or timed out: either way the engine goes on.
            if let Err(mpsc::RecvTimeoutError::Timeout) = released.recv_timeout(max) {
                engine_expired.store(true, Ordering::Release);
            }
        };
        // `read` waits for the reply the closure sends before it blocks; run it in the
        // background so this function can return while the engine is held.
        let handle = self.clone();
        let task = tokio::spawn(async move { handle.read(hold).await.map(|_| ()) });
        match rx.await {
            Ok((seq, result)) => Ok((seq, result, PauseGuard { release, expired })),
            // The closure never ran: the engine refused the request (busy or stopped).
            Err(_) => Err(match task.await {
                Ok(Err(e)) => e,
                _ => EngineError::Stopped,
            }),
        }
    }
}
