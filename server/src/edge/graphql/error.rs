//! GraphQL errors with a stable `extensions.code`.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts any `Display`
//! type into an error *without* a code, so `?` on an `ApiError` must go through the `From`
//! below, which always sets `extensions.code`.

use async_graphql::ErrorExtensions;

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    InvalidCredentials,
    Forbidden(String),
    BadUserInput(String),
    NotFound(String),
    Conflict(String),
    /// Too many requests or sign-ins; the message says when to retry.
    RateLimited(String),
    /// Detail is logged, never sent.
    Internal,
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => {
                "sign in first: this needs a session or an API token".to_owned()
            }
            ApiError::InvalidCredentials => "invalid username or password".to_owned(),
            ApiError::Forbidden(m)
            | ApiError::BadUserInput(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::RateLimited(m) => m.clone(),
            ApiError::Internal => "internal error".to_owned(),
        }
    }

    pub fn extension_code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::BadUserInput(_) => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Logs `error` and returns the opaque internal error.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        ApiError::Internal
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.extension_code();
        async_graphql::Error::new(error.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

impl From<crate::services::auth::AuthError> for ApiError {
    fn from(error: crate::services::auth::AuthError) -> Self {
        use crate::services::auth::AuthError;
        match error {
            AuthError::InvalidCredentials => ApiError::InvalidCredentials,
            AuthError::InvalidInput(msg) => ApiError::BadUserInput(msg),
            AuthError::UserExists(name) => {
                ApiError::Conflict(format!("user `{name}` already exists"))
            }
            AuthError::NoSuchToken(id) => ApiError::NotFound(format!("no API token with id {id}")),
            locked @ AuthError::Locked(_) => ApiError::RateLimited(locked.to_string()),
            AuthError::NoSuchUser(name) => ApiError::NotFound(format!("no user `{name}`")),
            other @ (AuthError::Db(_) | AuthError::Hash(_)) => ApiError::internal(other),
        }
    }
}
