//! The alert endpoints: Alertmanager, Grafana and the generic (optionally HMAC-signed) webhook.
//!
//! `202` only after the alerts are committed; `400` naming the bad field; `401` without a valid
//! token or signature; `413` past the body limit (a layer on these routes); `503` when storage
//! is down. A refused request stores nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use engine::alert::AlertEvent;
use engine::input::{self, PayloadError};
use serde_json::json;

use crate::base::signing;
use crate::edge::graphql::RequestAuth;
use crate::edge::http::AppState;

pub const SIGNATURE_HEADER: &str = "x-awoooi-signature";

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn bad_payload(error: PayloadError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error.to_string(), "field": error.field})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "a valid bearer token (awoooi token create) is required",
    )
}

async fn store(state: &AppState, events: Vec<AlertEvent>) -> Response {
    if !state.health.is_up() {
        // Never 2xx for what was not stored, and no waiting for a pool that cannot connect.
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable; nothing was stored, retry later",
        );
    }
    match state.ingest.submit(events).await {
        Ok(receipt) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "accepted": receipt.accepted,
                "silenced": receipt.silenced,
                "incidents": receipt.incidents.iter().map(i32::to_string).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "alerts not stored");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable; nothing was stored, retry later",
            )
        }
    }
}

fn signed_in(auth: &RequestAuth) -> bool {
    auth.principal.is_some()
}

type Parser = fn(&[u8]) -> Result<Vec<AlertEvent>, PayloadError>;

/// The bearer-authenticated endpoints differ only in their parser.
async fn with_bearer(state: &AppState, auth: &RequestAuth, body: &[u8], parse: Parser) -> Response {
    if !signed_in(auth) {
        return unauthorized();
    }
    match parse(body) {
        Ok(events) => store(state, events).await,
        Err(error) => bad_payload(error),
    }
}

pub async fn alertmanager(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    body: Bytes,
) -> Response {
    with_bearer(&state, &auth, &body, input::parse_alertmanager).await
}

pub async fn grafana(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    body: Bytes,
) -> Response {
    with_bearer(&state, &auth, &body, input::parse_grafana).await
}

/// The `X-Awoooi-Signature` value for `body` under `secret` (for senders and tests).
pub fn signature(secret: &str, body: &[u8]) -> String {
    signing::body_signature(secret, body)
}

/// `sha256=<hex>` of the body under `secret`, compared in constant time.
pub fn signature_valid(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    header.is_some_and(|given| signing::verify(secret, "sha256=", &[body], given))
}

pub async fn generic(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let authorised = match (&state.config.ingest.webhook_secret, signature) {
        // A signature, when sent, must be right, whatever else the request carries.
        (Some(secret), Some(_)) => signature_valid(secret, &body, signature),
        (None, Some(_)) => false,
        (_, None) => signed_in(&auth),
    };
    if !authorised {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token or X-Awoooi-Signature (sha256=<hex HMAC of the body>) is required",
        );
    }
    match input::parse_generic(&body) {
        Ok(events) => store(&state, events).await,
        Err(error) => bad_payload(error),
    }
}

#[cfg(test)]
mod tests {
    use super::signature_valid;

    #[test]
    fn signatures_are_checked_exactly() {
        let body = br#"{"name":"x"}"#;
        let computed = {
            use hmac::{Hmac, Mac};
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"s3cret").unwrap();
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        assert!(signature_valid("s3cret", body, Some(&computed)));
        assert!(!signature_valid("other", body, Some(&computed)));
        assert!(!signature_valid("s3cret", b"{}", Some(&computed)));
        assert!(!signature_valid(
            "s3cret",
            body,
            Some(&computed[..computed.len() - 2])
        ));
        assert!(!signature_valid("s3cret", body, Some("md5=abc")));
        assert!(!signature_valid("s3cret", body, None));
    }
}
