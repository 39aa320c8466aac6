//! The Kubernetes backend (kube-rs): the dry-run reads the API server — RBAC through a
//! SelfSubjectAccessReview, the target and the PodDisruptionBudgets that cover it, and the
//! action itself submitted with `dryRun=All` — and execution acts through the same API:
//! rollout restart, scale, roll back, delete pod or claim, cordon, and drain through the
//! Eviction API so budgets hold.
//!
//! Readings are taken first (async), then handed to the engine's checks as a [`Snapshot`], so
//! both backends are judged by the same `engine::dryrun::dry_run`.

mod actions;
mod readings;

use std::collections::BTreeMap;
use std::time::Duration;

use engine::brain::WorkloadFact;
use engine::dryrun::{Budget, CheckName, ClusterView, DryRunReport, ResourceState};
use engine::policy::ActionRequest;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::json;

use crate::services::approvals::{Blast, ExecError, Executor, Handles};

/// `[cluster.kubernetes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeConfig {
    /// The API server's URL, spoken to without credentials (`kubectl proxy`, tests). Without
    /// it: in-cluster service account, else `KUBECONFIG` / `~/.kube/config`.
    pub url: Option<String>,
    /// A kubeconfig file to read (its current context, or `context`) instead of
    /// `KUBECONFIG` / `~/.kube/config`: the server, its CA and the credentials (a bearer token
    /// or a client certificate) all come from it. `url` wins when both are set.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// A kubeconfig context other than the current one.
    pub context: Option<String>,
    /// Who AWOOOI acts as, for people reading dry-run reports.
    #[serde(default = "default_identity")]
    pub identity: String,
    /// How long a drain keeps retrying evictions a budget refuses (429), in seconds.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_seconds: u64,
    /// How long any one API call may take, in seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
}

impl Default for KubeConfig {
    fn default() -> Self {
        KubeConfig {
            url: None,
            kubeconfig: None,
            context: None,
            identity: default_identity(),
            drain_timeout_seconds: default_drain_timeout(),
            request_timeout_seconds: default_request_timeout(),
        }
    }
}

fn default_identity() -> String {
    engine::simcluster::EXECUTOR.to_owned()
}
fn default_drain_timeout() -> u64 {
    120
}
fn default_request_timeout() -> u64 {
    15
}

/// A Kubernetes cluster as AWOOOI's [`Cluster`].
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    identity: String,
    drain_timeout: Duration,
    retry_every: Duration,
}

/// What an API call failure means for people.
fn said(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({})", status.message, status.code)
        }
        kube::Error::Api(status) => format!("the API server answered {}", status.code),
        other => format!("cannot reach the API server: {other}"),
    }
}

fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Does `selector` select an object with `labels`? (An empty selector selects everything,
/// as a PodDisruptionBudget's does.)
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// A selector as a `labelSelector` query (`matchLabels` only; expressions are checked
/// locally).
fn selector_query(selector: &LabelSelector) -> String {
    selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Pods a drain leaves alone, as `kubectl drain` does: DaemonSet pods and mirror pods.
fn drain_skips(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    daemon || mirror
}

fn name_of<K: Resource>(object: &K) -> String {
    object.meta().name.clone().unwrap_or_default()
}

fn version_of<K: Resource>(object: &K) -> String {
    object.meta().resource_version.clone().unwrap_or_default()
}

/// Everything one dry-run read, for the engine's checks.
#[derive(Debug, Default)]
struct Snapshot {
    allowed: bool,
    resource: Option<ResourceState>,
    budget: Option<Budget>,
    blockers: Vec<String>,
    admission: Option<Result<String, String>>,
    /// A read that failed for another reason than "not found".
    unreadable: Option<String>,
}

impl ClusterView for Snapshot {
    fn can(&self, _identity: &str, _verb: &str, _resource: &str, _ns: Option<&str>) -> bool {
        self.allowed
    }
    fn resource(&self, _resource: &str, _name: &str, _ns: Option<&str>) -> Option<ResourceState> {
        self.resource.clone()
    }
    fn budget(&self, _resource: &str, _name: &str, _ns: Option<&str>) -> Option<Budget> {
        self.budget
    }
    fn drain_blockers(&self, _node: &str) -> Vec<String> {
        self.blockers.clone()
    }
    fn admission(&self, _request: &ActionRequest) -> Option<Result<String, String>> {
        self.admission.clone()
    }
}

/// The API group, resource and subresource an engine `verb_and_resource` names.
fn api_resource(resource: &str) -> (&'static str, &str, &'static str) {
    match resource {
        "deployments" => ("apps", "deployments", ""),
        "deployments/scale" => ("apps", "deployments", "scale"),
        "pods/eviction" => ("", "pods", "eviction"),
        other => ("", other, ""),
    }
}

impl KubeCluster {
    /// Connects as configured; checks nothing yet (the API server may come later).
    pub async fn connect(config: &KubeConfig) -> anyhow::Result<KubeCluster> {
        use anyhow::Context;
        let mut client_config = match &config.url {
            Some(url) => kube::Config::new(
                url.parse()
                    .with_context(|| format!("cluster.kubernetes.url `{url}` is not a URL"))?,
            ),
            None => match (&config.kubeconfig, &config.context) {
                (Some(path), context) => {
                    let file = kube::config::Kubeconfig::read_from(path).with_context(|| {
                        format!("cannot read the kubeconfig {}", path.display())
                    })?;
                    let options = kube::config::KubeConfigOptions {
                        context: context.clone(),
                        ..Default::default()
                    };
                    kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .with_context(|| format!("cannot use the kubeconfig {}", path.display()))?
                }
                (None, Some(context)) => {
                    kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                        context: Some(context.clone()),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("cannot load kubeconfig context `{context}`"))?
                }
                (None, None) => kube::Config::infer()
                    .await
                    .context("no Kubernetes configuration (in-cluster or kubeconfig) found")?,
            },
        };
        let timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
        client_config.connect_timeout = Some(timeout);
        client_config.read_timeout = Some(timeout);
        client_config.write_timeout = Some(timeout);
        // No hidden retries: a drain retries refused evictions itself, within its own
        // deadline, and every other call fails at once with what the server said.
        client_config.default_retry = false;
        let client =
            Client::try_from(client_config).context("cannot build the Kubernetes client")?;
        Ok(KubeCluster {
            client,
            identity: config.identity.clone(),
            drain_timeout: Duration::from_secs(config.drain_timeout_seconds),
            retry_every: Duration::from_secs(2)
                .min(Duration::from_secs(config.drain_timeout_seconds.max(1))),
        })
    }

    /// Retries of refused evictions come this often (tests shorten it).
    pub fn with_retry_every(mut self, every: Duration) -> KubeCluster {
        self.retry_every = every;
        self
    }

    fn namespace(request: &ActionRequest) -> &str {
        request.namespace.as_deref().unwrap_or("default")
    }
}

#[async_trait::async_trait]
impl Executor for KubeCluster {
    fn handles(&self) -> Handles {
        Handles::Rest("kubernetes")
    }

    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        self.report(request.clone(), blast.radius, blast.limit)
            .await
    }

    /// Writes carry the re-check's `resourceVersion` of the target as a precondition: the API
    /// server refuses them (409) when the target changed since.
    async fn execute(
        &self,
        _approval: i64,
        request: &ActionRequest,
        seen: &DryRunReport,
    ) -> Result<String, ExecError> {
        self.submit_as_seen(request, seen.target_version.as_deref())
            .await
    }

    async fn workloads(
        &self,
        wanted: &[(Option<String>, String)],
    ) -> Option<Vec<Option<WorkloadFact>>> {
        let mut found = Vec::with_capacity(wanted.len());
        for (namespace, name) in wanted {
            match self
                .workload(namespace.as_deref().unwrap_or("default"), name)
                .await
            {
                Ok(workload) => found.push(workload),
                Err(error) => {
                    tracing::warn!(%error, "the cluster's workloads cannot be read now");
                    return None;
                }
            }
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let app_web = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: None,
        };
        assert!(selects(
            &app_web,
            &labels(&[("app", "web"), ("tier", "front")])
        ));
        assert!(!selects(&app_web, &labels(&[("app", "api")])));
        assert!(selects(&LabelSelector::default(), &labels(&[])));
        let expression = |operator: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        };
        let front = labels(&[("tier", "front")]);
        let none = labels(&[]);
        assert!(selects(&expression("In", &["front", "edge"]), &front));
        assert!(!selects(&expression("In", &["back"]), &front));
        assert!(selects(&expression("NotIn", &["back"]), &front));
        assert!(selects(&expression("NotIn", &["back"]), &none));
        assert!(selects(&expression("Exists", &[]), &front));
        assert!(!selects(&expression("Exists", &[]), &none));
        assert!(selects(&expression("DoesNotExist", &[]), &none));
        assert!(!selects(&expression("Bogus", &[]), &front));
    }
}
