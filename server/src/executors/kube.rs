//! The Kubernetes backend (kube-rs): the dry-run reads the API server — RBAC through a
//! SelfSubjectAccessReview, the target and the PodDisruptionBudgets that cover it, and the
//! action itself submitted with `dryRun=All` — and execution acts through the same API:
//! rollout restart, scale, roll back, delete pod or claim, cordon, and drain through the
//! Eviction API so budgets hold.
//!
//! Readings are taken first (async), then handed to the engine's checks as a [`Snapshot`], so
//! both backends are judged by the same `engine::dryrun::dry_run`.

use std::collections::BTreeMap;
use std::time::Duration;

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

use crate::services::approvals::{ExecError, Executor};

/// `[cluster.kubernetes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeConfig {
    /// The API server's URL, spoken to without credentials (`kubectl proxy`, tests). Without
    /// it: in-cluster service account, else `KUBECONFIG` / `~/.kube/config`.
    pub url: Option<String>,
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
            None => match &config.context {
                Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                    context: Some(context.clone()),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("cannot load kubeconfig context `{context}`"))?,
                None => kube::Config::infer()
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

    async fn allowed(
        &self,
        verb: &str,
        resource: &str,
        request: &ActionRequest,
    ) -> Result<bool, String> {
        let (group, resource, subresource) = api_resource(resource);
        let cluster_scoped = matches!(resource, "nodes" | "namespaces");
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: (!cluster_scoped).then(|| Self::namespace(request).to_owned()),
                    verb: Some(verb.to_owned()),
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    subresource: (!subresource.is_empty()).then(|| subresource.to_owned()),
                    name: Some(request.target.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| said(&e))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// Budgets covering pods with `labels` in `namespace`: the strictest one's healthy pods
    /// now and the number it needs.
    async fn covering_budget(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<(i32, i32)>, String> {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), namespace);
        let budgets = api
            .list(&ListParams::default())
            .await
            .map_err(|e| said(&e))?;
        Ok(budgets
            .items
            .iter()
            .filter(|b| {
                b.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| selects(s, labels))
            })
            .filter_map(|b| b.status.as_ref())
            .map(|s| (s.current_healthy, s.desired_healthy))
            .min_by_key(|(current, desired)| current - desired))
    }

    /// The target as the checks see it, and the budget that covers it.
    async fn read_target(
        &self,
        request: &ActionRequest,
        snapshot: &mut Snapshot,
    ) -> Result<(), String> {
        let ns = Self::namespace(request);
        let name = request.target.as_str();
        match request.kind.as_str() {
            "delete_pod" => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                if let Some(pod) = api.get_opt(name).await.map_err(|e| said(&e))? {
                    let labels = pod.metadata.labels.clone().unwrap_or_default();
                    let budget = self.covering_budget(ns, &labels).await?;
                    snapshot.resource = Some(ResourceState {
                        version: version_of(&pod),
                        replicas: None,
                        // Healthy pods under its budget: deleting this one removes one.
                        ready: budget.map(|(current, _)| current.max(0) as u32),
                    });
                    snapshot.budget = budget.map(|(_, desired)| Budget {
                        min_available: desired.max(0) as u32,
                    });
                }
            }
            "delete_pvc" => {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
                snapshot.resource =
                    api.get_opt(name)
                        .await
                        .map_err(|e| said(&e))?
                        .map(|c| ResourceState {
                            version: version_of(&c),
                            replicas: None,
                            ready: None,
                        });
            }
            "cordon_node" | "drain_node" => {
                let api: Api<Node> = Api::all(self.client.clone());
                snapshot.resource =
                    api.get_opt(name)
                        .await
                        .map_err(|e| said(&e))?
                        .map(|n| ResourceState {
                            version: version_of(&n),
                            replicas: None,
                            ready: None,
                        });
                if request.kind == "drain_node" && snapshot.resource.is_some() {
                    snapshot.blockers = self.drain_blockers(name).await?;
                }
            }
            "delete_namespace" => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                snapshot.resource =
                    api.get_opt(name)
                        .await
                        .map_err(|e| said(&e))?
                        .map(|n| ResourceState {
                            version: version_of(&n),
                            replicas: None,
                            ready: None,
                        });
            }
            _ => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                if let Some(d) = api.get_opt(name).await.map_err(|e| said(&e))? {
                    let labels = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    let budget = self.covering_budget(ns, &labels).await?;
                    snapshot.resource = Some(ResourceState {
                        version: version_of(&d),
                        replicas: d
                            .spec
                            .as_ref()
                            .and_then(|s| s.replicas)
                            .map(|r| r.max(0) as u32),
                        ready: Some(
                            d.status
                                .as_ref()
                                .and_then(|s| s.ready_replicas)
                                .unwrap_or(0)
                                .max(0) as u32,
                        ),
                    });
                    snapshot.budget = budget.map(|(_, desired)| Budget {
                        min_available: desired.max(0) as u32,
                    });
                }
            }
        }
        Ok(())
    }

    /// Budgets that evicting every pod of `node` would break (more of their healthy pods on
    /// the node than the disruptions they allow).
    async fn drain_blockers(&self, node: &str) -> Result<Vec<String>, String> {
        let pods = self.pods_on(node).await?;
        let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
        let budgets = api
            .list(&ListParams::default())
            .await
            .map_err(|e| said(&e))?;
        let mut blockers = Vec::new();
        for budget in &budgets.items {
            let (Some(spec), Some(status)) = (&budget.spec, &budget.status) else {
                continue;
            };
            let Some(selector) = &spec.selector else {
                continue;
            };
            let ns = budget.metadata.namespace.as_deref().unwrap_or("default");
            let here = pods
                .iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && pod_ready(p))
                .filter(|p| {
                    selects(
                        selector,
                        p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                    )
                })
                .count() as i32;
            if here > status.disruptions_allowed {
                blockers.push(format!(
                    "evicting {here} pod(s) covered by {ns}/{} exceeds the {} disruption(s) it allows ({} healthy, needs {})",
                    name_of(budget),
                    status.disruptions_allowed,
                    status.current_healthy,
                    status.desired_healthy
                ));
            }
        }
        Ok(blockers)
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, String> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let pods = api
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| said(&e))?;
        Ok(pods.items.into_iter().filter(|p| !drain_skips(p)).collect())
    }

    /// The ReplicaSet holding the revision before the deployment's current one.
    async fn previous_revision(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(Deployment, ReplicaSet), String> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let deployment = deployments.get(name).await.map_err(|e| said(&e))?;
        let revision = |annotations: Option<&BTreeMap<String, String>>| {
            annotations
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .and_then(|r| r.parse::<u64>().ok())
        };
        let current = revision(deployment.metadata.annotations.as_ref())
            .ok_or_else(|| format!("deployments/{name} has no revision annotation"))?;
        let selector = deployment
            .spec
            .as_ref()
            .map(|s| selector_query(&s.selector))
            .unwrap_or_default();
        let uid = deployment.metadata.uid.clone();
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let sets = sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| said(&e))?;
        let previous = sets
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "Deployment" && Some(&o.uid) == uid.as_ref())
            })
            .filter_map(|rs| revision(rs.metadata.annotations.as_ref()).map(|r| (r, rs)))
            .filter(|(r, _)| *r < current)
            .max_by_key(|(r, _)| *r)
            .ok_or_else(|| format!("deployments/{name} has no earlier revision"))?;
        Ok((deployment, previous.1))
    }

    /// The patch a rollback applies: the earlier ReplicaSet's pod template, without the
    /// label the ReplicaSet added.
    fn rollback_patch(set: &ReplicaSet) -> serde_json::Value {
        let mut template = set
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        json!({ "spec": { "template": template } })
    }

    /// Submits the action with `dryRun=All` (or for real), returning what was done.
    async fn submit(&self, request: &ActionRequest, dry_run: bool) -> Result<String, String> {
        let ns = Self::namespace(request);
        let name = request.target.as_str();
        let patch_params = if dry_run {
            PatchParams::default().dry_run()
        } else {
            PatchParams::default()
        };
        let delete_params = if dry_run {
            DeleteParams::default().dry_run()
        } else {
            DeleteParams::default()
        };
        let err = |e: kube::Error| said(&e);
        match request.kind.as_str() {
            "restart_deployment" => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": at
                }}}}});
                api.patch(name, &patch_params, &Patch::Strategic(patch))
                    .await
                    .map_err(err)?;
                Ok(format!(
                    "deployments/{name} restarted (rollout restart at {at})"
                ))
            }
            "scale_deployment" => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let current = api
                    .get(name)
                    .await
                    .map_err(err)?
                    .spec
                    .and_then(|s| s.replicas)
                    .unwrap_or(1);
                let current = u32::try_from(current.max(0)).unwrap_or(0);
                let wanted = engine::dryrun::wanted_replicas(&request.params, current)?;
                api.patch_scale(
                    name,
                    &patch_params,
                    &Patch::Merge(json!({"spec": {"replicas": wanted}})),
                )
                .await
                .map_err(err)?;
                Ok(format!(
                    "deployments/{name} scaled from {current} to {wanted} replicas"
                ))
            }
            "rollback_deployment" => {
                let (_, previous) = self.previous_revision(ns, name).await?;
                let revision = previous
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned())
                    .unwrap_or_default();
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                api.patch(
                    name,
                    &patch_params,
                    &Patch::Strategic(Self::rollback_patch(&previous)),
                )
                .await
                .map_err(err)?;
                Ok(format!(
                    "deployments/{name} rolled back to revision {revision} (replicaset {})",
                    name_of(&previous)
                ))
            }
            "delete_pod" => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                api.delete(name, &delete_params).await.map_err(err)?;
                Ok(format!("pods/{name} deleted"))
            }
            "delete_pvc" => {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
                api.delete(name, &delete_params).await.map_err(err)?;
                Ok(format!("persistentvolumeclaims/{name} deleted"))
            }
            "delete_namespace" => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                api.delete(name, &delete_params).await.map_err(err)?;
                Ok(format!("namespaces/{name} deleted"))
            }
            "cordon_node" | "drain_node" => {
                let api: Api<Node> = Api::all(self.client.clone());
                api.patch(
                    name,
                    &patch_params,
                    &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
                )
                .await
                .map_err(err)?;
                if request.kind == "drain_node" && !dry_run {
                    return self.evict_all(name).await;
                }
                Ok(format!("nodes/{name} cordoned"))
            }
            "run_diagnostics" => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let deployment = api.get(name).await.map_err(err)?;
                let selector = deployment
                    .spec
                    .as_ref()
                    .map(|s| selector_query(&s.selector))
                    .unwrap_or_default();
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                let pods = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(err)?;
                let lines: Vec<String> = pods
                    .items
                    .iter()
                    .map(|p| {
                        let status = p.status.as_ref();
                        let restarts: i32 = status
                            .and_then(|s| s.container_statuses.as_ref())
                            .map(|c| c.iter().map(|c| c.restart_count).sum())
                            .unwrap_or(0);
                        format!(
                            "pods/{} {} ready={} restarts={restarts}",
                            name_of(p),
                            status.and_then(|s| s.phase.clone()).unwrap_or_default(),
                            pod_ready(p)
                        )
                    })
                    .collect();
                Ok(format!(
                    "{name}: {} pod(s)\n{}",
                    lines.len(),
                    lines.join("\n")
                ))
            }
            other => Err(format!("the Kubernetes backend cannot `{other}`")),
        }
    }

    /// Evicts every pod of a cordoned node through the Eviction API, one at a time; a pod its
    /// budget protects (429) is retried until the drain timeout, then the drain stops there.
    async fn evict_all(&self, node: &str) -> Result<String, String> {
        let mut evicted = Vec::new();
        for pod in self.pods_on(node).await? {
            let ns = pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let name = name_of(&pod);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let deadline = tokio::time::Instant::now() + self.drain_timeout;
            loop {
                match api.evict(&name, &EvictParams::default()).await {
                    Ok(_) => break,
                    Err(e) if not_found(&e) => break,
                    Err(kube::Error::Api(status)) if status.code == 429 => {
                        if tokio::time::Instant::now() + self.retry_every > deadline {
                            return Err(format!(
                                "nodes/{node} cordoned; eviction of pods/{name} in {ns} refused by its disruption budget for {} s: {}; evicted so far: {}",
                                self.drain_timeout.as_secs(),
                                status.message,
                                if evicted.is_empty() {
                                    "none".to_owned()
                                } else {
                                    evicted.join(", ")
                                }
                            ));
                        }
                        tokio::time::sleep(self.retry_every).await;
                    }
                    Err(e) => {
                        return Err(format!(
                            "nodes/{node} cordoned; eviction of pods/{name} in {ns} failed: {}",
                            said(&e)
                        ));
                    }
                }
            }
            evicted.push(format!("pods/{name}"));
        }
        Ok(engine::dryrun::drained(node, &evicted))
    }

    async fn report(
        &self,
        request: ActionRequest,
        blast_radius: usize,
        blast_limit: usize,
    ) -> DryRunReport {
        let mut snapshot = Snapshot::default();
        if let Some((verb, resource)) = engine::dryrun::verb_and_resource(&request.kind) {
            match self.allowed(verb, resource, &request).await {
                Ok(allowed) => snapshot.allowed = allowed,
                Err(e) => snapshot.unreadable = Some(e),
            }
        }
        if snapshot.unreadable.is_none()
            && let Err(e) = self.read_target(&request, &mut snapshot).await
        {
            snapshot.unreadable = Some(e);
        }
        if snapshot.unreadable.is_none()
            && snapshot.resource.is_some()
            && request.kind != "run_diagnostics"
        {
            snapshot.admission = Some(self.submit(&request, true).await);
        }
        let mut report = engine::dryrun::dry_run(
            &request,
            &snapshot,
            &self.identity,
            blast_radius,
            blast_limit,
        );
        if let Some(error) = snapshot.unreadable {
            report.passed = false;
            for check in &mut report.checks {
                if matches!(check.name, CheckName::Rbac | CheckName::ResourceExists) {
                    check.passed = false;
                    check.detail = error.clone();
                }
            }
        }
        report
    }
}

#[async_trait::async_trait]
impl Executor for KubeCluster {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    /// Every kind the executors before it leave.
    fn handles(&self, _kind: &str) -> bool {
        true
    }

    async fn dry_run(
        &self,
        request: &ActionRequest,
        blast_radius: usize,
        blast_limit: usize,
    ) -> DryRunReport {
        self.report(request.clone(), blast_radius, blast_limit)
            .await
    }

    async fn execute(&self, _approval: i64, request: &ActionRequest) -> Result<String, ExecError> {
        self.submit(request, false).await.map_err(ExecError::Failed)
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
