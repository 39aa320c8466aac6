//! Server-side rendering: Leptos pages rendered with an in-process GraphQL transport, so SSR
//! sees exactly what the requesting user may see, without an HTTP hop to itself.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use leptos::prelude::provide_context;

use app::graphql::{ApiError, GraphqlTransport, Transport, TransportFuture};

use crate::base::telemetry::count_graphql_operation;
use crate::edge::graphql::{Answer, AppSchema, RequestAuth};
use crate::edge::http::AppState;

/// Executes UI operations directly against the schema as the request's caller.
struct InProcessTransport {
    schema: AppSchema,
    auth: RequestAuth,
}

impl GraphqlTransport for InProcessTransport {
    fn execute(&self, body: String) -> TransportFuture {
        let schema = self.schema.clone();
        let auth = self.auth.clone();
        Box::pin(async move {
            let request: async_graphql::Request =
                serde_json::from_str(&body).map_err(|e| ApiError {
                    message: format!("bad request: {e}"),
                    code: Some("BAD_USER_INPUT".into()),
                })?;
            count_graphql_operation(request.operation_name.as_deref(), "ssr");
            match schema.answer(request, auth).await {
                Answer::Text(text) => String::from_utf8(text.to_vec()).map_err(|e| ApiError {
                    message: format!("cannot decode response: {e}"),
                    code: None,
                }),
                Answer::Response(response) => {
                    serde_json::to_string(&response).map_err(|e| ApiError {
                        message: format!("cannot encode response: {e}"),
                        code: None,
                    })
                }
            }
        })
    }
}

/// Renders any UI route (auth was checked by the page guard).
pub async fn render_page(State(state): State<AppState>, request: Request) -> Response {
    let auth = request
        .extensions()
        .get::<RequestAuth>()
        .cloned()
        .unwrap_or_default();
    let schema = state.schema.clone();
    let options = state.leptos.clone();
    // The page is rendered whole once its data has arrived and sent in one piece: streaming
    // it in order sent the same bytes in many writes, each through hyper and the socket
    // (`scripts/bench-ab.sh`: +14 % pages/s, BENCHMARKS.md). Its data comes from this
    // process's database, so the first byte waits milliseconds at most.
    let handler = leptos_axum::render_app_async_with_context(
        move || {
            provide_context(Transport::new(InProcessTransport {
                schema: schema.clone(),
                auth: auth.clone(),
            }))
        },
        move || app::shell(options.clone()),
    );
    let mut response = handler(request).await.into_response();
    // Pages carry the signed-in user's data: no cache keeps them (the assets they load are
    // content-named and cached for good; see edge/http/assets.rs).
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
