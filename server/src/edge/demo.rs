//! `--demo`: demo users with one shared password, a loud banner, loopback only by default.

use std::net::SocketAddr;

use engine::Role;
use sea_orm::DatabaseConnection;

use crate::services::auth::{self, AuthError};

pub const DEMO_USERS: [(&str, Role); 6] = [
    ("alice", Role::Devops),
    ("bob", Role::Sre),
    ("carol", Role::Cto),
    ("dave", Role::Ciso),
    ("erin", Role::Viewer),
    ("admin", Role::Admin),
];

/// The seed's 3 AM scenario: (alert, service, description).
pub const SCENARIO: [(&str, &str, &str); 2] = [
    (
        "ConnectionsExhausted",
        "postgres-db",
        "connection pool exhausted: 100 of 100 connections in use",
    ),
    (
        "HighErrorRate",
        "frontend",
        "5xx rate above 15% for 5 minutes",
    ),
];

/// The demo password: `AWOOOI_DEMO_PASSWORD`, else a fresh random one (`generated` = true).
pub fn demo_password(from_env: Option<String>) -> (String, bool) {
    match from_env.filter(|p| !p.is_empty()) {
        Some(password) => (password, false),
        None => (hex::encode(rand::random::<[u8; 8]>()), true),
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "--demo refuses to listen on {0}: demo accounts share one password. \
     Bind to 127.0.0.1 or pass --demo-allow-remote"
)]
pub struct RemoteDemoRefused(pub SocketAddr);

pub fn check_bind(bind: SocketAddr, allow_remote: bool) -> Result<(), RemoteDemoRefused> {
    if bind.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(RemoteDemoRefused(bind))
    }
}

/// Creates the demo users, or resets them to the current demo password.
pub async fn seed(db: &DatabaseConnection, password: &str) -> Result<(), AuthError> {
    for (name, role) in DEMO_USERS {
        auth::upsert_user(db, name, role, password).await?;
    }
    Ok(())
}

pub fn banner(bind: SocketAddr, password: &str, generated: bool) -> String {
    let users = DEMO_USERS
        .iter()
        .map(|(name, role)| format!("{name} ({role})"))
        .collect::<Vec<_>>()
        .join(", ");
    let origin = if generated {
        "generated for this run; set AWOOOI_DEMO_PASSWORD to choose one"
    } else {
        "from AWOOOI_DEMO_PASSWORD"
    };
    let rule = "!".repeat(72);
    format!(
        "\n{rule}\n!!  DEMO MODE: not for production. Demo accounts share one password.\n\
         !!  Open http://{bind}/\n!!  Users: {users}\n!!  Password: {password}   ({origin})\n{rule}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_refuses_public_binds_unless_allowed() {
        let local: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert!(check_bind(local, false).is_ok());
        assert!(check_bind("[::1]:3000".parse().unwrap(), false).is_ok());
        let err = check_bind(public, false).unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:3000") && err.contains("--demo-allow-remote"),
            "{err}"
        );
        assert!(check_bind(public, true).is_ok());
    }

    #[test]
    fn password_comes_from_env_or_is_generated() {
        assert_eq!(
            demo_password(Some("hunter2hunter2".into())),
            ("hunter2hunter2".into(), false)
        );
        let (a, generated) = demo_password(None);
        assert!(generated && a.len() == 16);
        assert_ne!(a, demo_password(Some(String::new())).0);
        let banner = banner("127.0.0.1:3000".parse().unwrap(), &a, true);
        assert!(
            banner.contains(&a)
                && banner.contains("alice (DEVOPS)")
                && banner.contains("DEMO MODE")
        );
    }
}
