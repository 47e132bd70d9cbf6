//! closeloop-api
