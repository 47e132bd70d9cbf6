//! Any bytes from Kafka or HTTP: the parser returns an event or an error
//! naming a field, never panics, and an accepted event serialises and parses
//! back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = closeloop_core::parse_event(data, 256 * 1024) {
        let again = serde_json::to_vec(&event).expect("an accepted event serialises");
        let reparsed =
            closeloop_core::parse_event(&again, 1 << 20).expect("an accepted event re-parses");
        assert_eq!(event, reparsed);
    }
});
