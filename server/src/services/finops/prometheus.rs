//! The Prometheus metrics source: what kube-state-metrics and cAdvisor (the kubelet) export,
//! read through Prometheus' HTTP API, turned into the scans' [`Inventory`].
//!
//! Instant queries at the scan's end time give the inventory (nodes, pods, requests, claims,
//! which pod mounts which claim); range queries with a one-day step give the usage: one
//! sample a day, oldest first — the average CPU of the day (`increase` of the usage counter
//! over the day) and the day's peak working-set memory. Pods sum their containers.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::finops::{ClaimFacts, Inventory, NodeFacts, PodFacts};
use engine::simcluster::Resources;
use serde::Deserialize;

/// `[finops.prometheus]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// Days of usage history to read (default 14; the zombie rule needs at least its days).
    #[serde(default = "fourteen")]
    pub days: u32,
    /// Per-query timeout (default 30 s).
    #[serde(default = "thirty")]
    pub timeout_seconds: u64,
}

fn fourteen() -> u32 {
    14
}

fn thirty() -> u64 {
    30
}

impl PrometheusConfig {
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url `{}`: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url `{}`: not http or https", self.url));
        }
        if !(1..=366).contains(&self.days) {
            return Err(format!("days {}: must be 1-366", self.days));
        }
        if self.timeout_seconds == 0 {
            return Err("timeout_seconds must be positive".into());
        }
        Ok(())
    }
}

const DAY: i64 = 86_400;
const MIB: f64 = 1_048_576.0;

/// Containers only: cAdvisor also reports the pod's cgroup (no container) and the pause
/// container (`POD`), which would count the pod twice.
const CPU_DAILY: &str = r#"sum by (namespace, pod) (increase(container_cpu_usage_seconds_total{container!="", container!="POD"}[1d]))"#;
const MEMORY_DAILY: &str = r#"sum by (namespace, pod) (max_over_time(container_memory_working_set_bytes{container!="", container!="POD"}[1d]))"#;
const REQUESTS: &str = r#"sum by (namespace, pod, resource) (kube_pod_container_resource_requests{resource=~"cpu|memory"})"#;
const BOUND_CLAIMS: &str = r#"kube_persistentvolumeclaim_resource_requests_storage_bytes and on (namespace, persistentvolumeclaim) (kube_persistentvolumeclaim_status_phase{phase="Bound"} == 1)"#;

/// Reads one Prometheus server.
#[derive(Clone)]
pub struct PrometheusSource {
    config: PrometheusConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// Instant queries.
    #[serde(default)]
    value: Option<(f64, String)>,
    /// Range queries.
    #[serde(default)]
    values: Vec<(f64, String)>,
}

impl Series {
    fn label(&self, name: &str) -> &str {
        self.metric.get(name).map(String::as_str).unwrap_or("")
    }

    fn number(&self) -> Option<f64> {
        self.value.as_ref().and_then(|(_, v)| v.parse().ok())
    }

    fn key(&self) -> (String, String) {
        (
            self.label("namespace").to_owned(),
            self.label("pod").to_owned(),
        )
    }
}

/// A non-negative reading rounded to a whole unit (Prometheus values are floats).
fn whole(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

impl PrometheusSource {
    pub fn new(config: PrometheusConfig) -> PrometheusSource {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds))
            .build()
            .unwrap_or_default();
        PrometheusSource { config, client }
    }

    async fn ask(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<Series>, String> {
        let url = format!("{}/api/v1/{path}", self.config.url.trim_end_matches('/'));
        let query = params
            .iter()
            .find(|(k, _)| *k == "query")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let where_ = format!("Prometheus at {}", self.config.url);
        let url =
            reqwest::Url::parse_with_params(&url, params).map_err(|e| format!("{where_}: {e}"))?;
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{where_}: {e}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("{where_}: {e}"))?;
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            let head: String = body.chars().take(200).collect();
            format!("{where_}: HTTP {status}, not a Prometheus API answer: {head}")
        })?;
        if answer.status != "success" {
            return Err(format!(
                "{where_}: {} for `{query}`: {}",
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no reason given")
            ));
        }
        Ok(answer.data.map(|d| d.result).unwrap_or_default())
    }

    async fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, String> {
        self.ask(
            "query",
            &[("query", query.to_owned()), ("time", at.to_string())],
        )
        .await
    }

    /// One value a day, for the days ending at `end`, oldest first, per (namespace, pod).
    async fn daily(
        &self,
        query: &str,
        end: i64,
        unit: f64,
    ) -> Result<BTreeMap<(String, String), Vec<u64>>, String> {
        let days = i64::from(self.config.days);
        let series = self
            .ask(
                "query_range",
                &[
                    ("query", query.to_owned()),
                    ("start", (end - (days - 1) * DAY).to_string()),
                    ("end", end.to_string()),
                    ("step", DAY.to_string()),
                ],
            )
            .await?;
        Ok(series
            .into_iter()
            .map(|s| {
                let daily = s
                    .values
                    .iter()
                    .map(|(_, v)| whole(v.parse::<f64>().unwrap_or(0.0) / unit))
                    .collect();
                (s.key(), daily)
            })
            .collect())
    }

    /// The inventory as Prometheus saw it at `end`, with the usage of the days before.
    pub async fn inventory(&self, end: DateTime<Utc>) -> Result<Inventory, String> {
        let at = end.timestamp();
        let (nodes, node_labels, capacity, pods, owners, replicasets, requests, mounts, claims) = tokio::try_join!(
            self.instant("kube_node_info", at),
            self.instant("kube_node_labels", at),
            self.instant(r#"kube_node_status_capacity{resource=~"cpu|memory"}"#, at),
            self.instant("kube_pod_info", at),
            self.instant("kube_pod_owner", at),
            self.instant(r#"kube_replicaset_owner{owner_kind="Deployment"}"#, at),
            self.instant(REQUESTS, at),
            self.instant("kube_pod_spec_volumes_persistentvolumeclaims_info", at),
            self.instant(BOUND_CLAIMS, at),
        )?;
        // CPU seconds a day → average millicores; bytes → MiB.
        let (cpu, memory) = tokio::try_join!(
            self.daily(CPU_DAILY, at, DAY as f64 / 1_000.0),
            self.daily(MEMORY_DAILY, at, MIB),
        )?;

        let mut inventory = Inventory {
            nodes: node_facts(&nodes, &node_labels, &capacity),
            ..Inventory::default()
        };

        let owner_of = owners_of(&owners, &replicasets);
        let pod_requests = resources(&requests, Series::key);
        let mut volumes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for s in &mounts {
            volumes
                .entry(s.key())
                .or_default()
                .push(s.label("persistentvolumeclaim").to_owned());
        }
        for s in &pods {
            let key = s.key();
            let node = s.label("node");
            inventory.pods.push(PodFacts {
                namespace: key.0.clone(),
                name: key.1.clone(),
                node: (!node.is_empty()).then(|| node.to_owned()),
                owner: owner_of.get(&key).cloned(),
                requests: pod_requests.get(&key).copied().unwrap_or_default(),
                cpu_daily: cpu.get(&key).cloned().unwrap_or_default(),
                memory_daily: memory.get(&key).cloned().unwrap_or_default(),
                volumes: volumes.remove(&key).unwrap_or_default(),
            });
        }
        for s in &claims {
            inventory.claims.push(ClaimFacts {
                namespace: s.label("namespace").to_owned(),
                name: s.label("persistentvolumeclaim").to_owned(),
                size_mib: whole(s.number().unwrap_or(0.0) / MIB),
            });
        }
        Ok(inventory.normalised())
    }
}

/// CPU (cores → millicores) and memory (bytes → MiB) series summed per `key`.
fn resources<K: Ord>(series: &[Series], key: impl Fn(&Series) -> K) -> BTreeMap<K, Resources> {
    let mut out: BTreeMap<K, Resources> = BTreeMap::new();
    for s in series {
        let entry = out.entry(key(s)).or_default();
        let v = s.number().unwrap_or(0.0);
        match s.label("resource") {
            "cpu" => entry.cpu_millis = whole(v * 1_000.0),
            _ => entry.memory_mib = whole(v / MIB),
        }
    }
    out
}

/// The nodes with their instance type and capacity.
fn node_facts(nodes: &[Series], labels: &[Series], capacity: &[Series]) -> Vec<NodeFacts> {
    let types: BTreeMap<&str, &str> = labels
        .iter()
        .filter_map(|s| {
            let t = s
                .metric
                .get("label_node_kubernetes_io_instance_type")
                .or_else(|| s.metric.get("label_beta_kubernetes_io_instance_type"))?;
            Some((s.label("node"), t.as_str()))
        })
        .collect();
    let capacities = resources(capacity, |s| s.label("node").to_owned());
    nodes
        .iter()
        .map(|s| {
            let name = s.label("node");
            NodeFacts {
                name: name.to_owned(),
                node_type: types.get(name).map(|t| (*t).to_owned()),
                capacity: capacities.get(name).copied().unwrap_or_default(),
            }
        })
        .collect()
}

/// A pod's owner as people name it: a ReplicaSet's Deployment, else the owner itself.
fn owners_of(owners: &[Series], replicasets: &[Series]) -> BTreeMap<(String, String), String> {
    let deployments: BTreeMap<(&str, &str), &str> = replicasets
        .iter()
        .map(|s| {
            (
                (s.label("namespace"), s.label("replicaset")),
                s.label("owner_name"),
            )
        })
        .collect();
    owners
        .iter()
        .filter(|s| !matches!(s.label("owner_kind"), "" | "<none>"))
        .map(|s| {
            let name = s.label("owner_name");
            let owner = match s.label("owner_kind") {
                "ReplicaSet" => deployments
                    .get(&(s.label("namespace"), name))
                    .copied()
                    .unwrap_or(name),
                _ => name,
            };
            (s.key(), owner.to_owned())
        })
        .collect()
}
