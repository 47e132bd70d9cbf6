//! closeloop-notify
