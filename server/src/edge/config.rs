//! Configuration: defaults < TOML file < `AWOOOI_*` environment < flags.
//!
//! clap already folds the environment into the flags (`env = "AWOOOI_…"`), so resolving is
//! "flag-or-env, else file, else default" for every setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::base::bus::{BusConfig, BusKind};
use crate::base::telemetry::LogFormat;
use crate::edge::cli::Cli;
use crate::executors::{ClusterConfig, ClusterKind};
use crate::services::approvals::FileApprovalsConfig;
use crate::services::auth::FileAuthConfig;
use crate::services::ingest::FileIngestConfig;
use crate::services::ingest::streams::StreamsConfig;

mod file;

pub use file::*;

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub log_format: LogFormat,
    pub demo: bool,
    pub demo_allow_remote: bool,
    pub topology: Option<PathBuf>,
    pub site_root: PathBuf,
    pub auth: AuthConfig,
    pub shield: ShieldConfig,
    pub ingest: IngestConfig,
    pub streams: StreamsConfig,
    pub brain: crate::services::analysis::brains::BrainConfig,
    pub approvals: crate::services::approvals::ApprovalsConfig,
    pub actions: crate::executors::ActionsConfig,
    pub cluster: ClusterConfig,
    pub knowledge: crate::services::knowledge::KmConfig,
    pub finops: crate::services::finops::FinopsConfig,
    pub notifications: crate::services::notify::NotifyConfig,
    pub archive: crate::services::archive::ArchiveConfig,
    pub oncall: crate::services::oncall::OncallConfig,
    pub bus: BusConfig,
    pub graphql: crate::edge::limits::GraphqlLimits,
    pub http: crate::edge::limits::HttpLimits,
}

#[derive(Clone)]
pub struct IngestConfig {
    /// Alerts of one service within this many minutes join one incident.
    pub correlation_window_minutes: u32,
    /// Topology hops for correlation (1-10).
    pub correlation_depth: u32,
    /// Labels that must match for alerts to share an incident.
    pub correlation_labels: Vec<String>,
    /// Larger alert requests get `413`.
    pub max_body_bytes: usize,
    /// HMAC-SHA256 secret of the generic webhook (`X-Awoooi-Signature`), if any.
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestConfig")
            .field(
                "correlation_window_minutes",
                &self.correlation_window_minutes,
            )
            .field("correlation_depth", &self.correlation_depth)
            .field("correlation_labels", &self.correlation_labels)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a login lasts.
    pub session_ttl_minutes: u32,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub cookie_secure: bool,
    /// Failed sign-ins of one user name before it is locked (0: never locked).
    pub max_failed_logins: u32,
    /// How long the failures are counted and the lock lasts.
    pub lockout_minutes: u32,
    /// How long a resolved session or API token is trusted without reading the database
    /// again (0: never). Revocations made elsewhere take effect within it.
    pub credential_cache_seconds: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

impl Config {
    /// Resolves the layers; `env` looks up plain variables (`DATABASE_URL`, `REDIS_URL`).
    pub fn resolve(cli: &Cli, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match &cli.global.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let (global, serve) = (&cli.global, &cli.serve);
        let data_dir = global
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = global
            .database_url
            .clone()
            .or_else(|| env("DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir));
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(invalid(
                "database_url",
                "expected a sqlite:// or postgres:// URL",
            ));
        }
        let redis_url = global
            .redis_url
            .clone()
            .or_else(|| env("REDIS_URL"))
            .or(file.redis_url);
        check_redis_users(&file.streams, &file.bus, redis_url.is_some())?;
        let mut cluster = file.cluster;
        if let Some(path) = serve.cluster.clone() {
            cluster.file = Some(path);
        }
        let mut notifications = file.notifications;
        if let Some(secret) = env("AWOOOI_SLACK_SIGNING_SECRET") {
            notifications.slack.signing_secret = Some(crate::services::notify::Secret(secret));
        }
        let actions = actions_config(file.actions)?;
        let approvals = approvals_config(file.approvals, &actions.declared_risks())?;
        Ok(Config {
            bind: serve
                .bind
                .or(file.bind)
                .unwrap_or_else(|| DEFAULT_BIND.parse().expect("valid default")),
            data_dir,
            database_url,
            redis_url,
            log_format: global
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            demo: serve.demo || file.demo.unwrap_or(false),
            demo_allow_remote: serve.demo_allow_remote || file.demo_allow_remote.unwrap_or(false),
            topology: serve.topology.clone().or(file.topology),
            site_root: serve
                .site_root
                .clone()
                .or(file.site_root)
                .unwrap_or_else(|| PathBuf::from("target/site")),
            auth: auth_config(file.auth)?,
            shield: file.shield,
            streams: file.streams,
            brain: file.brain,
            approvals,
            actions,
            cluster: cluster_config(cluster)?,
            knowledge: knowledge_config(
                file.knowledge,
                env("AWOOOI_KM_WRITE_AWAIT"),
                env("AWOOOI_KM_EMBEDDINGS_MODEL"),
            )?,
            finops: checked("finops", file.finops, |f| f.validate())?,
            notifications: checked("notifications", notifications, |n| n.validate())?,
            archive: archive_config(file.archive, &env)?,
            oncall: checked("oncall", file.oncall, |o| o.validate())?,
            bus: file.bus,
            graphql: checked("graphql", file.graphql, |g| g.validate())?,
            http: checked("http", file.http, |h| h.validate())?,
            ingest: ingest_config(file.ingest, env("AWOOOI_WEBHOOK_SECRET"))?,
        })
    }

    /// `sqlite` or `postgres`, as `serverInfo.database` reports it.
    pub fn database_kind(&self) -> &'static str {
        if self.database_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// `value` once `validate` accepts it; its complaint is reported under `key`.
/// `[archive]`, with the S3 credentials from the environment (never the file).
fn archive_config(
    mut archive: crate::services::archive::ArchiveConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<crate::services::archive::ArchiveConfig, ConfigError> {
    if let Some(s3) = &mut archive.s3 {
        s3.credentials = crate::services::archive::S3Credentials::from_env(env);
        if s3.credentials.is_none() {
            return Err(invalid(
                "archive.s3",
                "needs credentials in the environment: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
            ));
        }
    }
    checked("archive", archive, |a| a.validate())
}

fn checked<T>(
    key: &'static str,
    value: T,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    validate(&value).map_err(|message| invalid(key, message))?;
    Ok(value)
}

/// The stream consumer and the Redis bus need a Redis URL; the bus needs a channel name.
fn check_redis_users(
    streams: &StreamsConfig,
    bus: &BusConfig,
    has_redis: bool,
) -> Result<(), ConfigError> {
    if streams.redis.is_some() && !has_redis {
        return Err(invalid(
            "streams.redis",
            "needs a Redis URL (--redis-url, REDIS_URL or redis_url)",
        ));
    }
    if let Some(kafka) = &streams.kafka {
        kafka
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
    }
    if bus.backend == BusKind::Redis && !has_redis {
        return Err(invalid(
            "bus.backend",
            "`redis` needs a Redis URL (--redis-url, REDIS_URL or redis_url)",
        ));
    }
    if bus.channel.trim().is_empty() {
        return Err(invalid("bus.channel", "must not be empty"));
    }
    Ok(())
}

fn auth_config(file: FileAuthConfig) -> Result<AuthConfig, ConfigError> {
    Ok(AuthConfig {
        session_ttl_minutes: positive(
            "auth.session_ttl_minutes",
            file.session_ttl_minutes.unwrap_or(12 * 60),
        )?,
        cookie_secure: file.cookie_secure.unwrap_or(false),
        max_failed_logins: file.max_failed_logins.unwrap_or(5),
        lockout_minutes: positive("auth.lockout_minutes", file.lockout_minutes.unwrap_or(15))?,
        credential_cache_seconds: match file.credential_cache_seconds.unwrap_or(2) {
            seconds @ 0..=60 => seconds,
            _ => {
                return Err(invalid(
                    "auth.credential_cache_seconds",
                    "must be between 0 (no cache) and 60",
                ));
            }
        },
    })
}

fn actions_config(
    actions: crate::executors::ActionsConfig,
) -> Result<crate::executors::ActionsConfig, ConfigError> {
    crate::executors::shell::validate(&actions.shell)
        .map_err(|message| invalid("actions.shell", message))?;
    crate::executors::mcp::validate(&actions.mcp)
        .map_err(|message| invalid("actions.mcp", message))?;
    Ok(actions)
}

fn cluster_config(cluster: ClusterConfig) -> Result<ClusterConfig, ConfigError> {
    if cluster.backend == ClusterKind::Kubernetes && cluster.file.is_some() {
        return Err(invalid(
            "cluster.file",
            "a simulated cluster fixture cannot be used with backend = \"kubernetes\"",
        ));
    }
    Ok(cluster)
}

/// `[knowledge]`, with `AWOOOI_KM_WRITE_AWAIT` (true/false) over `write_await` and
/// `AWOOOI_KM_EMBEDDINGS_MODEL` (a directory) over `[knowledge.embeddings] model`.
fn knowledge_config(
    mut knowledge: crate::services::knowledge::KmConfig,
    write_await: Option<String>,
    model: Option<String>,
) -> Result<crate::services::knowledge::KmConfig, ConfigError> {
    if let Some(model) = model.filter(|m| !m.trim().is_empty()) {
        knowledge.embeddings.model = Some(model.into());
    }
    if let Some(value) = write_await {
        knowledge.write_await = match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                return Err(invalid(
                    "AWOOOI_KM_WRITE_AWAIT",
                    format!("`{value}` is not true or false"),
                ));
            }
        };
    }
    checked("knowledge", knowledge, |k| k.validate())
}

/// `[ingest]`, with `AWOOOI_WEBHOOK_SECRET` over `webhook_secret`.
fn ingest_config(
    file: FileIngestConfig,
    webhook_secret: Option<String>,
) -> Result<IngestConfig, ConfigError> {
    let correlation_depth = match file.correlation_depth.unwrap_or(3) {
        d @ 1..=10 => d,
        d => {
            return Err(invalid(
                "ingest.correlation_depth",
                format!("{d} hops: between 1 and 10"),
            ));
        }
    };
    let correlation_labels = file
        .correlation_labels
        .unwrap_or_else(|| vec!["namespace".into(), "cluster".into()]);
    if let Some(bad) = correlation_labels.iter().find(|l| l.trim().is_empty()) {
        return Err(invalid(
            "ingest.correlation_labels",
            format!("`{bad}` is not a label name"),
        ));
    }
    Ok(IngestConfig {
        correlation_window_minutes: positive(
            "ingest.correlation_window_minutes",
            file.correlation_window_minutes.unwrap_or(15),
        )?,
        correlation_depth,
        correlation_labels,
        max_body_bytes: positive(
            "ingest.max_body_bytes",
            file.max_body_bytes.unwrap_or(1024 * 1024),
        )?,
        webhook_secret: webhook_secret
            .or(file.webhook_secret)
            .filter(|s| !s.is_empty()),
    })
}

/// `[approvals]` over the defaults; the risks executors declare for their kinds come between
/// the two (so `[approvals.risks]` can still override one).
fn approvals_config(
    file: FileApprovalsConfig,
    declared: &[(String, engine::policy::RiskLevel)],
) -> Result<crate::services::approvals::ApprovalsConfig, ConfigError> {
    let mut policy = engine::policy::PolicyTable::default();
    policy.risks.extend(declared.iter().cloned());
    policy.risks.extend(file.risks);
    if let Some(unknown) = file.unknown_risk {
        policy.unknown = unknown;
    }
    if let Some(namespaces) = file.raise_namespaces {
        policy.raise_namespaces = namespaces;
    }
    policy.raise_labels = file.raise_labels;
    let minutes = positive(
        "approvals.expiry_minutes",
        file.expiry_minutes.unwrap_or(60),
    )?;
    Ok(crate::services::approvals::ApprovalsConfig {
        policy,
        expiry: chrono::Duration::minutes(i64::from(minutes)),
        blast_limit: file.blast_limit.unwrap_or(10),
        execution_lease: chrono::Duration::seconds(i64::from(positive(
            "approvals.execution_lease_seconds",
            file.execution_lease_seconds.unwrap_or(120),
        )?)),
    })
}

fn positive<T: PartialOrd + Default>(key: &'static str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(invalid(key, "must be at least 1"))
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: match e.span().and_then(|span| where_in(&text, span.start)) {
            Some(place) => format!("{place}: {}", e.message()),
            None => e.message().to_owned(),
        },
    })
}

/// `[table] key (line N)` for the byte offset `at` of a TOML file: where a value the parser
/// refused sits, named by its key (never quoting the line, which may hold a secret).
fn where_in(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line.split_once('=').map(|(key, _)| key.trim())?;
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'));
    Some(match table {
        Some(table) => format!("{table} {key} (line {line_no})"),
        None => format!("{key} (line {line_no})"),
    })
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("awoooi.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_refused_value_is_named_by_its_table_key_and_line_without_quoting_the_line() {
        let dir = std::env::temp_dir().join(format!("awoooi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("awoooi.toml");
        std::fs::write(
            &file,
            "[ingest]\nwebhook_secret = \"s3cr3t-value\"\n\n[auth]\ncredential_cache_seconds = -1\n",
        )
        .unwrap();
        let message = load_file(&file).unwrap_err().to_string();
        assert!(
            message.contains("[auth] credential_cache_seconds (line 5): "),
            "{message}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn resolve(argv: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(argv).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(&cli, |key| {
            env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
    }

    fn write_config(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "awoooi-config-{}-{}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        let defaults = resolve(&["awoooi"], &[]).unwrap();
        assert_eq!(defaults.bind.to_string(), DEFAULT_BIND);
        assert_eq!(defaults.database_url, "sqlite://./data/awoooi.db?mode=rwc");
        assert_eq!(defaults.database_kind(), "sqlite");

        let file = write_config(
            "bind = \"127.0.0.1:4000\"\ndata_dir = \"/var/lib/awoooi\"\n\
             [auth]\nsession_ttl_minutes = 30\n",
        );
        let path = file.to_str().unwrap();
        let from_file = resolve(&["awoooi", "--config", path], &[]).unwrap();
        assert_eq!(from_file.bind.to_string(), "127.0.0.1:4000");
        assert_eq!(
            from_file.database_url,
            "sqlite:///var/lib/awoooi/awoooi.db?mode=rwc"
        );
        assert_eq!(from_file.auth.session_ttl_minutes, 30);
        assert_eq!(from_file.auth.credential_cache_seconds, 2, "the default");

        let from_env = resolve(
            &["awoooi", "--config", path],
            &[("DATABASE_URL", "postgres://db/awoooi")],
        )
        .unwrap();
        assert_eq!(from_env.database_url, "postgres://db/awoooi");
        assert_eq!(from_env.database_kind(), "postgres");

        let from_flag =
            resolve(&["awoooi", "--config", path, "--bind", "0.0.0.0:5000"], &[]).unwrap();
        assert_eq!(from_flag.bind.to_string(), "0.0.0.0:5000");
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn the_credential_cache_is_off_at_zero_and_at_most_a_minute() {
        for (text, expected) in [("0", Ok(0)), ("60", Ok(60)), ("61", Err(()))] {
            let file = write_config(&format!("[auth]\ncredential_cache_seconds = {text}\n"));
            let got = resolve(&["awoooi", "--config", file.to_str().unwrap()], &[]);
            std::fs::remove_file(file).unwrap();
            match (got, expected) {
                (Ok(config), Ok(seconds)) => {
                    assert_eq!(config.auth.credential_cache_seconds, seconds, "{text}")
                }
                (Err(error), Err(())) => assert!(
                    error.to_string().contains("credential_cache_seconds"),
                    "{text}: {error}"
                ),
                (got, _) => panic!("{text}: unexpected {:?}", got.map(|c| c.auth)),
            }
        }
    }

    #[test]
    fn executors_must_declare_the_risk_of_their_kinds() {
        // A command without a declared risk does not start.
        let file = write_config("[[actions.shell]]\nname = \"flush\"\nargv = [\"/bin/true\"]\n");
        let err = resolve(&["awoooi", "--config", file.to_str().unwrap()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `risk`"), "{err}");
        std::fs::remove_file(file).unwrap();
        for (section, text) in [
            (
                "actions.ansible",
                "[actions.ansible]\nplaybook_dir = \"/tmp\"\n",
            ),
            (
                "actions.mcp",
                "[[actions.mcp]]\nname = \"db\"\nurl = \"http://127.0.0.1:1/mcp\"\n",
            ),
        ] {
            let file = write_config(text);
            let err = resolve(&["awoooi", "--config", file.to_str().unwrap()], &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("missing field `risk`"), "{section}: {err}");
            std::fs::remove_file(file).unwrap();
        }

        // Declared risks reach the policy; a tool can be riskier than its server, and a
        // production namespace raises a declared MEDIUM to HIGH but never to CRITICAL.
        let file = write_config(
            "[[actions.shell]]\nname = \"flush\"\nargv = [\"/bin/true\"]\nrisk = \"LOW\"\n\
             [[actions.mcp]]\nname = \"db\"\nurl = \"http://127.0.0.1:1/mcp\"\nrisk = \"MEDIUM\"\n\
             [actions.mcp.tools]\ndrop_table = \"CRITICAL\"\n",
        );
        let config = resolve(&["awoooi", "--config", file.to_str().unwrap()], &[]).unwrap();
        let policy = &config.approvals.policy;
        let request = |kind: &str, ns: Option<&str>| engine::policy::ActionRequest {
            kind: kind.into(),
            target: "x".into(),
            namespace: ns.map(Into::into),
            params: serde_json::Value::Null,
            labels: Default::default(),
            requested_by: "sam".into(),
        };
        use engine::policy::RiskLevel::*;
        assert_eq!(policy.base_risk(&request("shell:flush", None)), Low);
        assert_eq!(policy.base_risk(&request("mcp:db/vacuum", None)), Medium);
        assert_eq!(
            policy.base_risk(&request("mcp:db/vacuum", Some("prod"))),
            High
        );
        assert_eq!(
            policy.base_risk(&request("mcp:db/drop_table", None)),
            Critical
        );
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn bad_files_and_values_are_named() {
        let file = write_config("bnid = \"127.0.0.1:1\"\n");
        let err = resolve(&["awoooi", "--config", file.to_str().unwrap()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `bnid`"), "{err}");
        std::fs::remove_file(file).unwrap();

        let err = resolve(&["awoooi", "--database-url", "mysql://x"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_url"), "{err}");

        let err = resolve(&["awoooi", "--config", "/nonexistent/awoooi.toml"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read config file"), "{err}");

        let file = write_config("[bus]\nbackend = \"redis\"\n");
        let path = file.to_str().unwrap();
        let err = resolve(&["awoooi", "--config", path], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bus.backend") && err.contains("Redis URL"),
            "{err}"
        );
        let scaled = resolve(
            &["awoooi", "--config", path],
            &[("REDIS_URL", "redis://127.0.0.1:6379")],
        )
        .unwrap();
        assert_eq!(scaled.bus.backend, BusKind::Redis);
        assert_eq!(scaled.bus.channel, crate::base::bus::DEFAULT_CHANNEL);
        std::fs::remove_file(file).unwrap();
    }
}
