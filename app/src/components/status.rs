//! Status pills: severity, incident and alert status, in the console's status colours.

use leptos::prelude::*;

/// `2026-11-25T03:00:00.123Z` → `2026-11-25 03:00:00`.
pub fn short_time(rfc3339: &str) -> String {
    let plain = rfc3339.replacen('T', " ", 1);
    plain.get(..19).unwrap_or(&plain).to_owned()
}

/// A pill whose colour follows its (SCREAMING_CASE) value, e.g. `sev-critical`, `st-resolved`.
#[component]
pub fn Pill(#[prop(into)] value: String, prefix: &'static str) -> impl IntoView {
    let class = format!(
        "pill {prefix}-{}",
        value.to_ascii_lowercase().replace('_', "-")
    );
    let label = value.replace('_', " ");
    view! { <span class=class>{label}</span> }
}

#[cfg(test)]
mod tests {
    use super::short_time;

    #[test]
    fn times_read_plainly() {
        assert_eq!(
            short_time("2026-11-25T03:00:00.123456Z"),
            "2026-11-25 03:00:00"
        );
        assert_eq!(
            short_time("2026-11-25T03:00:00+00:00"),
            "2026-11-25 03:00:00"
        );
        assert_eq!(short_time("bad"), "bad");
    }
}
