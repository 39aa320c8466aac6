//! Crash points: how the tests kill a real server at an exact moment. A debug build started
//! with `AWOOOI_CRASH_AT=<name>` sends itself SIGKILL when it reaches [`point`]`(name)` — no
//! unwinding, no shutdown, as `kill -9` from outside. Release builds compile them out.

/// Dies here if `AWOOOI_CRASH_AT` names this point (debug builds only).
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    {
        static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let at = AT.get_or_init(|| std::env::var("AWOOOI_CRASH_AT").ok());
        if at.as_deref() == Some(name) {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            // Only if `kill` could not run: still no unwinding.
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
