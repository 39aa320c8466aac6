//! What the Kubernetes backend does: each action as API calls (server-side dry-run first),
//! and drains through the Eviction API.

use k8s_openapi::api::core::v1::Event;
use kube::api::LogParams;

use super::*;

/// Log lines read of each troubled pod.
const LOG_LINES: i64 = 20;
/// Events reported, the latest.
const EVENTS: usize = 10;

/// `patch` carrying the version it was decided on (when there is one): the API server refuses
/// it (409) when the object has changed since.
fn guarded(mut patch: serde_json::Value, seen: Option<&str>) -> serde_json::Value {
    if let Some(version) = seen {
        patch["metadata"]["resourceVersion"] = json!(version);
    }
    patch
}

/// Why a write was not done.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The target changed since the re-check (409 on a conditional write).
    Moved(String),
    Failed(String),
}

impl Refusal {
    fn of(error: &kube::Error, conditional: bool) -> Refusal {
        match error {
            kube::Error::Api(status) if conditional && status.code == 409 => {
                Refusal::Moved(format!(
                    "the target changed between the re-check and the apply: {}",
                    said(error)
                ))
            }
            _ => Refusal::Failed(said(error)),
        }
    }
}

impl From<String> for Refusal {
    fn from(why: String) -> Refusal {
        Refusal::Failed(why)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Moved(why) | Refusal::Failed(why) => f.write_str(why),
        }
    }
}

impl KubeCluster {
    /// The patch a rollback applies: the earlier ReplicaSet's pod template, without the
    /// label the ReplicaSet added, replacing the current template whole (the strategic-merge
    /// directive `$patch: replace`; `kubectl rollout undo` replaces it too, with a JSON patch)
    /// — a plain strategic merge would keep a container or an env var the bad revision added,
    /// since those lists merge by name.
    pub(super) fn rollback_patch(set: &ReplicaSet) -> serde_json::Value {
        let mut template = set
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        let mut template = serde_json::to_value(template).unwrap_or_default();
        template["$patch"] = json!("replace");
        json!({ "spec": { "template": template } })
    }

    /// The action for real, its writes conditional on the target's `resourceVersion` the
    /// re-check read (`seen`): a target changed since is refused by the API server (409), and
    /// nothing is done — [`ExecError::Moved`].
    pub(super) async fn submit_as_seen(
        &self,
        request: &ActionRequest,
        seen: Option<&str>,
    ) -> Result<String, ExecError> {
        self.submit_with(request, false, seen)
            .await
            .map_err(|refusal| match refusal {
                Refusal::Moved(why) => ExecError::Moved(why),
                Refusal::Failed(why) => ExecError::Failed(why),
            })
    }

    /// Submits the action with `dryRun=All` (or for real), returning what was done.
    pub(super) async fn submit(
        &self,
        request: &ActionRequest,
        dry_run: bool,
    ) -> Result<String, String> {
        self.submit_with(request, dry_run, None)
            .await
            .map_err(|r| r.to_string())
    }

    async fn submit_with(
        &self,
        request: &ActionRequest,
        dry_run: bool,
        seen: Option<&str>,
    ) -> Result<String, Refusal> {
        let ns = Self::namespace(request);
        let name = request.target.as_str();
        let patch_params = if dry_run {
            PatchParams::default().dry_run()
        } else {
            PatchParams::default()
        };
        let mut delete_params = if dry_run {
            DeleteParams::default().dry_run()
        } else {
            DeleteParams::default()
        };
        if let Some(version) = seen {
            delete_params.preconditions = Some(kube::api::Preconditions {
                resource_version: Some(version.to_owned()),
                uid: None,
            });
        }
        let guarded = |patch| guarded(patch, seen);
        let err = |e: kube::Error| Refusal::of(&e, seen.is_some());
        match request.kind.as_str() {
            "restart_deployment" => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = guarded(json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": at
                }}}}}));
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
                    &Patch::Merge(guarded(json!({"spec": {"replicas": wanted}}))),
                )
                .await
                .map_err(err)?;
                Ok(format!(
                    "deployments/{name} scaled from {current} to {wanted} replicas"
                ))
            }
            "rollback_deployment" => self.rollback(ns, name, &patch_params, seen).await,
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
                    &Patch::Strategic(guarded(json!({"spec": {"unschedulable": true}}))),
                )
                .await
                .map_err(err)?;
                if request.kind == "drain_node" && !dry_run {
                    return Ok(self.evict_all(name).await?);
                }
                Ok(format!("nodes/{name} cordoned"))
            }
            "run_diagnostics" => Ok(self.diagnostics(ns, name).await?),
            other => Err(Refusal::Failed(format!(
                "the Kubernetes backend cannot `{other}`"
            ))),
        }
    }

    /// Rolls a deployment back to its previous revision's pod template.
    async fn rollback(
        &self,
        ns: &str,
        name: &str,
        patch_params: &PatchParams,
        seen: Option<&str>,
    ) -> Result<String, Refusal> {
        let err = |e: kube::Error| Refusal::of(&e, true);
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
            patch_params,
            &Patch::Strategic(guarded(Self::rollback_patch(&previous), seen)),
        )
        .await
        .map_err(err)?;
        Ok(format!(
            "deployments/{name} rolled back to revision {revision} (replicaset {})",
            name_of(&previous)
        ))
    }

    /// What a deployment's pods are doing: phase, readiness, restarts. Reads only.
    async fn diagnostics(&self, ns: &str, name: &str) -> Result<String, String> {
        let err = |e: kube::Error| said(&e);
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let deployment = api.get(name).await.map_err(err)?;
        let selector = deployment
            .spec
            .as_ref()
            .map(|s| selector_query(&s.selector))
            .unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(err)?;
        let mut lines = vec![format!("{name}: {} pod(s)", listed.items.len())];
        let mut troubled = Vec::new();
        for p in &listed.items {
            let status = p.status.as_ref();
            let restarts: i32 = status
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0);
            lines.push(format!(
                "pods/{} {} ready={} restarts={restarts}",
                name_of(p),
                status.and_then(|s| s.phase.clone()).unwrap_or_default(),
                pod_ready(p)
            ));
            if restarts > 0 || !pod_ready(p) {
                troubled.push(name_of(p));
            }
        }
        let mut involved: Vec<String> = listed.items.iter().map(name_of).collect();
        involved.push(name.to_owned());
        lines.extend(self.recent_events(ns, &involved).await?);
        for pod in troubled {
            let params = LogParams {
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            match pods.logs(&pod, &params).await {
                Ok(text) => {
                    lines.push(format!("logs of pods/{pod} (last {LOG_LINES} lines):"));
                    lines.extend(text.lines().map(|l| format!("  {l}")));
                }
                Err(e) => lines.push(format!("logs of pods/{pod}: {}", said(&e))),
            }
        }
        Ok(lines.join("\n"))
    }

    /// The namespace's latest events about `involved` objects, oldest first.
    async fn recent_events(&self, ns: &str, involved: &[String]) -> Result<Vec<String>, String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map_err(|e| said(&e))?
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_ref()
                    .is_some_and(|n| involved.contains(n))
            })
            .collect();
        events.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
        let skip = events.len().saturating_sub(EVENTS);
        Ok(events
            .iter()
            .skip(skip)
            .map(|e| {
                format!(
                    "event {} {}/{}: {} {}",
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.involved_object
                        .kind
                        .as_deref()
                        .unwrap_or_default()
                        .to_lowercase(),
                    e.involved_object.name.as_deref().unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default(),
                    e.message.as_deref().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Evicts every pod of a cordoned node through the Eviction API, one at a time; a pod its
    /// budget protects (429) is retried until the drain timeout, then the drain stops there.
    pub(super) async fn evict_all(&self, node: &str) -> Result<String, String> {
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
}
