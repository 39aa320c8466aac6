//! Proof that the pipes work: `serverInfo` and the `heartbeat` subscription.

use std::time::Duration;

use async_graphql::{Context, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::{ApiError, ServerMeta, principal};

#[derive(Default)]
pub struct SystemQuery;

/// This AWOOOI server.
#[derive(SimpleObject)]
pub struct ServerInfo {
    /// The server's version.
    version: String,
    /// `sqlite` or `postgres`.
    database: String,
    /// Seconds since this process started.
    uptime_seconds: i64,
    /// Started with `--demo` (demo users, the 3 AM scenario button).
    demo: bool,
}

#[Object]
impl SystemQuery {
    /// Facts about the server; needs a signed-in caller.
    async fn server_info(&self, ctx: &Context<'_>) -> async_graphql::Result<ServerInfo> {
        principal(ctx)?;
        let meta = ctx.data::<ServerMeta>()?;
        Ok(ServerInfo {
            version: meta.version.to_owned(),
            database: meta.database.to_owned(),
            uptime_seconds: i64::try_from(meta.started.elapsed().as_secs()).unwrap_or(i64::MAX),
            demo: meta.demo,
        })
    }
}

#[derive(Default)]
pub struct SystemSubscription;

/// One tick of the heartbeat.
#[derive(SimpleObject, Clone)]
pub struct Heartbeat {
    /// 1, 2, 3, … per subscription.
    seq: i64,
    at: DateTime<Utc>,
}

#[Subscription]
impl SystemSubscription {
    /// A tick every `intervalMs` milliseconds (100–60000), to prove live updates end to end.
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1000)] interval_ms: i32,
    ) -> async_graphql::Result<impl Stream<Item = Heartbeat> + use<>> {
        principal(ctx)?;
        if !(100..=60_000).contains(&interval_ms) {
            return Err(ApiError::BadUserInput(format!(
                "intervalMs must be between 100 and 60000, got {interval_ms}"
            ))
            .into());
        }
        let period = Duration::from_millis(interval_ms as u64);
        let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
            tokio::time::Instant::now() + period,
            period,
        ));
        Ok(ticks.enumerate().map(|(n, _)| Heartbeat {
            seq: n as i64 + 1,
            at: Utc::now(),
        }))
    }
}
