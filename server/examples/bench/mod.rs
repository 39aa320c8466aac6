//! What the example benchmarks share: a real server in this process, on a loopback port, over
//! a scratch data directory (SQLite there unless a database URL is given), with an SRE token.
//! Each example uses what it needs of it.
#![allow(dead_code)]

use std::path::PathBuf;

use sea_orm::DatabaseConnection;
use server::services::ingest::Ingest;

pub struct Bench {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An SRE API token.
    pub token: String,
    pub db: DatabaseConnection,
    pub ingest: Ingest,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// A fresh scratch directory for benchmark `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("awoooi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server on `database_url` (else SQLite in `dir`) with the extra flags `extra`.
pub async fn serve(dir: &std::path::Path, database_url: Option<String>, extra: &[&str]) -> Bench {
    serve_with_env(dir, database_url, extra, &[]).await
}

/// [`serve`] with environment variables for the configuration (`AWOOOI_*` twins).
pub async fn serve_with_env(
    dir: &std::path::Path,
    database_url: Option<String>,
    extra: &[&str],
    env: &[(&str, String)],
) -> Bench {
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("awoooi.db").display()));
    let mut argv = vec![
        "awoooi",
        "--database-url",
        &url,
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    argv.extend(extra);
    let cli = <server::edge::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let config = server::edge::config::Config::resolve(&cli, |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let database = config.database_kind();
    let state = server::edge::state::build_state(config).await.unwrap();
    let (token, _) =
        server::services::auth::create_api_token(&state.db, "bench", engine::Role::Sre)
            .await
            .unwrap();
    let (db, ingest) = (state.db.clone(), state.ingest.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, server::edge::http::router(state))
            .await
            .unwrap();
    });
    Bench {
        base,
        token,
        db,
        ingest,
        database,
    }
}
