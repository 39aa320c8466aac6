//! The HTTP surface: GraphQL (+ WebSocket subscriptions), health, metrics, sign-in forms,
//! static UI assets, and the SSR pages behind a session guard.

pub mod assets;
mod downloads;
mod forms;
mod layers;
mod serve;

pub use serve::serve_on;

use forms::{form_login, form_logout};
use layers::*;

use std::sync::Arc;

use async_graphql::BatchRequest;
use async_graphql::Data;
use async_graphql::Executor;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{DefaultBodyLimit, FromRef, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::base::telemetry::{self, count_graphql_operation};
use crate::edge::config::Config;
use crate::edge::graphql::{Answer, AppSchema, RequestAuth};
use crate::services::auth::{self, SESSION_COOKIE};

/// What every handler shares, behind one `Arc`: extractors and middleware clone the state once
/// per request each, and a clone of the parts themselves (a score of reference counts) showed
/// up as 6 % of the server's time under ingest load.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppParts {
    pub db: DatabaseConnection,
    pub schema: AppSchema,
    pub ingest: crate::services::ingest::Ingest,
    pub topology: Arc<engine::topology::Topology>,
    pub approvals: crate::services::approvals::Approvals,
    pub notifier: crate::services::notify::Notifier,
    pub oncall: crate::services::oncall::Oncall,
    pub config: Arc<Config>,
    pub leptos: LeptosOptions,
    pub metrics: PrometheusHandle,
    /// Requests per caller on `/graphql` and `/mcp`.
    pub rate: crate::edge::limits::CallerRate,
    /// Failed sign-ins per user name.
    pub lockout: Arc<crate::services::auth::lockout::Lockout>,
    /// Resolved sessions and API tokens, kept for `[auth] credential_cache_seconds`.
    pub credentials: Arc<crate::services::auth::cache::Credentials>,
    /// Whether the database answers, probed apart from the pool.
    pub health: crate::base::db::DbHealth,
    /// What the Kafka input is doing (when `[streams.kafka]` is configured).
    pub kafka: Arc<crate::services::ingest::kafka::InputStatus>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// How the caller presented their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredentialSource {
    None,
    Bearer,
    Cookie,
}

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .leptos_routes_with_handler(
            generate_route_list(app::App),
            get(crate::edge::ssr::render_page),
        )
        .route_layer(middleware::from_fn(require_page_session));
    let pkg_dir = state.config.site_root.join("pkg");
    let alerts = Router::new()
        .route(
            "/api/v1/alerts/alertmanager",
            post(crate::edge::webhooks::alertmanager),
        )
        .route(
            "/api/v1/alerts/grafana",
            post(crate::edge::webhooks::grafana),
        )
        .route(
            "/api/v1/alerts/webhook",
            post(crate::edge::webhooks::generic),
        )
        .route(
            "/api/v1/slack/interactions",
            post(crate::edge::slack::interactions),
        )
        .layer(DefaultBodyLimit::max(state.config.ingest.max_body_bytes));
    let http = &state.config.http;
    let api = Router::new()
        .route("/graphql", get(graphiql).post(graphql_http))
        .route("/graphql/ws", get(graphql_ws))
        .route(
            "/api/v1/incidents/{id}/postmortem.md",
            get(downloads::postmortem),
        )
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn(require_bearer))
                .service(crate::edge::mcp::http_service(state.schema.clone())),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .route("/auth/login", post(form_login))
        .route("/auth/logout", post(form_logout))
        // The GraphQL extractor streams the body itself, so the limit wraps the body.
        .layer(RequestBodyLimitLayer::new(http.max_body_bytes));
    let timeout = std::time::Duration::from_secs(http.request_timeout_seconds);
    Router::new()
        .merge(alerts)
        .merge(api)
        .route("/graphql/schema.graphql", get(schema_sdl))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(pages)
        .nest_service(
            "/pkg",
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(
                    assets::Assets {
                        output_name: state.leptos.output_name.to_string(),
                    },
                    assets::cache_headers,
                ))
                .service(
                    ServeDir::new(pkg_dir)
                        .precompressed_br()
                        .precompressed_gzip(),
                ),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.config.auth.cookie_secure,
            refuse_cross_site,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(telemetry::track_http))
        .layer(middleware::from_fn_with_state(
            state.config.auth.cookie_secure,
            security_headers,
        ))
        .layer(cors(&http.cors_origins))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn graphql_http(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    request: GraphQLBatchRequest,
) -> Response {
    let batch = request.into_inner();
    let max = state.config.graphql.max_batch;
    let requests: Vec<&async_graphql::Request> = match &batch {
        BatchRequest::Single(one) => vec![one],
        BatchRequest::Batch(many) => many.iter().collect(),
    };
    if requests.len() > max || requests.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": [{
                "message": format!("a batch holds 1 to {max} operations; this one has {}", requests.len()),
                "extensions": {"code": "BAD_USER_INPUT"},
            }]})),
        )
            .into_response();
    }
    for request in requests {
        count_graphql_operation(request.operation_name.as_deref(), "http");
    }
    match batch {
        BatchRequest::Single(one) => match state.schema.answer(one, auth).await {
            Answer::Text(text) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/graphql-response+json",
                )],
                text,
            )
                .into_response(),
            Answer::Response(response) => GraphQLResponse::from(response).into_response(),
        },
        batch => GraphQLResponse::from(state.schema.execute_batch(batch.data(auth)).await)
            .into_response(),
    }
}

async fn graphiql(request: Request) -> Response {
    if !signed_in(&request) {
        return Redirect::to("/login").into_response();
    }
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("AWOOOI GraphQL")
            .finish(),
    )
    .into_response()
}

async fn schema_sdl(State(state): State<AppState>, request: Request) -> Response {
    if !signed_in(&request) {
        return unauthorized();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.schema.sdl(),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": "sign in first: this needs a session or an API token"})),
    )
        .into_response()
}

/// Browsers send cookies on cross-site WebSocket upgrades; only our own origin may use them.
///
/// Whether the request's `Origin` (when it sends one) is this server: the same scheme, host
/// and port. The scheme the browser used is the proxy's `X-Forwarded-Proto` when there is one,
/// else `https` when `secure` (`[auth] cookie_secure`: the console is served over TLS), else
/// `http`; a port left out is its scheme's default.
fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| if secure { "https" } else { "http" }.to_owned());
    let Some((origin_scheme, origin_authority)) = origin.split_once("://") else {
        return false;
    };
    origin_scheme.eq_ignore_ascii_case(&scheme)
        && authority(origin_authority, &scheme).is_some()
        && authority(origin_authority, &scheme) == authority(host, &scheme)
}

/// `host[:port]` (IPv6 in brackets) as a lower-case host and a port, the scheme's default
/// when left out; `None` when it is not an authority.
fn authority(text: &str, scheme: &str) -> Option<(String, u16)> {
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (host.ends_with(']') || !host.contains(':')) => {
            (host, port.parse().ok()?)
        }
        _ => (text, default),
    };
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The token a WebSocket client put in `connection_init`:
/// `{"Authorization": "Bearer …"}` or `{"token": "…"}`.
fn init_payload_token(payload: &serde_json::Value) -> Option<String> {
    let from_header = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    from_header
        .or_else(|| {
            payload
                .get("token")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .filter(|t| !t.is_empty())
}

async fn graphql_ws(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    Extension(source): Extension<CredentialSource>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if source == CredentialSource::Cookie && !same_origin(&headers, state.config.auth.cookie_secure)
    {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    let schema = state.schema.clone();
    let db = state.db.clone();
    let credentials = state.credentials.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Small buffers: an idle subscriber should cost kilobytes, not the 128 KiB default;
        // frames larger than this are still read, in more steps.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let auth = match init_payload_token(&payload) {
                        None => auth,
                        Some(token) => match credentials.resolve(&db, &token).await {
                            Ok(Some(principal)) => RequestAuth {
                                principal: Some(principal),
                                token: None,
                            },
                            Ok(None) => {
                                return Err(async_graphql::Error::new("invalid or expired token"));
                            }
                            Err(error) => {
                                tracing::error!(%error, "cannot resolve WebSocket token");
                                return Err(async_graphql::Error::new("storage unavailable"));
                            }
                        },
                    };
                    count_graphql_operation(None, "ws");
                    let mut data = Data::default();
                    data.insert(auth);
                    Ok(data)
                })
                .serve()
        })
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.db.ping().await;
    let migrations = match &database {
        Ok(()) => crate::base::db::migrations_applied(&state.db).await,
        Err(_) => Ok(false),
    };
    let mut ready = database.is_ok() && matches!(migrations, Ok(true));
    if let Err(error) = &database {
        tracing::warn!(%error, "not ready: database unreachable");
    }
    let mut body = json!({
        "status": "ready",
        "database": if database.is_ok() { "ok" } else { "unreachable" },
        "migrations": match migrations { Ok(true) => "applied", Ok(false) => "pending", Err(_) => "unknown" },
    });
    if state.config.streams.kafka.is_some() {
        let (kafka, kafka_ready) = state.kafka.describe();
        body["kafka"] = json!(kafka);
        ready &= kafka_ready;
    }
    if !ready {
        body["status"] = json!("not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn credentials_are_read_from_bearer_or_cookie() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(
            cookie_token(&headers(&[("cookie", "a=1; awoooi_session=tok; b=2")])).as_deref(),
            Some("tok")
        );
        assert_eq!(
            cookie_token(&headers(&[("cookie", "awoooi_session=")])),
            None
        );
    }

    #[test]
    fn websocket_init_payload_carries_a_token_two_ways() {
        assert_eq!(
            init_payload_token(&json!({"Authorization": "Bearer t1"})).as_deref(),
            Some("t1")
        );
        assert_eq!(
            init_payload_token(&json!({"token": "t2"})).as_deref(),
            Some("t2")
        );
        assert_eq!(init_payload_token(&json!({})), None);
        assert_eq!(
            init_payload_token(&json!({"Authorization": "Basic x"})),
            None
        );
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let same = |pairs: &[(&'static str, &str)], secure| same_origin(&headers(pairs), secure);
        assert!(
            same(&[], false),
            "no Origin: not a browser's cross-site request"
        );
        assert!(same(
            &[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ],
            false
        ));
        assert!(!same(
            &[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:3000")
            ],
            false
        ));
        // The scheme counts: an http page may not use an https console's cookie, nor the
        // reverse.
        assert!(!same(
            &[
                ("origin", "http://console.example"),
                ("host", "console.example")
            ],
            true
        ));
        assert!(same(
            &[
                ("origin", "https://console.example"),
                ("host", "console.example")
            ],
            true
        ));
        assert!(!same(
            &[
                ("origin", "https://console.example"),
                ("host", "console.example")
            ],
            false
        ));
        // A proxy's X-Forwarded-Proto says what the browser used.
        assert!(same(
            &[
                ("origin", "https://console.example"),
                ("host", "console.example"),
                ("x-forwarded-proto", "https")
            ],
            false
        ));
        // The port counts, a default port may be left out, hosts are case-insensitive.
        assert!(!same(
            &[
                ("origin", "http://127.0.0.1:3001"),
                ("host", "127.0.0.1:3000")
            ],
            false
        ));
        assert!(same(
            &[
                ("origin", "https://Console.Example:443"),
                ("host", "console.example")
            ],
            true
        ));
        assert!(same(
            &[("origin", "http://[::1]:3000"), ("host", "[::1]:3000")],
            false
        ));
        assert!(!same(
            &[("origin", "http://[::1]:3000"), ("host", "[::1]:3001")],
            false
        ));
        assert!(!same(
            &[("origin", "null"), ("host", "127.0.0.1:3000")],
            false
        ));
        assert!(
            !same(&[("origin", "http://127.0.0.1:3000")], false),
            "no Host"
        );
    }
}
