//! closeloop-store
