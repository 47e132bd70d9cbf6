//! closeloop-kafka
