//! Failed sign-ins per user name: shared by every replica through Redis when the event bus is
//! Redis (`base::shared`), else counted in memory per replica (and per replica again while
//! Redis does not answer).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::base::shared::Shared;

/// Failed sign-ins per user name: after `max` failures within `window`, the name is locked
/// until the window of the first failure ends, whatever the password. A success clears it.
pub struct Lockout {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    shared: Option<Arc<Shared>>,
}

impl Lockout {
    pub fn new(max: u32, window: Duration) -> Lockout {
        Lockout {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counts in Redis, shared by every replica.
    pub fn shared(mut self, shared: Arc<Shared>) -> Lockout {
        self.shared = Some(shared);
        self
    }

    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    /// `Err(wait)` while `username` is locked.
    pub async fn check(&self, username: &str) -> Result<(), Duration> {
        if self.max == 0 {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            match shared.failures(&Lockout::key(username)).await {
                Ok((count, left)) if count >= self.max => return Err(left),
                Ok(_) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "shared sign-in lockout unavailable; counting on this replica")
                }
            }
        }
        self.check_here(username)
    }

    fn check_here(&self, username: &str) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&Lockout::key(username)) {
            Some((count, since)) if *count >= self.max && since.elapsed() < self.window => {
                Err(self.window - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    pub async fn failed(&self, username: &str) {
        if self.max == 0 {
            return;
        }
        if let Some(shared) = &self.shared {
            match shared.fail(&Lockout::key(username), self.window).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, "shared sign-in lockout unavailable; counting on this replica")
                }
            }
        }
        self.failed_here(username);
    }

    fn failed_here(&self, username: &str) {
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

    pub async fn succeeded(&self, username: &str) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.clear(&Lockout::key(username)).await
        {
            tracing::warn!(%error, "shared sign-in lockout unavailable");
        }
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

    #[tokio::test]
    async fn lockout_locks_after_max_failures_and_a_success_clears() {
        let lockout = Lockout::new(3, Duration::from_secs(600));
        for _ in 0..2 {
            lockout.failed("Alice").await;
        }
        assert!(lockout.check("alice").await.is_ok());
        lockout.failed("alice ").await;
        let wait = lockout.check("ALICE").await.unwrap_err();
        assert!(wait <= Duration::from_secs(600) && wait > Duration::from_secs(590));
        assert!(lockout.check("bob").await.is_ok());
        lockout.succeeded("alice").await;
        assert!(lockout.check("alice").await.is_ok());

        let quick = Lockout::new(1, Duration::from_millis(1));
        quick.failed("x").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(quick.check("x").await.is_ok(), "the window ended");
    }
}
