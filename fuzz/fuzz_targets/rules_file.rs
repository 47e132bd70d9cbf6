//! Any rules file: loaded or refused with problems naming the file and
//! line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = closeloop_core::RuleSet::from_toml("rules.toml", text);
    }
});
