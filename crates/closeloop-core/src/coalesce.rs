//! Case coalescing: the key that makes a new alert part of an open case.
//!
//! A customer who answers three surveys about the same bad delivery should
//! give their manager one case to work, not three: while a case with the
//! same key is active (and younger than the window), new alerts attach to it.

use serde::{Deserialize, Serialize};

use crate::event::FeedbackEvent;

/// An event field that can be part of the case key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKeyField {
    CustomerId,
    Store,
    Region,
    Touchpoint,
}

/// The default key: the same customer at the same store.
pub const DEFAULT_CASE_KEY: [CaseKeyField; 2] = [CaseKeyField::CustomerId, CaseKeyField::Store];

/// The case key of `event`, e.g. `customer_id=C-1|store=LYON-02`. Absent
/// fields are part of the key as empty values.
pub fn case_key(event: &FeedbackEvent, fields: &[CaseKeyField]) -> String {
    fields
        .iter()
        .map(|field| {
            let (name, value) = match field {
                CaseKeyField::CustomerId => ("customer_id", Some(event.customer.id.as_str())),
                CaseKeyField::Store => ("store", event.location.store_id.as_deref()),
                CaseKeyField::Region => ("region", event.location.region.as_deref()),
                CaseKeyField::Touchpoint => ("touchpoint", Some(event.journey.touchpoint.as_str())),
            };
            format!("{name}={}", value.unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    #[test]
    fn case_key_table() {
        let event = parse_event(
            br#"{"event_id":"e","occurred_at":"2026-11-20T10:00:00Z","source":"s","customer":{"id":"C-1"},
                "journey":{"touchpoint":"delivery"},"location":{"store_id":"LYON-02","region":"FR-ARA"},"scores":{"nps":2}}"#,
            1 << 16,
        )
        .unwrap();
        let cases: [(&[CaseKeyField], &str); 3] = [
            (&DEFAULT_CASE_KEY, "customer_id=C-1|store=LYON-02"),
            (&[CaseKeyField::CustomerId], "customer_id=C-1"),
            (
                &[
                    CaseKeyField::CustomerId,
                    CaseKeyField::Region,
                    CaseKeyField::Touchpoint,
                ],
                "customer_id=C-1|region=FR-ARA|touchpoint=delivery",
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(case_key(&event, fields), expected);
        }
        let mut no_store = event.clone();
        no_store.location.store_id = None;
        assert_eq!(
            case_key(&no_store, &DEFAULT_CASE_KEY),
            "customer_id=C-1|store="
        );
    }
}
