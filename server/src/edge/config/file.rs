//! The TOML file's shape: every key optional, unknown keys rejected; the sections that are
//! not owned by a service or an executor.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::base::telemetry::LogFormat;

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
