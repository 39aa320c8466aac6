//! Users, passwords, sessions and API tokens.
//!
//! Passwords are stored as Argon2id hashes. Tokens are 256 random bits shown once; only their
//! SHA-256 is stored, so a database leak yields no usable token. A login for an unknown user
//! still verifies against a dummy hash, so the two failures cost the same time.

pub mod cache;
pub mod lockout;

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use engine::Role;
use entity::{api_token, session, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "awoooi_session";
const SESSION_PREFIX: &str = "awoooi_s_";
const API_TOKEN_PREFIX: &str = "awoooi_t_";
pub const MIN_PASSWORD_LEN: usize = 8;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i32,
    pub name: String,
    pub role: Role,
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ApiToken,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Deliberately the same for an unknown user and a wrong password.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidInput(String),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no API token with id {0}")]
    NoSuchToken(i32),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Too many failed sign-ins for this name; minutes until it may try again.
    #[error("too many failed sign-ins for this user; try again in {0} minute(s)")]
    Locked(u64),
    #[error("no user `{0}`")]
    NoSuchUser(String),
}

/// A fresh login.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: user::Model,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user.username)
            .finish()
    }
}

pub fn validate_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidInput(format!(
            "invalid username `{name}`: use 1-64 characters from a-z, 0-9, '.', '_', '-'"
        )))
    }
}

pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::InvalidInput(format!(
            "password too short: at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

fn hash_password_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify_password_blocking(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password_blocking(&hex::encode(rand::random::<[u8; 16]>()))
            .expect("argon2 hashes a random password")
    })
}

pub async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?
}

async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password_blocking(&hash, &password))
        .await
        .unwrap_or(false)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// Adds a user; fails if the name is taken.
pub async fn add_user(
    db: &DatabaseConnection,
    username: &str,
    role: Role,
    password: &str,
) -> Result<user::Model, AuthError> {
    validate_username(username)?;
    validate_password(password)?;
    if find_user(db, username).await?.is_some() {
        return Err(AuthError::UserExists(username.to_owned()));
    }
    let password_hash = hash_password(password.to_owned()).await?;
    Ok(user::ActiveModel {
        username: Set(username.to_owned()),
        role: Set(role.as_str().to_owned()),
        password_hash: Set(password_hash),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Creates the user or resets its role and password (used by `--demo`).
pub async fn upsert_user(
    db: &DatabaseConnection,
    username: &str,
    role: Role,
    password: &str,
) -> Result<user::Model, AuthError> {
    match find_user(db, username).await? {
        None => add_user(db, username, role, password).await,
        Some(existing) => {
            validate_password(password)?;
            let mut active: user::ActiveModel = existing.into();
            active.role = Set(role.as_str().to_owned());
            active.password_hash = Set(hash_password(password.to_owned()).await?);
            Ok(active.update(db).await?)
        }
    }
}

async fn find_user(db: &DatabaseConnection, username: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await
}

/// Checks the password and opens a session.
pub async fn login(
    db: &DatabaseConnection,
    lockout: &lockout::Lockout,
    username: &str,
    password: &str,
    ttl: Duration,
) -> Result<NewSession, AuthError> {
    if let Err(wait) = lockout.check(username).await {
        return Err(AuthError::Locked(lockout::minutes(wait)));
    }
    let found = find_user(db, username).await?;
    let hash = found
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let verified = verify_password(hash, password.to_owned()).await;
    let user = match (found, verified) {
        (Some(user), true) => user,
        _ => {
            lockout.failed(username).await;
            return Err(AuthError::InvalidCredentials);
        }
    };
    lockout.succeeded(username).await;
    let token = new_token(SESSION_PREFIX);
    let now = Utc::now();
    let expires_at = now + ttl;
    session::ActiveModel {
        user_id: Set(user.id),
        token_hash: Set(token_hash(&token)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(NewSession {
        token,
        expires_at,
        user,
    })
}

/// The `Set-Cookie` value carrying a session token (HttpOnly, SameSite=Lax).
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// Ends the session of `token` (a no-op for unknown tokens).
pub async fn logout(db: &DatabaseConnection, token: &str) -> Result<(), DbErr> {
    session::Entity::delete_many()
        .filter(session::Column::TokenHash.eq(token_hash(token)))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of `username` (API tokens are revoked one by one); returns how many.
pub async fn revoke_sessions(db: &DatabaseConnection, username: &str) -> Result<u64, AuthError> {
    let user = find_user(db, username)
        .await?
        .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
    let ended = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.id))
        .exec(db)
        .await?;
    Ok(ended.rows_affected)
}

/// Who a bearer token or session cookie belongs to, if anyone, and when the credential is a
/// session, when it ends. Requests go through [`cache::Credentials`], which calls this when
/// its answer is not fresh.
pub async fn resolve_until(
    db: &DatabaseConnection,
    token: &str,
) -> Result<(Option<Principal>, Option<DateTime<Utc>>), DbErr> {
    let hash = token_hash(token);
    if token.starts_with(SESSION_PREFIX) {
        let found = session::Entity::find()
            .filter(session::Column::TokenHash.eq(hash))
            .find_also_related(user::Entity)
            .one(db)
            .await?;
        return Ok(match found {
            Some((session, Some(user))) if session.expires_at > Utc::now() => {
                (user_principal(&user), Some(session.expires_at))
            }
            _ => (None, None),
        });
    }
    if token.starts_with(API_TOKEN_PREFIX) {
        let found = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash))
            .one(db)
            .await?;
        return Ok((
            found.filter(|t| t.revoked_at.is_none()).and_then(|t| {
                Some(Principal {
                    id: t.id,
                    role: t.role.parse().ok()?,
                    name: t.name,
                    kind: PrincipalKind::ApiToken,
                })
            }),
            None,
        ));
    }
    Ok((None, None))
}

pub fn user_principal(user: &user::Model) -> Option<Principal> {
    Some(Principal {
        id: user.id,
        name: user.username.clone(),
        role: user.role.parse().ok()?,
        kind: PrincipalKind::User,
    })
}

/// Creates an API token; the returned string is the only time it is visible.
pub async fn create_api_token(
    db: &DatabaseConnection,
    name: &str,
    role: Role,
) -> Result<(String, api_token::Model), AuthError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(AuthError::InvalidInput(
            "token name must be 1-128 characters".into(),
        ));
    }
    let token = new_token(API_TOKEN_PREFIX);
    let model = api_token::ActiveModel {
        name: Set(name.to_owned()),
        role: Set(role.as_str().to_owned()),
        token_hash: Set(token_hash(&token)),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((token, model))
}

pub async fn list_api_tokens(db: &DatabaseConnection) -> Result<Vec<api_token::Model>, DbErr> {
    api_token::Entity::find()
        .order_by_asc(api_token::Column::Id)
        .all(db)
        .await
}

pub async fn revoke_api_token(db: &DatabaseConnection, id: i32) -> Result<(), AuthError> {
    let token = api_token::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AuthError::NoSuchToken(id))?;
    if token.revoked_at.is_none() {
        let mut active: api_token::ActiveModel = token.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(db).await?;
    }
    Ok(())
}

/// `[auth]`, as the file gives it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthConfig {
    pub session_ttl_minutes: Option<u32>,
    pub cookie_secure: Option<bool>,
    pub max_failed_logins: Option<u32>,
    pub lockout_minutes: Option<u32>,
    pub credential_cache_seconds: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_passwords_are_checked() {
        for ok in ["alice", "sre-bob", "c.arol_2"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "bob smith", "x;drop", &"a".repeat(65)] {
            let err = validate_username(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid username"), "{bad}: {err}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password_blocking(&hash, "correct horse"));
        assert!(!verify_password_blocking(&hash, "battery staple"));
        assert!(!verify_password_blocking("not a hash", "correct horse"));
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let a = new_token(SESSION_PREFIX);
        let b = new_token(SESSION_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.len(), SESSION_PREFIX.len() + 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        let debug = format!(
            "{:?}",
            NewSession {
                token: a.clone(),
                expires_at: Utc::now(),
                user: user::Model {
                    id: 1,
                    username: "alice".into(),
                    role: "DEVOPS".into(),
                    password_hash: String::new(),
                    created_at: Utc::now(),
                },
            }
        );
        assert!(!debug.contains(&a), "{debug}");
    }
}
