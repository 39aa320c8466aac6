#![no_main]
//! Any bytes: the alertmanager parser returns events or an error naming a field, never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match engine::input::parse_alertmanager(data) {
        Ok(events) => {
            for event in events {
                assert!(!event.fingerprint.is_empty());
            }
        }
        Err(error) => assert!(!error.field.is_empty()),
    }
});
