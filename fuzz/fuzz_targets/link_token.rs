//! Any text in the place of a one-click link token (`/a/{token}`): it is
//! refused with a reason or verified, never panics; a verified token's
//! claims, signed again, verify to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-link-key-0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    closeloop_core::links::check_token(KEY, data);
});
