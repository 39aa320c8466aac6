//! The database: SQLite (embedded default) or PostgreSQL, migrated at start.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

/// Connects and applies pending migrations. On PostgreSQL, replicas starting together take
/// turns: a session advisory lock on a connection of its own is held while migrating, so the
/// second finds the work done.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        Migrator::up(&db, None).await?;
        return Ok(db);
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        // No maintenance task (see `connect`).
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    let lock = Database::connect(options).await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let migrated = Migrator::up(&db, None).await;
    let _ = lock
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    let _ = lock.close().await;
    migrated?;
    Ok(db)
}

/// The advisory lock key replicas migrate under (the audit chain uses 7343657).
const MIGRATION_LOCK: i64 = 7343658;

/// Connects without migrating. SQLite files (and their directory) are created when missing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // No idle reaping and no lifetime recycling, hence no pool maintenance task: in sqlx
        // 0.9.0 that task can spin at 100% CPU forever after an idle-count underflow
        // (launchbadge/sqlx#3645), seen here as a finished `awoooi user add` that never
        // exited. A broken PostgreSQL connection is still replaced: sqlx pings one before
        // handing it out.
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // A SQLite connection is a handle on a file in this process: nothing between it and
        // the database can break. Not pinged before each use, which was a round trip to its
        // worker thread for every statement (three per page of incidents).
        options.test_before_acquire(false);
        // SQLite's defaults cost the ingest writer dearly (BENCHMARKS.md, "Ingest"): with a
        // 2 MiB page cache, statement journals in a temporary file and a checkpoint every
        // 1,000 WAL pages, run by the committing writer, a profile of the 32-connection run
        // put half of the process in SQLite: re-reading index pages from the file (10 % of
        // all samples), spilling dirty pages mid-transaction (6 %), journaling multi-row
        // statements (11 %) and checkpointing the same hot pages again and again (8 %). A
        // page cache of up to 32 MiB per connection (taken only as pages are read), statement
        // journals in memory and a checkpoint every 8,000 pages (a WAL of up to 32 MiB) keep
        // that in memory. Durability is unchanged: every commit still syncs the WAL.
        options.map_sqlx_sqlite_opts(|o| {
            o.pragma("cache_size", "-32768")
                .pragma("temp_store", "MEMORY")
                .pragma("wal_autocheckpoint", "8000")
        });
    }
    let db = Database::connect(options).await?;
    if url.starts_with("sqlite:") {
        // WAL lets readers proceed during writes; it is a property of the file, set once.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once (with a
/// no-op write), so a read-then-write transaction cannot fail with `SQLITE_BUSY_SNAPSHOT` when
/// another connection commits in between; it waits its turn instead (busy timeout).
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        txn.execute_unprepared("UPDATE seaql_migrations SET version = version WHERE 0")
            .await?;
    }
    Ok(txn)
}

/// True when every migration has been applied.
pub async fn migrations_applied(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// A URL with its password replaced, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, sqlite_path};

    #[test]
    fn finds_the_sqlite_file_in_a_url() {
        assert_eq!(
            sqlite_path("sqlite://./data/a.db?mode=rwc"),
            Some("./data/a.db")
        );
        assert_eq!(sqlite_path("sqlite:///abs/a.db"), Some("/abs/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    /// A SQLite connection from `connect` has the page cache, in-memory statement journals,
    /// checkpoint interval and journal mode `connect` sets.
    #[tokio::test]
    async fn sqlite_connections_get_the_tuned_pragmas() {
        use sea_orm::{ConnectionTrait, QueryResult, Statement};
        let dir = std::env::temp_dir().join(format!("awoooi-pragmas-{}", std::process::id()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let db = super::connect(&url).await.unwrap();
        let pragma = |name: &str| {
            let statement =
                Statement::from_string(db.get_database_backend(), format!("PRAGMA {name}"));
            let db = db.clone();
            async move { db.query_one_raw(statement).await.unwrap().unwrap() }
        };
        let number = |row: QueryResult| row.try_get_by_index::<i64>(0).unwrap();
        assert_eq!(number(pragma("cache_size").await), -32768);
        assert_eq!(number(pragma("temp_store").await), 2, "MEMORY");
        assert_eq!(number(pragma("wal_autocheckpoint").await), 8000);
        let mode = pragma("journal_mode").await;
        assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://awoooi:s3cret@db:5432/awoooi"),
            "postgres://awoooi:***@db:5432/awoooi"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("sqlite://./data/awoooi.db?mode=rwc"),
            "sqlite://./data/awoooi.db?mode=rwc"
        );
    }
}

/// Whether the database answered its latest probe. A PostgreSQL database is probed every
/// 250 ms over a connection of its own (never the pool's, so a busy pool is not mistaken for
/// an absent database), each probe cut off after 500 ms; requests that need the database can
/// then answer `503` at once while it is away, instead of each waiting for the pool's acquire
/// timeout. An embedded SQLite file is always up.
#[derive(Clone)]
pub struct DbHealth(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl DbHealth {
    const EVERY: Duration = Duration::from_millis(250);
    const LIMIT: Duration = Duration::from_millis(500);

    /// Starts probing `url` (no probe for SQLite).
    pub fn watch(url: &str) -> DbHealth {
        let health = DbHealth(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        )));
        if !url.starts_with("postgres") {
            return health;
        }
        let flag = health.0.clone();
        let url = url.to_owned();
        tokio::spawn(async move {
            let mut probe: Option<DatabaseConnection> = None;
            loop {
                let up = tokio::time::timeout(Self::LIMIT, async {
                    if probe.is_none() {
                        let mut options = ConnectOptions::new(url.clone());
                        options
                            .max_connections(1)
                            .min_connections(0)
                            .connect_timeout(Self::LIMIT)
                            .acquire_timeout(Self::LIMIT)
                            // No maintenance task (see `connect`).
                            .idle_timeout(None)
                            .max_lifetime(None)
                            .sqlx_logging(false);
                        probe = Database::connect(options).await.ok();
                    }
                    match &probe {
                        Some(db) => db.execute_unprepared("SELECT 1").await.is_ok(),
                        None => false,
                    }
                })
                .await
                .unwrap_or(false);
                if !up {
                    // A fresh connection next time: the old one may be half-dead.
                    probe = None;
                }
                let was = flag.swap(up, std::sync::atomic::Ordering::Relaxed);
                if was != up {
                    if up {
                        tracing::info!("database reachable again");
                    } else {
                        tracing::warn!(
                            "database unreachable: refusing requests that need it with 503"
                        );
                    }
                }
                tokio::time::sleep(Self::EVERY).await;
            }
        });
        health
    }

    pub fn is_up(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
