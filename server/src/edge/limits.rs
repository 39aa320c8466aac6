//! Abuse limits: the shape of GraphQL documents (depth, complexity, aliases, batch size), the
//! request rate per caller, failed sign-ins per user, and the HTTP layer's security headers
//! and cross-site checks.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use governor::{Quota, RateLimiter};
use serde::Deserialize;

/// `[graphql]`: limits on what one request may ask.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlLimits {
    /// Deepest selection nesting (GraphiQL's introspection query needs 13).
    pub max_depth: usize,
    /// Sum of field costs (1 per field selected, aliases included).
    pub max_complexity: usize,
    /// Aliased fields in one document (operations and fragments).
    pub max_aliases: usize,
    /// Operations in one JSON-array batch.
    pub max_batch: usize,
    /// Whether `__schema`/`__type` answer (turn off in production if you prefer).
    pub introspection: bool,
    /// Requests per minute per credential (per client address when anonymous); 0: no limit.
    pub rate_per_minute: u32,
    /// Requests a caller may make at once above the steady rate.
    pub rate_burst: u32,
    /// How long an answer to an incident-list query may be served again while no incident
    /// changed (`edge::graphql::reads`); 0: never kept.
    pub read_cache_ms: u64,
}

impl Default for GraphqlLimits {
    fn default() -> Self {
        GraphqlLimits {
            max_depth: 16,
            max_complexity: 2000,
            max_aliases: 50,
            max_batch: 10,
            introspection: true,
            rate_per_minute: 6000,
            rate_burst: 600,
            read_cache_ms: 1000,
        }
    }
}

impl GraphqlLimits {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("max_depth", self.max_depth),
            ("max_complexity", self.max_complexity),
            ("max_batch", self.max_batch),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.rate_per_minute > 0 && self.rate_burst == 0 {
            return Err("rate_burst must be at least 1 when rate_per_minute is set".into());
        }
        Ok(())
    }
}

/// `[http]`: the HTTP layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// A request (not a WebSocket once upgraded) that takes longer is answered 408.
    pub request_timeout_seconds: u64,
    /// A client whose request headers take longer to arrive is disconnected.
    pub header_read_timeout_seconds: u64,
    /// Largest GraphQL / sign-in request body.
    pub max_body_bytes: usize,
    /// Origins whose browser scripts may call the API with bearer tokens (CORS). Cookies are
    /// never accepted cross-origin, whatever this says.
    pub cors_origins: Vec<String>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            request_timeout_seconds: 60,
            header_read_timeout_seconds: 10,
            max_body_bytes: 1024 * 1024,
            cors_origins: Vec::new(),
        }
    }
}

impl HttpLimits {
    pub fn validate(&self) -> Result<(), String> {
        if self.request_timeout_seconds == 0 {
            return Err("request_timeout_seconds must be at least 1".into());
        }
        if !(1..=600).contains(&self.header_read_timeout_seconds) {
            return Err("header_read_timeout_seconds must be between 1 and 600".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("max_body_bytes must be at least 1024".into());
        }
        for origin in &self.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && axum::http::HeaderValue::from_str(origin).is_ok();
            if !ok {
                return Err(format!(
                    "cors_origins: `{origin}` is not an origin like https://console.example.com"
                ));
            }
        }
        Ok(())
    }
}

/// Aliased fields in a document (its operations and fragments); `[graphql] max_aliases`
/// bounds it (checked by `edge::graphql::AppSchema` before execution). Complexity already
/// counts each alias as a field; this stops cheap-field fan-out like `a1: x a2: x …`.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + walk(&field.node.selection_set.node)
                }
                Selection::InlineFragment(inline) => walk(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    document
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .chain(
            document
                .fragments
                .values()
                .map(|f| walk(&f.node.selection_set.node)),
        )
        .sum()
}

type KeyedLimiter = RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    governor::clock::DefaultClock,
>;

/// Requests per minute per caller (a keyed token bucket, GCRA): in Redis, shared by every
/// replica, when the event bus is Redis; else (and while Redis does not answer) per replica.
#[derive(Clone)]
pub struct CallerRate {
    local: Option<Arc<KeyedLimiter>>,
    shared: Option<(Arc<crate::base::shared::Shared>, u32, u32)>,
}

impl CallerRate {
    pub fn new(limits: &GraphqlLimits) -> CallerRate {
        let (Some(per_minute), Some(burst)) = (
            NonZeroU32::new(limits.rate_per_minute),
            NonZeroU32::new(limits.rate_burst),
        ) else {
            return CallerRate {
                local: None,
                shared: None,
            };
        };
        let limiter = Arc::new(RateLimiter::hashmap(
            Quota::per_minute(per_minute).allow_burst(burst),
        ));
        // Callers idle long enough to be back at a full bucket are forgotten.
        let sweeper = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limiter) = sweeper.upgrade() else {
                    return;
                };
                limiter.retain_recent();
            }
        });
        CallerRate {
            local: Some(limiter),
            shared: None,
        }
    }

    /// Counts in Redis, shared by every replica (no-op when unlimited).
    pub fn shared(
        mut self,
        shared: Arc<crate::base::shared::Shared>,
        limits: &GraphqlLimits,
    ) -> CallerRate {
        if self.local.is_some() {
            self.shared = Some((shared, limits.rate_per_minute, limits.rate_burst));
        }
        self
    }

    /// No limit configured: every request passes without a key.
    pub fn is_unlimited(&self) -> bool {
        self.local.is_none()
    }

    /// `Err(wait)` when `key` is over its rate.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.local else {
            return Ok(());
        };
        if let Some((shared, per_minute, burst)) = &self.shared {
            match shared.take(key, *per_minute, *burst).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(wait),
                Err(error) => {
                    tracing::warn!(%error, "shared rate limit unavailable; counting on this replica")
                }
            }
        }
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let document = async_graphql::parser::parse_query(
            "query { a: serverInfo { v: version } me { ...F } } \
             fragment F on User { n: name b: name ... on User { c: name } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&document), 5);
    }

    #[tokio::test]
    async fn caller_rate_allows_the_burst_then_refuses_with_a_wait() {
        let rate = CallerRate::new(&GraphqlLimits {
            rate_per_minute: 60,
            rate_burst: 3,
            ..GraphqlLimits::default()
        });
        for _ in 0..3 {
            assert!(rate.check("t:a").await.is_ok());
        }
        let wait = rate.check("t:a").await.unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            rate.check("t:b").await.is_ok(),
            "keys have their own buckets"
        );
        let unlimited = CallerRate::new(&GraphqlLimits {
            rate_per_minute: 0,
            ..GraphqlLimits::default()
        });
        for _ in 0..10_000 {
            assert!(unlimited.check("t:a").await.is_ok());
        }
    }

    #[test]
    fn bad_limits_are_named() {
        let err = HttpLimits {
            cors_origins: vec!["console.example.com".into()],
            ..HttpLimits::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("console.example.com"), "{err}");
        let err = GraphqlLimits {
            max_depth: 0,
            ..GraphqlLimits::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("max_depth"), "{err}");
    }
}
