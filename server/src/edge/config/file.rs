//! The TOML file's shape: every key optional, unknown keys rejected. Each section is defined
//! beside its owner; only `[shield]` (the engine's detectors) is defined here.

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
    pub auth: crate::services::auth::FileAuthConfig,
    #[serde(default)]
    pub shield: ShieldConfig,
    #[serde(default)]
    pub ingest: crate::services::ingest::FileIngestConfig,
    #[serde(default)]
    pub streams: crate::services::ingest::streams::StreamsConfig,
    #[serde(default)]
    pub brain: crate::services::analysis::brains::BrainConfig,
    #[serde(default)]
    pub approvals: crate::services::approvals::FileApprovalsConfig,
    #[serde(default)]
    pub actions: crate::executors::ActionsConfig,
    #[serde(default)]
    pub cluster: crate::executors::ClusterConfig,
    #[serde(default)]
    pub knowledge: crate::services::knowledge::KmConfig,
    #[serde(default)]
    pub finops: crate::services::finops::FinopsConfig,
    #[serde(default)]
    pub notifications: crate::services::notify::NotifyConfig,
    #[serde(default)]
    pub archive: crate::services::archive::ArchiveConfig,
    #[serde(default)]
    pub oncall: crate::services::oncall::OncallConfig,
    #[serde(default)]
    pub bus: crate::base::bus::BusConfig,
    #[serde(default)]
    pub graphql: crate::edge::limits::GraphqlLimits,
    #[serde(default)]
    pub http: crate::edge::limits::HttpLimits,
}

/// `[shield]`: extra detectors, e.g.
/// `[[shield.detectors]]` `name = "pod"`, `pattern = '…'`, `label = "POD"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShieldConfig {
    #[serde(default)]
    pub detectors: Vec<engine::shield::CustomDetector>,
}
