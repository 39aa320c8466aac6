//! What the Kubernetes backend reads for a dry-run: access reviews, the target, covering
//! budgets, what a drain would evict, the previous revision; gathered into a `Snapshot`
//! the engine judges.

use super::*;

impl KubeCluster {
    pub(super) async fn allowed(
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
    pub(super) async fn covering_budget(
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
    pub(super) async fn read_target(
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
                snapshot.resource = presence(&api, name).await?;
            }
            "cordon_node" | "drain_node" => {
                let api: Api<Node> = Api::all(self.client.clone());
                snapshot.resource = presence(&api, name).await?;
                if request.kind == "drain_node" && snapshot.resource.is_some() {
                    snapshot.blockers = self.drain_blockers(name).await?;
                }
            }
            "delete_namespace" => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                snapshot.resource = presence(&api, name).await?;
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
    pub(super) async fn drain_blockers(&self, node: &str) -> Result<Vec<String>, String> {
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

    pub(super) async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, String> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let pods = api
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| said(&e))?;
        Ok(pods.items.into_iter().filter(|p| !drain_skips(p)).collect())
    }

    /// What the Brain may know of deployment `name`: readiness, revisions (an earlier one to
    /// roll back to; whether the current one rolled out within the hour), pod restarts and
    /// crash loops. `None` when there is no such deployment.
    pub(super) async fn workload(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<WorkloadFact>, String> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let Some(deployment) = deployments.get_opt(name).await.map_err(|e| said(&e))? else {
            return Ok(None);
        };
        let revision = deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap_or(0);
        let can_roll_back = self.previous_revision(ns, name).await.is_ok();
        // The current revision's ReplicaSet, made when it rolled out.
        let selector = deployment
            .spec
            .as_ref()
            .map(|s| selector_query(&s.selector))
            .unwrap_or_default();
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        let recent_rollout = sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| said(&e))?
            .items
            .iter()
            .filter(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                    .and_then(|r| r.parse::<u32>().ok())
                    == Some(revision)
            })
            .filter_map(|rs| rs.metadata.creation_timestamp.as_ref())
            .any(|made| made.0.as_second() > hour_ago.timestamp());
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| said(&e))?;
        let (mut restarts, mut crash_looping) = (0u32, false);
        for status in listed
            .items
            .iter()
            .filter_map(|p| p.status.as_ref())
            .flat_map(|s| s.container_statuses.iter().flatten())
        {
            restarts += status.restart_count.max(0) as u32;
            crash_looping |= status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff");
        }
        let status = deployment.status.as_ref();
        Ok(Some(WorkloadFact {
            name: name.to_owned(),
            replicas: deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1)
                .max(0) as u32,
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32,
            revision,
            can_roll_back,
            recent_rollout,
            restarts,
            crash_looping,
        }))
    }

    /// The ReplicaSet holding the revision before the deployment's current one.
    pub(super) async fn previous_revision(
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

    pub(super) async fn report(
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

/// The object's version when it exists: all a check needs of objects it only deletes or cordons.
async fn presence<K>(api: &Api<K>, name: &str) -> Result<Option<ResourceState>, String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .get_opt(name)
        .await
        .map_err(|e| said(&e))?
        .map(|object| ResourceState {
            version: version_of(&object),
            replicas: None,
            ready: None,
        }))
}
