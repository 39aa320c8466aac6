#![no_main]
//! Any text: findings are in bounds, ordered, non-overlapping and on character boundaries;
//! redaction never panics and labels the same value the same way.

use std::sync::OnceLock;

use engine::shield::{Pseudonyms, Shield};
use libfuzzer_sys::fuzz_target;

fn shield() -> &'static Shield {
    static SHIELD: OnceLock<Shield> = OnceLock::new();
    SHIELD.get_or_init(Shield::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let findings = shield().find(text);
    let mut last_end = 0;
    for f in &findings {
        assert!(f.start < f.end && f.end <= text.len());
        assert!(f.start >= last_end, "overlap");
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        last_end = f.end;
    }
    let mut names = Pseudonyms::new();
    let once = shield().redact(text, &mut names);
    let twice = shield().redact(text, &mut names);
    assert_eq!(once, twice, "same values, same labels");
});
