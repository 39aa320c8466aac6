//! Failed sign-ins per user name, counted in memory per replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins per user name: after `max` failures within `window`, the name is locked
/// until the window of the first failure ends, whatever the password. A success clears it.
/// Counted per replica.
pub struct Lockout {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Lockout {
    pub fn new(max: u32, window: Duration) -> Lockout {
        Lockout {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    /// `Err(wait)` while `username` is locked.
    pub fn check(&self, username: &str) -> Result<(), Duration> {
        if self.max == 0 {
            return Ok(());
        }
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&Lockout::key(username)) {
            Some((count, since)) if *count >= self.max && since.elapsed() < self.window => {
                Err(self.window - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, username: &str) {
        if self.max == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 10_000 {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures
            .entry(Lockout::key(username))
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Lockout::key(username));
    }
}

/// Minutes, rounded up, for messages.
pub fn minutes(wait: Duration) -> u64 {
    wait.as_secs().div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_locks_after_max_failures_and_a_success_clears() {
        let lockout = Lockout::new(3, Duration::from_secs(600));
        for _ in 0..2 {
            lockout.failed("Alice");
        }
        assert!(lockout.check("alice").is_ok());
        lockout.failed("alice ");
        let wait = lockout.check("ALICE").unwrap_err();
        assert!(wait <= Duration::from_secs(600) && wait > Duration::from_secs(590));
        assert!(lockout.check("bob").is_ok());
        lockout.succeeded("alice");
        assert!(lockout.check("alice").is_ok());

        let quick = Lockout::new(1, Duration::from_millis(1));
        quick.failed("x");
        std::thread::sleep(Duration::from_millis(5));
        assert!(quick.check("x").is_ok(), "the window ended");
    }
}
