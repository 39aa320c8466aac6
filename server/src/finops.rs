//! FinOps scans in the server: read the cluster and its usage (the simulated cluster's
//! history, or Prometheus), price the waste with `engine::finops`, keep every report, on a
//! schedule and on demand.

pub mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::finops::{Inventory, Pricing, Report, Thresholds};
use entity::finops_report;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder, Set};
use serde::Deserialize;

use crate::approvals::Approvals;
use prometheus::{PrometheusConfig, PrometheusSource};

/// `[finops]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinopsConfig {
    /// Prices (defaults: the demo's, in USD).
    #[serde(default)]
    pub pricing: Pricing,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Minutes between scheduled scans (default 60; 0 turns the schedule off).
    pub scan_every_minutes: Option<u64>,
    /// Where usage comes from: `cluster` (the simulated cluster's history, the default) or
    /// `prometheus` (then `[finops.prometheus]` says where).
    #[serde(default)]
    pub source: SourceKind,
    pub prometheus: Option<PrometheusConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Cluster,
    Prometheus,
}

impl FinopsConfig {
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.thresholds;
        if !(1..=100).contains(&t.zombie_cpu_percent)
            || !(1..=366).contains(&t.zombie_days)
            || !(10..=30).contains(&t.buffer_tenths)
        {
            return Err("thresholds: zombie_cpu_percent 1-100, zombie_days 1-366, buffer_tenths 10-30 (×1.0-×3.0)".into());
        }
        match (self.source, &self.prometheus) {
            (SourceKind::Prometheus, None) => {
                Err("source = \"prometheus\" needs [finops.prometheus] with its url".into())
            }
            (_, Some(p)) => p.validate().map_err(|e| format!("prometheus: {e}")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FinopsError {
    #[error("{0}")]
    NoMetrics(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A stored report.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub report: Report,
    pub trigger: String,
    pub at: DateTime<Utc>,
}

struct Inner {
    db: DatabaseConnection,
    approvals: Approvals,
    config: FinopsConfig,
    prometheus: Option<PrometheusSource>,
}

#[derive(Clone)]
pub struct Finops(Arc<Inner>);

impl Finops {
    pub fn new(db: DatabaseConnection, approvals: Approvals, config: FinopsConfig) -> Finops {
        let prometheus = match config.source {
            SourceKind::Prometheus => config.prometheus.clone().map(PrometheusSource::new),
            SourceKind::Cluster => None,
        };
        Finops(Arc::new(Inner {
            db,
            approvals,
            config,
            prometheus,
        }))
    }

    /// Whether there is anything to scan.
    fn has_source(&self) -> bool {
        self.0.prometheus.is_some() || self.0.approvals.simulated_cluster().is_some()
    }

    /// What the scans read: Prometheus when configured, else the simulated cluster and its
    /// usage history.
    async fn inventory(&self) -> Result<Inventory, FinopsError> {
        if let Some(source) = &self.0.prometheus {
            return source
                .inventory(Utc::now())
                .await
                .map_err(FinopsError::NoMetrics);
        }
        match self.0.approvals.simulated_cluster() {
            Some(cluster) => Ok(cluster.with(|c| Inventory::from_sim(c))),
            None => Err(FinopsError::NoMetrics(
                "the cluster backend is Kubernetes: FinOps reads its usage from Prometheus — set [finops] source = \"prometheus\" and [finops.prometheus] url".into(),
            )),
        }
    }

    /// Scans now and stores the report.
    pub async fn scan(&self, trigger: &str) -> Result<Scanned, FinopsError> {
        let inventory = self.inventory().await?;
        let report = engine::finops::scan(
            &inventory,
            &self.0.config.pricing,
            &self.0.config.thresholds,
        );
        let at = Utc::now();
        finops_report::ActiveModel {
            trigger: Set(trigger.to_owned()),
            report: Set(serde_json::to_string(&report).expect("reports serialise")),
            created_at: Set(at),
            ..Default::default()
        }
        .insert(&self.0.db)
        .await?;
        tracing::info!(
            trigger,
            monthly_waste = %report.monthly_waste,
            findings = report.findings.len(),
            "FinOps scan"
        );
        Ok(Scanned {
            report,
            trigger: trigger.to_owned(),
            at,
        })
    }

    /// The latest stored report, if any scan ran.
    pub async fn latest(&self) -> Result<Option<Scanned>, FinopsError> {
        let row = finops_report::Entity::find()
            .order_by_desc(finops_report::Column::Id)
            .one(&self.0.db)
            .await?;
        Ok(row.and_then(|r| {
            serde_json::from_str(&r.report).ok().map(|report| Scanned {
                report,
                trigger: r.trigger,
                at: r.created_at,
            })
        }))
    }

    /// Scans at start and then every `scan_every_minutes`.
    pub fn start_schedule(&self) {
        let minutes = self.0.config.scan_every_minutes.unwrap_or(60);
        if minutes == 0 || !self.has_source() {
            return;
        }
        let finops = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = finops.scan("SCHEDULE").await {
                    tracing::warn!(error = %e, "scheduled FinOps scan failed");
                }
                tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
            }
        });
    }
}
