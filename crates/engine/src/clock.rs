//! The one place the engine reads the clock. The core takes time as a parameter; the runner
//! stamps each batch with this clock, and the stamp is journaled, so replay never reads it.

/// A source of wall-clock time in nanoseconds since the Unix epoch.
pub trait Clock: Send + 'static {
    fn now_ns(&mut self) -> u64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock seam itself
    fn now_ns(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}
