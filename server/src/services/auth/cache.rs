//! Resolved credentials, kept for a few seconds (`[auth] credential_cache_seconds`, default
//! 2; 0 turns it off), so that a client's every request does not read its session or token
//! from the database.
//!
//! What a cached answer may cost is bounded: an entry lives at most the configured time and
//! never past its session's end. A logout or revocation made through this server forgets
//! every entry at once; one made elsewhere (another replica, the CLI) takes effect here
//! within the configured time, and the CLI waits that long before it reports a revocation
//! done. Unknown tokens are cached too (as "nobody"): a token that does not exist now never
//! will, as tokens are random and made once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{DatabaseConnection, DbErr};
use sha2::{Digest, Sha256};

use super::Principal;

/// Beyond this many entries, expired ones are dropped; if none are, all are.
const MAX_ENTRIES: usize = 10_000;

pub struct Credentials {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every forget: an answer read from the database before it is not cached.
    generation: u64,
    entries: HashMap<[u8; 32], Cached>,
}

struct Cached {
    principal: Option<Principal>,
    until: Instant,
}

impl Credentials {
    pub fn new(ttl: Duration) -> Credentials {
        Credentials {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a cache: a panic while holding the lock leaves nothing to repair.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who `token` belongs to, if anyone: from the cache while the answer is fresh, else
    /// from the database ([`super::resolve_until`]).
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        token: &str,
    ) -> Result<Option<Principal>, DbErr> {
        if self.ttl.is_zero() {
            return Ok(super::resolve_until(db, token).await?.0);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let generation = {
            let state = self.state();
            if let Some(hit) = state.entries.get(&key)
                && hit.until > Instant::now()
            {
                return Ok(hit.principal.clone());
            }
            state.generation
        };
        let (principal, session_end) = super::resolve_until(db, token).await?;
        let now = Instant::now();
        let mut until = now + self.ttl;
        if let Some(end) = session_end {
            let left = (end - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            until = until.min(now + left);
        }
        let mut state = self.state();
        if state.generation == generation {
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.retain(|_, cached| cached.until > now);
                if state.entries.len() >= MAX_ENTRIES {
                    state.entries.clear();
                }
            }
            state.entries.insert(
                key,
                Cached {
                    principal: principal.clone(),
                    until,
                },
            );
        }
        Ok(principal)
    }

    /// Forgets every cached answer: after a logout, a revocation or a change of role.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }
}
