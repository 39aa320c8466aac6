//! The UI's only way to data: typed GraphQL operations over a [`Transport`].
//!
//! Each operation is a `.graphql` document in this folder, checked against the committed
//! `schema.graphql` at compile time by `graphql_client`. During SSR the server injects its
//! transport through Leptos context and executes against the schema in-process (no HTTP hop);
//! in the browser, islands POST to `/graphql`. Subscriptions run in the browser only (see [`ws`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use graphql_client::GraphQLQuery;
use serde::{Deserialize, Serialize};

mod states;

pub use states::{
    AlertStatus, ApprovalStatus, Decision, ExecutionStatus, FixOutcome, IncidentStatus, RiskLevel,
    Severity, TimelineKind,
};

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(feature = "hydrate")]
pub mod ws;

/// `DateTime` scalar: RFC 3339 text, as the server sends it.
pub type DateTime = String;
/// `JSON` scalar.
pub type JSON = serde_json::Value;

mod operations;

pub use operations::*;

/// A failed operation as the UI shows it: the server's message and `extensions.code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub message: String,
    pub code: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl ApiError {
    pub fn transport(message: impl Into<String>) -> Self {
        ApiError {
            message: message.into(),
            code: None,
        }
    }
}

/// The boxed future a transport returns: the GraphQL JSON response, as text.
pub type TransportFuture = Pin<Box<dyn Future<Output = Result<String, ApiError>> + Send>>;

/// Executes a GraphQL request body (`{query, variables, operationName}`, as JSON text)
/// somewhere.
///
/// Requests and responses travel as text and are decoded straight into their typed structs:
/// decoding through `serde_json::Value` as well would compile a second deserializer for every
/// response type into the browser's bundle.
pub trait GraphqlTransport: Send + Sync {
    fn execute(&self, body: String) -> TransportFuture;
}

/// The transport in Leptos context.
#[derive(Clone)]
pub struct Transport(Arc<dyn GraphqlTransport>);

impl Transport {
    pub fn new(inner: impl GraphqlTransport + 'static) -> Self {
        Transport(Arc::new(inner))
    }

    /// The browser's transport: `POST /graphql` with the session cookie.
    #[cfg(feature = "hydrate")]
    pub fn browser() -> Self {
        Transport::new(browser::FetchTransport)
    }

    /// Runs one typed operation.
    pub async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, ApiError> {
        self.run_as::<Q, Q::ResponseData>(variables).await
    }

    /// Runs operation `Q`, decoding its data into `T` rather than `Q`'s generated type: for
    /// answers the UI keeps as its own type (an approval's `Card`), so the browser's bundle
    /// carries that type's decoder once instead of one generated decoder per operation.
    pub async fn run_as<Q: GraphQLQuery, T: for<'de> Deserialize<'de>>(
        &self,
        variables: Q::Variables,
    ) -> Result<T, ApiError> {
        let body = serde_json::to_string(&Q::build_query(variables))
            .map_err(|e| ApiError::transport(format!("cannot encode request: {e}")))?;
        let raw = self.0.execute(body).await?;
        decode::<T>(&raw)
    }
}

/// Turns a GraphQL JSON response into data or the first error.
pub fn decode<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, ApiError> {
    let response: graphql_client::Response<T> = serde_json::from_str(raw)
        .map_err(|e| ApiError::transport(format!("unexpected response: {e}")))?;
    from_response(response)
}

/// A decoded GraphQL response's data, or its first error.
pub fn from_response<T>(response: graphql_client::Response<T>) -> Result<T, ApiError> {
    if let Some(error) = response.errors.and_then(first_error) {
        return Err(error);
    }
    response
        .data
        .ok_or_else(|| ApiError::transport("response carried neither data nor errors"))
}

/// The first of a response's errors, with its `extensions.code`.
pub fn first_error(errors: Vec<graphql_client::Error>) -> Option<ApiError> {
    let error = errors.into_iter().next()?;
    let code = error
        .extensions
        .as_ref()
        .and_then(|ext| ext.get("code"))
        .and_then(|code| code.as_str())
        .map(str::to_owned);
    Some(ApiError {
        message: error.message,
        code,
    })
}

/// The transport from context (the server's, during SSR), else in the browser its own
/// transport (islands hydrate without the app's context); else an error the page can show.
pub fn use_transport() -> Result<Transport, ApiError> {
    if let Some(transport) = leptos::prelude::use_context::<Transport>() {
        return Ok(transport);
    }
    #[cfg(feature = "hydrate")]
    return Ok(Transport::browser());
    #[cfg(not(feature = "hydrate"))]
    Err(ApiError::transport("no GraphQL transport in context"))
}

/// Reloads the page from the server: what an island does after a change the server-rendered
/// part of the page shows (a new silence in the list, say). Nothing outside the browser.
pub fn reload_page() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_returns_data_or_the_first_error_with_its_code() {
        let ok: me::ResponseData =
            decode(r#"{"data": {"me": {"username": "alice", "role": "DEVOPS"}}}"#).unwrap();
        assert_eq!(ok.me.unwrap().username, "alice");

        let err = decode::<server_info::ResponseData>(
            r#"{"data": null,
                "errors": [{"message": "sign in first", "extensions": {"code": "UNAUTHENTICATED"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(err.to_string(), "sign in first (UNAUTHENTICATED)");

        let garbage = decode::<me::ResponseData>(r#"{"nope": 1}"#).unwrap_err();
        assert!(
            garbage.message.contains("neither data nor errors"),
            "{garbage}"
        );
    }
}
