//! Where "now" comes from. The core never asks: its functions take `now`.
//! Adapters that need the time (the dispatcher, the API, the scheduler, the
//! intake) hold a [`Clock`]; the composition root gives them the system
//! clock, tests a clock they move by hand.

use chrono::{DateTime, Utc};

/// The one time source of the service.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}
