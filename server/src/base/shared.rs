//! Limits shared between replicas through Redis (when the event bus is Redis): a rate bucket
//! per caller (GCRA, computed by a script on Redis's clock, so N replicas allow the rate once,
//! not N times) and failure counters with an expiry (sign-in lockout).
//!
//! Each call has a short deadline; a caller that gets an error falls back to its own
//! per-replica count, so Redis going away loosens the limits to per-replica ones instead of
//! stopping sign-ins or the API.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Each Redis call's deadline.
const DEADLINE: Duration = Duration::from_millis(300);

/// GCRA: the bucket's "theoretical arrival time" in microseconds on Redis's clock. Allowed
/// while the new arrival time is within `burst` emission intervals of now; otherwise the answer
/// is how many microseconds to wait.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tolerance then
  return new_tat - now - tolerance
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
"#;

/// One more failure; the first starts the window.
const FAIL: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"#;

/// Redis counters under one prefix (the bus channel, so deployments sharing a Redis do not
/// share limits).
pub struct Shared {
    client: redis::Client,
    prefix: String,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl Shared {
    pub fn new(url: &str, prefix: &str) -> Result<Shared, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("shared limits: bad Redis URL: {e}"))?;
        Ok(Shared {
            client,
            prefix: prefix.to_owned(),
            conn: Mutex::new(None),
        })
    }

    /// A key for `what` and `id`; the id is hashed (user names and tokens stay out of Redis).
    fn key(&self, what: &str, id: &str) -> String {
        let digest = hex::encode(Sha256::digest(id.as_bytes()));
        format!("{}:{what}:{}", self.prefix, &digest[..32])
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = tokio::time::timeout(DEADLINE, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "Redis did not answer in time".to_owned())?
            .map_err(|e| format!("cannot reach Redis: {e}"))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &str,
        key: &str,
        args: &[u64],
    ) -> Result<T, String> {
        let mut conn = self.connection().await?;
        let script = redis::Script::new(script);
        let mut invocation = script.prepare_invoke();
        invocation.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        match tokio::time::timeout(DEADLINE, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                // A broken connection is dropped, to be made again next time.
                self.conn.lock().await.take();
                Err(format!("Redis refused: {e}"))
            }
            Err(_) => {
                self.conn.lock().await.take();
                Err("Redis did not answer in time".into())
            }
        }
    }

    /// One request of `caller` against `per_minute` with `burst`: `Ok(None)` allowed,
    /// `Ok(Some(wait))` over the rate.
    pub async fn take(
        &self,
        caller: &str,
        per_minute: u32,
        burst: u32,
    ) -> Result<Option<Duration>, String> {
        let interval = 60_000_000 / u64::from(per_minute.max(1));
        let wait: u64 = self
            .run(
                GCRA,
                &self.key("rate", caller),
                &[interval, u64::from(burst)],
            )
            .await?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }

    /// Failures of `name` so far, and how long until they are forgotten.
    pub async fn failures(&self, name: &str) -> Result<(u32, Duration), String> {
        let mut conn = self.connection().await?;
        let key = self.key("lockout", name);
        let read = async {
            redis::pipe()
                .get(&key)
                .pttl(&key)
                .query_async::<(Option<u32>, i64)>(&mut conn)
                .await
        };
        match tokio::time::timeout(DEADLINE, read).await {
            Ok(Ok((count, ttl))) => {
                Ok((count.unwrap_or(0), Duration::from_millis(ttl.max(0) as u64)))
            }
            Ok(Err(e)) => Err(format!("Redis refused: {e}")),
            Err(_) => Err("Redis did not answer in time".into()),
        }
    }

    /// One more failure of `name`; the first of a series starts `window`.
    pub async fn fail(&self, name: &str, window: Duration) -> Result<u32, String> {
        self.run(
            FAIL,
            &self.key("lockout", name),
            &[window.as_millis().max(1) as u64],
        )
        .await
    }

    /// Forgets the failures of `name`.
    pub async fn clear(&self, name: &str) -> Result<(), String> {
        let mut conn = self.connection().await?;
        let key = self.key("lockout", name);
        match tokio::time::timeout(
            DEADLINE,
            redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("Redis refused: {e}")),
            Err(_) => Err("Redis did not answer in time".into()),
        }
    }
}
