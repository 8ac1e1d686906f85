//! Rate limits kept in this process's memory: request rates (a GCRA bucket per key: so many
//! requests per second with a burst) and failure lockouts (after a few free failures each
//! further one locks the key for twice as long as the last, up to a cap). Keys are client IP
//! addresses and account e-mail addresses — an address with no account is throttled like one
//! with an account, so an answer never tells which exists. Each table holds a bounded number of
//! keys; entries that no longer matter are dropped when it fills.
//!
//! Limits are per process: with several gateways behind a balancer each enforces its own.

use std::collections::HashMap;
use std::sync::Mutex;

/// The server's limits, built from `[limits]`.
#[derive(Debug)]
pub struct Throttles {
    /// Failed logins and second-factor codes per account (by e-mail address).
    pub account: Lockout,
    /// Failed logins per client IP address.
    pub ip: Lockout,
    /// Signups and reset requests per client IP address.
    pub signup: Rate,
    /// API requests per client IP address.
    pub api: Rate,
}

impl Throttles {
    pub fn new(limits: &crate::config::Limits) -> Throttles {
        let lock_ms = i64::try_from(limits.lockout_s).unwrap_or(60).saturating_mul(1000);
        let lock_max_ms = i64::try_from(limits.lockout_max_s).unwrap_or(3600).saturating_mul(1000);
        let window_ms = 15 * 60_000;
        Throttles {
            account: Lockout::new(
                limits.login_failures_per_account,
                window_ms,
                lock_ms,
                lock_max_ms,
            ),
            ip: Lockout::new(limits.login_failures_per_ip, window_ms, lock_ms, lock_max_ms),
            signup: Rate::per_hour(limits.signups_per_ip_hour, limits.signups_per_ip_hour),
            api: Rate::per_second(limits.api_requests_per_s, limits.api_burst),
        }
    }
}

/// Middleware on the REST API: each client IP address gets `api_requests_per_s` with a burst of
/// `api_burst`; over it, `429 too_many_requests` with `Retry-After`.
pub async fn api_limit(
    axum::extract::State(state): axum::extract::State<crate::state::Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let ip = request
        .extensions()
        .get::<crate::security::Client>()
        .map(|c| c.ip.clone())
        .unwrap_or_default();
    if let Err(wait) = state.throttles.api.hit(&ip, crate::now_ms()) {
        let message = "too many requests from this address; slow down";
        return crate::error::ApiError::too_many("too_many_requests", message, wait)
            .into_response();
    }
    next.run(request).await
}

/// How long to wait before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    pub ms: i64,
}

impl RetryAfter {
    /// Whole seconds, at least 1 (the `Retry-After` header).
    pub fn seconds(self) -> i64 {
        ((self.ms + 999) / 1000).max(1)
    }
}

/// Keys a table holds at most.
const KEYS_MAX: usize = 100_000;

/// A request rate per key: `per_s` requests a second on average, `burst` at once (GCRA in
/// microseconds, so whole numbers all the way).
#[derive(Debug)]
pub struct Rate {
    interval_us: i64,
    tolerance_us: i64,
    /// Theoretical arrival time of the next request, per key (µs).
    tat: Mutex<HashMap<String, i64>>,
}

impl Rate {
    /// `per_hour` requests an hour, `burst` at once (both at least 1).
    pub fn per_hour(per_hour: u64, burst: u64) -> Rate {
        let interval_us = 3_600_000_000i64 / i64::try_from(per_hour.max(1)).unwrap_or(i64::MAX);
        Rate::with_interval(interval_us.max(1), burst)
    }

    /// `per_s` requests a second, `burst` at once (both at least 1).
    pub fn per_second(per_s: u64, burst: u64) -> Rate {
        let interval_us = 1_000_000i64 / i64::try_from(per_s.max(1)).unwrap_or(i64::MAX);
        Rate::with_interval(interval_us.max(1), burst)
    }

    fn with_interval(interval_us: i64, burst: u64) -> Rate {
        let burst = i64::try_from(burst.max(1)).unwrap_or(i64::MAX);
        Rate {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst - 1),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key` at `now_ms`, or says how long until one is allowed.
    pub fn hit(&self, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        let now = now_ms.saturating_mul(1000);
        let Ok(mut tat) = self.tat.lock() else { return Ok(()) };
        if tat.len() >= KEYS_MAX && !tat.contains_key(key) {
            // Keys whose bucket is full again carry no information.
            tat.retain(|_, t| *t > now);
            if tat.len() >= KEYS_MAX {
                return Err(RetryAfter { ms: 1000 });
            }
        }
        let next = tat.get(key).copied().unwrap_or(now).max(now);
        if next - now > self.tolerance_us {
            return Err(RetryAfter { ms: (next - now - self.tolerance_us + 999) / 1000 });
        }
        tat.insert(key.to_string(), next + self.interval_us);
        Ok(())
    }
}

/// Failure lockouts per key.
#[derive(Debug)]
pub struct Lockout {
    /// Failures within `window_ms` that cost nothing.
    free: u32,
    window_ms: i64,
    /// The first lock; each further failure doubles it.
    lock_ms: i64,
    lock_max_ms: i64,
    entries: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    first_ms: i64,
    locked_until_ms: i64,
}

impl Lockout {
    pub fn new(free: u32, window_ms: i64, lock_ms: i64, lock_max_ms: i64) -> Lockout {
        Lockout { free, window_ms, lock_ms, lock_max_ms, entries: Mutex::new(HashMap::new()) }
    }

    /// Whether `key` may try now.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        let Ok(entries) = self.entries.lock() else { return Ok(()) };
        match entries.get(key) {
            Some(f) if f.locked_until_ms > now_ms => {
                Err(RetryAfter { ms: f.locked_until_ms - now_ms })
            }
            _ => Ok(()),
        }
    }

    /// Records a failure of `key`; returns the lock it brought, if any.
    pub fn fail(&self, key: &str, now_ms: i64) -> Option<RetryAfter> {
        let Ok(mut entries) = self.entries.lock() else { return None };
        if entries.len() >= KEYS_MAX && !entries.contains_key(key) {
            let window = self.window_ms;
            entries.retain(|_, f| f.locked_until_ms > now_ms || now_ms - f.first_ms < window);
            if entries.len() >= KEYS_MAX {
                tracing::warn!("the lockout table is full; the oldest failures are forgotten");
                entries.clear();
            }
        }
        let f = entries.entry(key.to_string()).or_insert(Failures {
            count: 0,
            first_ms: now_ms,
            locked_until_ms: 0,
        });
        // A quiet window (since the last failure, and since the last lock ended) starts the
        // count again.
        let quiet_since = f.first_ms.max(f.locked_until_ms);
        if now_ms - quiet_since >= self.window_ms {
            *f = Failures { count: 0, first_ms: now_ms, locked_until_ms: 0 };
        }
        f.count = f.count.saturating_add(1);
        if f.count <= self.free {
            return None;
        }
        let doublings = (f.count - self.free - 1).min(30);
        let lock = self.lock_ms.saturating_mul(1i64 << doublings).min(self.lock_max_ms);
        f.locked_until_ms = now_ms.saturating_add(lock);
        // The window runs from the last failure while locks keep coming.
        f.first_ms = now_ms;
        Some(RetryAfter { ms: lock })
    }

    /// A success clears `key`'s failures.
    pub fn succeed(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_allows_the_burst_then_the_rate() {
        let rate = Rate::per_second(10, 3);
        let t = 1_000_000;
        assert!(rate.hit("a", t).is_ok());
        assert!(rate.hit("a", t).is_ok());
        assert!(rate.hit("a", t).is_ok());
        let wait = rate.hit("a", t).unwrap_err();
        assert!(wait.ms > 0 && wait.ms <= 100, "{wait:?}");
        assert_eq!(wait.seconds(), 1);
        // Another key has its own bucket.
        assert!(rate.hit("b", t).is_ok());
        // After one interval, one more.
        assert!(rate.hit("a", t + 100).is_ok());
        assert!(rate.hit("a", t + 100).is_err());
    }

    #[test]
    fn rate_per_hour() {
        let rate = Rate::per_hour(2, 2);
        assert!(rate.hit("ip", 0).is_ok());
        assert!(rate.hit("ip", 0).is_ok());
        let wait = rate.hit("ip", 0).unwrap_err();
        assert_eq!(wait.seconds(), 1800);
        assert!(rate.hit("ip", 1_800_000).is_ok());
    }

    #[test]
    fn lockout_doubles_and_clears() {
        let l = Lockout::new(3, 900_000, 60_000, 3_600_000);
        let t = 10_000_000;
        for _ in 0..3 {
            assert!(l.check("k", t).is_ok());
            assert_eq!(l.fail("k", t), None);
        }
        assert_eq!(l.fail("k", t), Some(RetryAfter { ms: 60_000 }));
        assert_eq!(l.check("k", t + 1_000), Err(RetryAfter { ms: 59_000 }));
        assert!(l.check("other", t).is_ok());
        // After the lock, the next failure locks twice as long.
        assert!(l.check("k", t + 60_000).is_ok());
        assert_eq!(l.fail("k", t + 60_000), Some(RetryAfter { ms: 120_000 }));
        // Capped.
        let mut now = t + 180_000;
        let mut last = None;
        for _ in 0..20 {
            last = l.fail("k", now);
            now += last.map_or(0, |r| r.ms);
        }
        assert_eq!(last, Some(RetryAfter { ms: 3_600_000 }));
        l.succeed("k");
        assert!(l.check("k", now).is_ok());
        assert_eq!(l.fail("k", now), None);
    }

    #[test]
    fn failures_spread_beyond_the_window_never_lock() {
        let l = Lockout::new(2, 1_000, 60_000, 3_600_000);
        for i in 0..10 {
            assert_eq!(l.fail("k", i * 1_000), None, "failure {i}");
        }
    }
}
