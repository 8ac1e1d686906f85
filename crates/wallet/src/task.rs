//! The wallet's background tasks (deposit scanners, withdrawal processors) share one loop.

use crate::deposits::{OnChange, WalletError};
use bourse_engine::EngineHandle;
use bourse_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// What a background task works with besides its coin: where it writes, and whom it tells.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub engine: EngineHandle,
    /// Notified to work now (a node's walletnotify).
    pub wake: Arc<tokio::sync::Notify>,
    /// Told of every balance change a pass made (user, engine seq): a user reads their own
    /// credit at once.
    pub on_change: Arc<OnChange>,
    pub clock: fn() -> i64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// A background task's coin and context.
#[derive(Debug)]
pub struct Worker<C> {
    pub coin: Arc<C>,
    pub cx: Context,
}

impl<C> Worker<C> {
    /// [`every`] with `pass` given the worker's parts and the time.
    pub(crate) async fn every<'a, R, F>(
        &'a self,
        what: &'static str,
        coin: &str,
        interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
        pass: impl Fn(&'a C, &'a dyn Store, &'a EngineHandle, &'a OnChange, i64) -> F,
    ) where
        R: PartialEq + Default + std::fmt::Debug,
        F: std::future::Future<Output = Result<R, WalletError>> + 'a,
    {
        let cx = &self.cx;
        let (c, store, engine, on_change) =
            (&*self.coin, cx.store.as_ref(), &cx.engine, cx.on_change.as_ref());
        let clock = cx.clock;
        every(what, coin, interval, &cx.wake, stop, || pass(c, store, engine, on_change, clock()))
            .await
    }
}

/// Runs `pass` every `interval` — sooner when `wake` is notified — until `stop` turns true. A
/// pass that did something is logged with its report; a failed pass is logged and tried again
/// at the next (a node that is down delays the work, never loses it).
pub(crate) async fn every<R, F>(
    what: &'static str,
    coin: &str,
    interval: Duration,
    wake: &tokio::sync::Notify,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut pass: impl FnMut() -> F,
) where
    R: PartialEq + Default + std::fmt::Debug,
    F: std::future::Future<Output = Result<R, WalletError>>,
{
    let interval = interval.max(Duration::from_millis(100));
    loop {
        match pass().await {
            Ok(r) if r != R::default() => tracing::info!(coin, report = ?r, "{what}"),
            Ok(_) => {}
            Err(e) => tracing::warn!(coin, error = %e, "{what} failed; trying again"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
