//! Configuration: defaults < TOML file < `AWOOOI_*` environment < flags.
//!
//! clap already folds the environment into the flags (`env = "AWOOOI_…"`), so resolving is
//! "flag-or-env, else file, else default" for every setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::telemetry::LogFormat;
use crate::edge::cli::Cli;

/// The TOML file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub demo: Option<bool>,
    pub demo_allow_remote: Option<bool>,
    pub topology: Option<PathBuf>,
    pub site_root: Option<PathBuf>,
    #[serde(default)]
    pub auth: FileAuthConfig,
    #[serde(default)]
    pub shield: ShieldConfig,
    #[serde(default)]
    pub ingest: FileIngestConfig,
    #[serde(default)]
    pub streams: StreamsConfig,
    #[serde(default)]
    pub brain: crate::services::analysis::brains::BrainConfig,
    #[serde(default)]
    pub approvals: FileApprovalsConfig,
    #[serde(default)]
    pub actions: crate::executors::ActionsConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub knowledge: crate::services::knowledge::KmConfig,
    #[serde(default)]
    pub finops: crate::services::finops::FinopsConfig,
    #[serde(default)]
    pub notifications: crate::services::notify::NotifyConfig,
    #[serde(default)]
    pub bus: BusConfig,
    #[serde(default)]
    pub graphql: crate::edge::limits::GraphqlLimits,
    #[serde(default)]
    pub http: crate::edge::limits::HttpLimits,
}

/// `[bus]`: how replicas hear of each other's changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// `memory` (one replica, the default) or `redis` (pub/sub on `redis_url`).
    #[serde(default)]
    pub backend: BusKind,
    /// The Redis pub/sub channel; replicas sharing a database must share it.
    #[serde(default = "default_bus_channel")]
    pub channel: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            backend: BusKind::default(),
            channel: default_bus_channel(),
        }
    }
}

fn default_bus_channel() -> String {
    crate::base::bus::DEFAULT_CHANNEL.to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    #[default]
    Memory,
    Redis,
}

/// `[cluster]`: where actions on the cluster go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub backend: ClusterKind,
    /// The simulated cluster's fixture (`--cluster FILE`).
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub kubernetes: crate::executors::kube::KubeConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    #[default]
    Simulated,
    Kubernetes,
}

/// `[approvals]`: the policy table and the limits around it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApprovalsConfig {
    /// PENDING approvals expire after this many minutes (default 60).
    pub expiry_minutes: Option<u32>,
    /// Dry-run fails when more services than this depend on the target (default 10).
    pub blast_limit: Option<usize>,
    /// Risk per action kind, merged over the defaults, e.g. `restart_deployment = "HIGH"`.
    #[serde(default)]
    pub risks: std::collections::BTreeMap<String, engine::policy::RiskLevel>,
    /// Risk of kinds in no table (default HIGH).
    pub unknown_risk: Option<engine::policy::RiskLevel>,
    /// Namespaces that raise risk one level (default `production`, `prod`).
    pub raise_namespaces: Option<Vec<String>>,
    /// Labels (`key = "value"`) that raise risk one level.
    #[serde(default)]
    pub raise_labels: std::collections::BTreeMap<String, String>,
}

/// `[streams]`: stream inputs besides HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// `[streams.redis]`: consume a Redis Stream (needs `redis_url`).
    pub redis: Option<crate::services::ingest::streams::RedisStreamConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIngestConfig {
    pub correlation_window_minutes: Option<u32>,
    /// Hops along the topology an alert may be from an incident's services (default 3).
    pub correlation_depth: Option<u32>,
    /// Labels whose values alerts must share to join one incident (default namespace, cluster).
    pub correlation_labels: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub webhook_secret: Option<String>,
}

/// `[shield]`: extra detectors, e.g.
/// `[[shield.detectors]]` `name = "pod"`, `pattern = '…'`, `label = "POD"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShieldConfig {
    #[serde(default)]
    pub detectors: Vec<engine::shield::CustomDetector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuthConfig {
    pub session_ttl_minutes: Option<u32>,
    pub cookie_secure: Option<bool>,
    pub max_failed_logins: Option<u32>,
    pub lockout_minutes: Option<u32>,
}

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
        let global = &cli.global;
        let serve = &cli.serve;
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
            return Err(ConfigError::Invalid {
                key: "database_url",
                message: "expected a sqlite:// or postgres:// URL".into(),
            });
        }
        let redis_url = global
            .redis_url
            .clone()
            .or_else(|| env("REDIS_URL"))
            .or(file.redis_url);
        if file.streams.redis.is_some() && redis_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "streams.redis",
                message: "needs a Redis URL (--redis-url, REDIS_URL or redis_url)".into(),
            });
        }
        if file.bus.backend == BusKind::Redis && redis_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "bus.backend",
                message: "`redis` needs a Redis URL (--redis-url, REDIS_URL or redis_url)".into(),
            });
        }
        if file.bus.channel.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "bus.channel",
                message: "must not be empty".into(),
            });
        }
        let session_ttl_minutes = positive(
            "auth.session_ttl_minutes",
            file.auth.session_ttl_minutes.unwrap_or(12 * 60),
        )?;
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
            auth: AuthConfig {
                session_ttl_minutes,
                cookie_secure: file.auth.cookie_secure.unwrap_or(false),
                max_failed_logins: file.auth.max_failed_logins.unwrap_or(5),
                lockout_minutes: positive(
                    "auth.lockout_minutes",
                    file.auth.lockout_minutes.unwrap_or(15),
                )?,
            },
            shield: file.shield,
            streams: file.streams,
            brain: file.brain,
            approvals: approvals_config(file.approvals)?,
            actions: {
                crate::executors::shell::validate(&file.actions.shell).map_err(|message| {
                    ConfigError::Invalid {
                        key: "actions.shell",
                        message,
                    }
                })?;
                crate::executors::mcp::validate(&file.actions.mcp).map_err(|message| {
                    ConfigError::Invalid {
                        key: "actions.mcp",
                        message,
                    }
                })?;
                file.actions
            },
            cluster: {
                let mut cluster = file.cluster;
                if let Some(path) = serve.cluster.clone() {
                    cluster.file = Some(path);
                }
                if cluster.backend == ClusterKind::Kubernetes && cluster.file.is_some() {
                    return Err(ConfigError::Invalid {
                        key: "cluster.file",
                        message: "a simulated cluster fixture cannot be used with backend = \"kubernetes\"".into(),
                    });
                }
                cluster
            },
            knowledge: {
                let mut knowledge = file.knowledge;
                if let Some(value) = env("AWOOOI_KM_WRITE_AWAIT") {
                    knowledge.write_await = match value.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => {
                            return Err(ConfigError::Invalid {
                                key: "AWOOOI_KM_WRITE_AWAIT",
                                message: format!("`{value}` is not true or false"),
                            });
                        }
                    };
                }
                knowledge
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "knowledge",
                        message,
                    })?;
                knowledge
            },
            finops: {
                file.finops
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "finops",
                        message,
                    })?;
                file.finops
            },
            notifications: {
                let mut notifications = file.notifications;
                if let Some(secret) = env("AWOOOI_SLACK_SIGNING_SECRET") {
                    notifications.slack.signing_secret =
                        Some(crate::services::notify::Secret(secret));
                }
                notifications
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "notifications",
                        message,
                    })?;
                notifications
            },
            bus: file.bus,
            graphql: {
                file.graphql
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "graphql",
                        message,
                    })?;
                file.graphql
            },
            http: {
                file.http
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "http",
                        message,
                    })?;
                file.http
            },
            ingest: IngestConfig {
                correlation_window_minutes: positive(
                    "ingest.correlation_window_minutes",
                    file.ingest.correlation_window_minutes.unwrap_or(15),
                )?,
                correlation_depth: match file.ingest.correlation_depth.unwrap_or(3) {
                    d @ 1..=10 => d,
                    d => {
                        return Err(ConfigError::Invalid {
                            key: "ingest.correlation_depth",
                            message: format!("{d} hops: between 1 and 10"),
                        });
                    }
                },
                correlation_labels: {
                    let labels = file
                        .ingest
                        .correlation_labels
                        .unwrap_or_else(|| vec!["namespace".into(), "cluster".into()]);
                    if let Some(bad) = labels.iter().find(|l| l.trim().is_empty()) {
                        return Err(ConfigError::Invalid {
                            key: "ingest.correlation_labels",
                            message: format!("`{bad}` is not a label name"),
                        });
                    }
                    labels
                },
                max_body_bytes: positive(
                    "ingest.max_body_bytes",
                    file.ingest.max_body_bytes.unwrap_or(1024 * 1024),
                )?,
                webhook_secret: env("AWOOOI_WEBHOOK_SECRET")
                    .or(file.ingest.webhook_secret)
                    .filter(|s| !s.is_empty()),
            },
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

fn approvals_config(
    file: FileApprovalsConfig,
) -> Result<crate::services::approvals::ApprovalsConfig, ConfigError> {
    let mut policy = engine::policy::PolicyTable::default();
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
    })
}

fn positive<T: PartialOrd + Default>(key: &'static str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            key,
            message: "must be at least 1".into(),
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("awoooi.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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
