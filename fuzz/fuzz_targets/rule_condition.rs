//! Any text an ops team might type as a CEL condition: it compiles or is
//! refused with a line and column, never panics; a compiled condition can
//! be evaluated against a real event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static EVENT: OnceLock<closeloop_core::FeedbackEvent> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let event = EVENT.get_or_init(|| {
        closeloop_core::parse_event(
            br#"{"event_id":"fz-1","source":"survey.post-delivery","occurred_at":"2026-11-02T10:00:00Z","customer":{"id":"c1"},"journey":{"touchpoint":"delivery"},"location":{"store_id":"LYON-02","region":"FR-ARA"},"scores":{"nps":3},"comment":"rude staff"}"#,
            1 << 20,
        )
        .expect("the fixed event is valid")
    });
    if let Ok(condition) = closeloop_core::cel::Matcher::compile(source) {
        let _ = condition.matches(event);
    }
});
