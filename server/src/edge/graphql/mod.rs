//! The GraphQL schema: one `<Domain>Query` / `Mutation` / `Subscription` per domain, merged.
//!
//! Resolvers reach state through schema data (`ServerMeta`, the database) and the caller
//! through request data ([`RequestAuth`]), attached by the HTTP and WebSocket handlers.

mod analysis;
mod approvals;
mod audit;
mod auth;
mod cluster;
mod error;
mod feed;
mod finops;
mod incidents;
mod knowledge;
mod notifications;
mod oncall;
mod postmortems;
pub mod reads;
mod system;
pub mod topology;

use std::time::Instant;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use sea_orm::DatabaseConnection;

pub use error::ApiError;

use crate::edge::config::AuthConfig;
use crate::services::auth::Principal;
use crate::services::ingest::Ingest;

/// The schema as every entry point runs it (HTTP, WebSocket, SSR, MCP), with the alias
/// limit checked on the parsed document before execution. (As an async-graphql extension it
/// cost every field of every answer: with any extension installed, each field's resolution
/// goes through the extension chain, a registry lookup and a boxed future.)
#[derive(Clone)]
pub struct AppSchema {
    schema: Schema<Query, Mutation, Subscription>,
    max_aliases: usize,
    documents: std::sync::Arc<Documents>,
    reads: std::sync::Arc<reads::ReadCache>,
    bus: crate::base::bus::Bus,
}

/// An answer as JSON text ([`AppSchema::answer`]), or the response executed now.
pub enum Answer {
    /// The JSON text of an answer to a list query (kept, or kept now).
    Text(axum::body::Bytes),
    Response(async_graphql::Response),
}

/// Documents parsed before, by their text. The console's pages and an integration's polls
/// send the same few operations again and again, and parsing one (async-graphql's parser, on
/// pest) was 8 % of serving the incident list; a parsed document is copied instead. Only a
/// document whose answer carried no error is kept (it passed validation and the depth and
/// complexity limits), at most [`Documents::MAX`] of them, each at most
/// [`Documents::MAX_TEXT`] long: past that the cache starts over, so a caller sending ever new
/// documents costs a parse each, as before, and no memory.
#[derive(Default)]
struct Documents(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Parsed>>>);

/// A parsed document, its alias count and whether its answers may be kept
/// ([`reads::listed_only`]).
struct Parsed {
    document: async_graphql::parser::types::ExecutableDocument,
    aliases: usize,
    listed: bool,
}

/// A document parsed for this request, to keep if its answer carries no error.
type Fresh = Option<(String, Parsed)>;

impl Documents {
    const MAX: usize = 256;
    /// Longer texts are parsed every time: the cache holds operations, not payloads.
    const MAX_TEXT: usize = 8 * 1024;

    fn entries(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::sync::Arc<Parsed>>> {
        // A cache: a panic while holding the lock leaves nothing to repair.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, text: &str) -> Option<std::sync::Arc<Parsed>> {
        self.entries().get(text).cloned()
    }

    fn keep(&self, text: String, parsed: Parsed) {
        if text.len() > Documents::MAX_TEXT {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= Documents::MAX {
            entries.clear();
        }
        entries.insert(text, std::sync::Arc::new(parsed));
    }
}

impl AppSchema {
    /// The SDL of this schema.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    /// The request, parsed (async-graphql keeps the document and does not parse it again;
    /// `known` is its document if kept), the document if it was parsed now, and whether its
    /// answers may be kept; or why it is refused.
    fn admit(
        &self,
        mut request: async_graphql::Request,
        known: Option<std::sync::Arc<Parsed>>,
    ) -> Result<(async_graphql::Request, Fresh, bool), Vec<async_graphql::ServerError>> {
        let (aliases, fresh, listed) = match known {
            Some(kept) => {
                request.set_parsed_query(kept.document.clone());
                (kept.aliases, None, kept.listed)
            }
            None => {
                let text =
                    (request.query.len() <= Documents::MAX_TEXT).then(|| request.query.clone());
                let document = request.parsed_query().map_err(|error| vec![error])?;
                let aliases = crate::edge::limits::count_aliases(document);
                let listed = reads::listed_only(document);
                let fresh = text.map(|text| {
                    let document = document.clone();
                    let parsed = Parsed {
                        document,
                        aliases,
                        listed,
                    };
                    (text, parsed)
                });
                (aliases, fresh, listed)
            }
        };
        if aliases > self.max_aliases {
            return Err(vec![async_graphql::ServerError::new(
                format!(
                    "the document has {aliases} aliases; at most {} are allowed",
                    self.max_aliases
                ),
                None,
            )]);
        }
        Ok((request, fresh, listed))
    }

    /// Executes an admitted request, keeping its document if the answer carries no error.
    async fn run(&self, request: async_graphql::Request, fresh: Fresh) -> async_graphql::Response {
        let response = self.schema.execute(request).await;
        if let Some((text, parsed)) = fresh
            && response.errors.is_empty()
        {
            self.documents.keep(text, parsed);
        }
        response
    }

    /// Answers one request from `auth`'s caller: a list query for a signed-in caller as JSON
    /// text, from the read cache when it holds a current answer ([`reads`]); anything else
    /// executed as [`Executor::execute`](async_graphql::Executor::execute) would.
    pub async fn answer(&self, request: async_graphql::Request, auth: RequestAuth) -> Answer {
        // Read before executing: a change committed meanwhile makes the answer stale at once.
        let epoch = self.bus.incident_epoch();
        let now = Instant::now();
        let keeps = auth.principal.is_some() && self.reads.enabled();
        let known = self.documents.get(&request.query);
        let mut key = None;
        if keeps && known.as_ref().is_some_and(|known| known.listed) {
            // Served before the document is copied for execution.
            key = reads::Key::of(&request);
            if let Some(text) = key.as_ref().and_then(|key| self.reads.get(key, epoch, now)) {
                crate::base::telemetry::count_read_cache(true);
                return Answer::Text(text);
            }
        }
        let (request, fresh, listed) = match self.admit(request.data(auth), known) {
            Ok(admitted) => admitted,
            Err(refused) => return Answer::Response(async_graphql::Response::from_errors(refused)),
        };
        if keeps && listed && key.is_none() {
            key = reads::Key::of(&request);
        }
        let response = self.run(request, fresh).await;
        let Some(key) = key.filter(|_| response.errors.is_empty()) else {
            return Answer::Response(response);
        };
        crate::base::telemetry::count_read_cache(false);
        match serde_json::to_vec(&response) {
            Ok(text) => {
                let text = axum::body::Bytes::from(text);
                self.reads.keep(key, text.clone(), epoch, now);
                Answer::Text(text)
            }
            Err(_) => Answer::Response(response),
        }
    }
}

impl async_graphql::Executor for AppSchema {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        let known = self.documents.get(&request.query);
        match self.admit(request, known) {
            Ok((request, fresh, _)) => self.run(request, fresh).await,
            Err(refused) => async_graphql::Response::from_errors(refused),
        }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<std::sync::Arc<async_graphql::Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        use futures_util::StreamExt;
        let known = self.documents.get(&request.query);
        match self.admit(request, known) {
            Ok((request, _, _)) => self
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default()),
            Err(refused) => {
                futures_util::stream::once(
                    async move { async_graphql::Response::from_errors(refused) },
                )
                .boxed()
            }
        }
    }
}

#[derive(MergedObject, Default)]
pub struct Query(
    system::SystemQuery,
    auth::AuthQuery,
    incidents::IncidentQuery,
    topology::TopologyQuery,
    approvals::ApprovalQuery,
    cluster::ClusterQuery,
    audit::AuditQuery,
    knowledge::KnowledgeQuery,
    finops::FinopsQuery,
    notifications::NotificationQuery,
    postmortems::PostmortemQuery,
    oncall::SilenceQuery,
    oncall::ScheduleQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    incidents::IncidentMutation,
    analysis::AnalysisMutation,
    approvals::ApprovalMutation,
    cluster::ClusterMutation,
    finops::FinopsMutation,
    notifications::NotificationMutation,
    oncall::OncallMutation,
    oncall::SilenceMutation,
    oncall::ScheduleMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    system::SystemSubscription,
    incidents::IncidentSubscription,
    analysis::AnalysisSubscription,
    approvals::ApprovalSubscription,
);

/// Facts about this server process, for `serverInfo`.
#[derive(Debug, Clone)]
pub struct ServerMeta {
    pub version: &'static str,
    pub database: &'static str,
    pub started: Instant,
    /// Running with `--demo`.
    pub demo: bool,
}

/// Who is calling (if anyone) and with which token, attached to every request.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    pub principal: Option<Principal>,
    /// The raw session token, so `logout` can end exactly this session.
    pub token: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub fn build_schema(
    db: DatabaseConnection,
    meta: ServerMeta,
    auth: AuthConfig,
    ingest: Ingest,
    topology: std::sync::Arc<engine::topology::Topology>,
    analyst: crate::services::analysis::Analyst,
    approvals: crate::services::approvals::Approvals,
    finops: crate::services::finops::Finops,
    notifier: crate::services::notify::Notifier,
    oncall: crate::services::oncall::Oncall,
    limits: &crate::edge::limits::GraphqlLimits,
    lockout: std::sync::Arc<crate::services::auth::lockout::Lockout>,
    credentials: std::sync::Arc<crate::services::auth::cache::Credentials>,
) -> AppSchema {
    let retrieval = approvals.knowledge().retrieval().clone();
    let bus = ingest.bus().clone();
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    let incident_feed = incidents::incident_feed(db.clone(), &ingest);
    let approval_feed = approvals::approval_feed(&approvals);
    let schema = builder
        .data(incident_feed)
        .data(approval_feed)
        .data(db)
        .data(meta)
        .data(auth)
        .data(ingest)
        .data(topology)
        .data(analyst)
        .data(approvals)
        .data(finops)
        .data(notifier)
        .data(oncall)
        .data(lockout)
        .data(credentials)
        .data(retrieval)
        .finish();
    AppSchema {
        schema,
        max_aliases: limits.max_aliases,
        documents: Default::default(),
        reads: std::sync::Arc::new(reads::ReadCache::new(std::time::Duration::from_millis(
            limits.read_cache_ms,
        ))),
        bus,
    }
}

/// The SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}

/// A newest-first page over rows with integer ids (`first`, `after` validated).
pub struct Page {
    pub first: usize,
    pub after: Option<i64>,
    resumed: bool,
}

impl Page {
    pub fn new(first: i32, max: i32, after: Option<&str>) -> Result<Page, ApiError> {
        if !(1..=max).contains(&first) {
            return Err(ApiError::BadUserInput(format!(
                "first must be 1-{max}, got {first}"
            )));
        }
        let after_id = after
            .map(str::parse::<i64>)
            .transpose()
            .map_err(|_| ApiError::BadUserInput("after: not a cursor from this list".into()))?;
        Ok(Page {
            first: first as usize,
            after: after_id,
            resumed: after.is_some(),
        })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn limit(&self) -> u64 {
        self.first as u64 + 1
    }

    /// The connection for `rows` (fetched with [`Page::limit`], newest first).
    pub fn connection<M, N: async_graphql::OutputType>(
        &self,
        mut rows: Vec<M>,
        total_count: u64,
        id: impl Fn(&M) -> i64,
        node: impl Fn(M) -> N,
    ) -> async_graphql::connection::Connection<String, N, incidents::CountFields> {
        let has_next = rows.len() > self.first;
        rows.truncate(self.first);
        let mut connection = async_graphql::connection::Connection::with_additional_fields(
            self.resumed,
            has_next,
            incidents::CountFields::new(total_count),
        );
        connection.edges.extend(
            rows.into_iter()
                .map(|row| async_graphql::connection::Edge::new(id(&row).to_string(), node(row))),
        );
        connection
    }
}

/// The signed-in caller, or `UNAUTHENTICATED`.
pub fn principal<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Principal> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|auth| auth.principal.as_ref())
        .ok_or_else(|| ApiError::Unauthenticated.into())
}

/// The caller, if their role is one of `roles`; else `UNAUTHENTICATED` / `FORBIDDEN`.
pub fn require_role<'a>(
    ctx: &'a Context<'_>,
    roles: &[engine::Role],
) -> async_graphql::Result<&'a Principal> {
    let who = principal(ctx)?;
    if roles.contains(&who.role) {
        Ok(who)
    } else {
        Err(ApiError::Forbidden(format!("role {} may not do this", who.role)).into())
    }
}

#[cfg(test)]
mod tests {
    /// Past `MAX` texts the document cache starts over, and over-long texts are not kept.
    #[test]
    fn the_document_cache_is_bounded() {
        use super::{Documents, Parsed};
        let documents = Documents::default();
        let parsed = |text: &str| Parsed {
            document: async_graphql::parser::parse_query(text).unwrap(),
            aliases: 0,
            listed: false,
        };
        let text = |i: usize| format!("{{ a{i}: __typename }}");
        for i in 0..Documents::MAX {
            documents.keep(text(i), parsed(&text(i)));
        }
        assert_eq!(documents.entries().len(), Documents::MAX);
        assert!(documents.get(&text(0)).is_some());
        documents.keep(text(Documents::MAX), parsed(&text(Documents::MAX)));
        assert_eq!(documents.entries().len(), 1);
        assert!(documents.get(&text(Documents::MAX)).is_some());

        let long = format!("{{ __typename }}{}", " ".repeat(Documents::MAX_TEXT));
        documents.keep(long.clone(), parsed(&long));
        assert!(documents.get(&long).is_none());
    }

    /// `schema.graphql` is what clients (and the UI's typed operations) compile against.
    /// Regenerate with `AWOOOI_UPDATE_SCHEMA=1 cargo test -p server schema_file`.
    #[test]
    fn schema_file_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
        let current = super::sdl();
        if std::env::var_os("AWOOOI_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "schema.graphql is stale: run `AWOOOI_UPDATE_SCHEMA=1 cargo test -p server schema_file` \
             and commit the result"
        );
    }
}
