//! Sign-in, sign-out, `me`, and API tokens.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use engine::Role;
use sea_orm::DatabaseConnection;

use super::{ApiError, RequestAuth, principal, require_role};
use crate::edge::config::AuthConfig;
use crate::services::auth::{self, Principal};

/// A role of the risk matrix.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::Role", name = "Role")]
pub enum RoleEnum {
    Admin,
    Devops,
    Sre,
    Cto,
    Ciso,
    Viewer,
}

/// A person, or an integration acting through an API token.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(
    remote = "crate::services::auth::PrincipalKind",
    name = "PrincipalKind"
)]
pub enum PrincipalKindEnum {
    User,
    ApiToken,
}

/// Someone AWOOOI knows.
#[derive(SimpleObject)]
pub struct User {
    id: async_graphql::ID,
    username: String,
    role: RoleEnum,
    kind: PrincipalKindEnum,
}

impl From<&Principal> for User {
    fn from(p: &Principal) -> Self {
        User {
            id: p.id.into(),
            username: p.name.clone(),
            role: p.role.into(),
            kind: p.kind.into(),
        }
    }
}

/// A signed-in session. Browsers also receive it as an HttpOnly cookie.
#[derive(SimpleObject)]
pub struct Session {
    /// Bearer token for `Authorization: Bearer …`.
    token: String,
    expires_at: DateTime<Utc>,
    user: User,
}

/// A freshly created API token; `token` is shown only here.
#[derive(SimpleObject)]
pub struct ApiTokenCreated {
    id: async_graphql::ID,
    name: String,
    role: RoleEnum,
    token: String,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The caller, or null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        principal(ctx).ok().map(User::from)
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in. A wrong username and a wrong password get the same error.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        let db = ctx.data::<DatabaseConnection>()?;
        let config = ctx.data::<AuthConfig>()?;
        let ttl = chrono::Duration::minutes(i64::from(config.session_ttl_minutes));
        let lockout = ctx.data::<std::sync::Arc<crate::services::auth::lockout::Lockout>>()?;
        let session = match auth::login(db, lockout, username.trim(), &password, ttl).await {
            Ok(session) => session,
            Err(error) => {
                if matches!(error, auth::AuthError::InvalidCredentials) {
                    crate::base::audit::record_or_log(
                        db,
                        "anonymous",
                        "user.login_failed",
                        &format!(
                            "user:{}",
                            username.trim().chars().take(64).collect::<String>()
                        ),
                        serde_json::json!({"via": "graphql"}),
                    )
                    .await;
                }
                return Err(ApiError::from(error).into());
            }
        };
        ctx.append_http_header(
            "set-cookie",
            auth::session_cookie(&session.token, ttl.num_seconds(), config.cookie_secure),
        );
        let principal = auth::user_principal(&session.user)
            .ok_or_else(|| ApiError::internal("stored user has an unknown role"))?;
        tracing::info!(user = %principal.name, "signed in");
        crate::base::audit::record_or_log(
            db,
            &principal.name,
            "user.login",
            &format!("user:{}", principal.name),
            serde_json::json!({"via": "graphql"}),
        )
        .await;
        Ok(Session {
            token: session.token,
            expires_at: session.expires_at,
            user: User::from(&principal),
        })
    }

    /// Ends the caller's session and clears the cookie. True if a session was ended.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let db = ctx.data::<DatabaseConnection>()?;
        let config = ctx.data::<AuthConfig>()?;
        ctx.append_http_header(
            "set-cookie",
            auth::clear_session_cookie(config.cookie_secure),
        );
        let Some(token) = ctx.data_opt::<RequestAuth>().and_then(|a| a.token.clone()) else {
            return Ok(false);
        };
        auth::logout(db, &token).await.map_err(ApiError::internal)?;
        ctx.data::<std::sync::Arc<auth::cache::Credentials>>()?
            .forget_all();
        if let Some(who) = ctx
            .data_opt::<RequestAuth>()
            .and_then(|a| a.principal.as_ref())
        {
            crate::base::audit::record_or_log(
                db,
                &who.name,
                "user.logout",
                &format!("user:{}", who.name),
                serde_json::json!({}),
            )
            .await;
        }
        Ok(true)
    }

    /// Ends every session of a user, e.g. after a lost laptop (ADMIN only). Returns how many
    /// were ended; their holders must sign in again.
    async fn revoke_sessions(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> async_graphql::Result<i32> {
        let who = require_role(ctx, &[Role::Admin])?;
        let db = ctx.data::<DatabaseConnection>()?;
        let ended = auth::revoke_sessions(db, username.trim())
            .await
            .map_err(ApiError::from)?;
        ctx.data::<std::sync::Arc<auth::cache::Credentials>>()?
            .forget_all();
        tracing::info!(by = %who.name, user = %username.trim(), ended, "sessions revoked");
        crate::base::audit::record_or_log(
            db,
            &who.name,
            "user.sessions_revoked",
            &format!("user:{}", username.trim()),
            serde_json::json!({"ended": ended}),
        )
        .await;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// Creates an API token for an integration (ADMIN only). The token is shown once.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        role: RoleEnum,
    ) -> async_graphql::Result<ApiTokenCreated> {
        let who = require_role(ctx, &[Role::Admin])?;
        let db = ctx.data::<DatabaseConnection>()?;
        let (token, model) = auth::create_api_token(db, &name, role.into())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(by = %who.name, token_id = model.id, "API token created");
        crate::base::audit::record_or_log(
            db,
            &who.name,
            "token.created",
            &format!("token:{}", model.id),
            serde_json::json!({"name": model.name, "role": model.role}),
        )
        .await;
        Ok(ApiTokenCreated {
            id: model.id.into(),
            name: model.name,
            role,
            token,
        })
    }
}
