//! The system clock, given to every part that needs the time.

use chrono::{DateTime, Utc};
use closeloop_core::clock::Clock;

/// The real clock: the service's one read of the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
