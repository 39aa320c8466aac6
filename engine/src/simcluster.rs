//! The simulated cluster: the embedded default's [`ClusterView`] and executor. It holds
//! deployments, pods, PVCs, nodes, PodDisruptionBudgets and RBAC rules; actions really change
//! its state and bump resource versions, so a change between approval and execution is seen by
//! the TOCTOU re-check exactly as on a real cluster.

use std::collections::{BTreeMap, BTreeSet};

mod fixture;
pub mod quantity;

pub use fixture::FixtureError;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::brain::WorkloadFact;
use crate::dryrun::{Budget, ClusterView, ResourceState};
use crate::policy::ActionRequest;
use crate::topology::{ServiceKind, Topology};

/// The identity AWOOOI acts as.
pub const EXECUTOR: &str = "system:serviceaccount:awoooi:executor";

/// Why an action was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The state moved since the re-check: nothing was done.
    Moved(String),
    /// The action itself failed.
    Failed(String),
}

const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimObject {
    pub replicas: Option<u32>,
    pub ready: Option<u32>,
    /// Deployment revision (rollbacks go one down).
    pub revision: u32,
    /// Deployments: the current revision rolled out lately (a rollout, not a rollback).
    pub recent_rollout: bool,
    pub version: u64,
    /// Nodes: unschedulable.
    pub cordoned: bool,
    /// Pods: which deployment owns them.
    pub owner: Option<String>,
    /// Pods: `Running`, `CrashLoopBackOff`, `NotReady`.
    pub phase: Option<String>,
    /// Pods: container restarts.
    pub restarts: u32,
    /// Deployments: what is wrong with them (`ConnectionsExhausted`), if anything.
    pub condition: Option<String>,
    /// Pods: the node they run on (none: `Pending`).
    pub node: Option<String>,
    /// Pods and deployments (per pod): requested CPU and memory. Nodes: their capacity.
    pub resources: Option<Resources>,
    /// Pods: the claims they mount.
    pub volumes: Vec<String>,
    /// PVCs: their size.
    pub storage_mib: Option<u64>,
    /// Nodes: the instance type. PVCs: the storage class.
    pub class: Option<String>,
}

impl SimObject {
    fn new(version: u64) -> SimObject {
        SimObject {
            replicas: None,
            ready: None,
            revision: 2,
            recent_rollout: false,
            version,
            cordoned: false,
            owner: None,
            phase: None,
            restarts: 0,
            condition: None,
            node: None,
            resources: None,
            volumes: Vec::new(),
            storage_mib: None,
            class: None,
        }
    }
}

/// CPU and memory, as requested by a pod or offered by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mib: u64,
}

/// What a pod used, one sample a day, oldest first (both series have the same length).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub cpu_millis: Vec<u64>,
    pub memory_mib: Vec<u64>,
}

/// How a deployment's pods are made: where they may run, what they mount, what they use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Template {
    nodes: Vec<String>,
    volumes: Vec<String>,
    usage: Option<Usage>,
}

/// One object of the cluster, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed<'c> {
    pub resource: &'c str,
    /// Empty for cluster-scoped resources.
    pub namespace: &'c str,
    pub name: &'c str,
    pub object: &'c SimObject,
}

/// Breaking things on purpose, for demos and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Chaos {
    /// A pod crash-loops; its deployment loses a ready replica.
    CrashPod,
    /// A database deployment runs out of connections: nothing of it is ready.
    ExhaustDatabase,
    /// Someone (or an autoscaler) changes a deployment's replica count.
    SetReplicas(u32),
    /// A deployment rolls out a new revision whose pods crash-loop.
    BadRollout,
}

/// One RBAC grant: `identity` may do `verbs` on `resources` in `namespaces` (empty: all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RbacRule {
    pub identity: String,
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
}

/// `(resource, namespace, name)`; cluster-scoped resources (nodes, namespaces) use "".
type Key = (String, String, String);

/// What the executor did, for tests and the execution record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The approval it carried out (each must appear once at most).
    pub approval: i64,
    pub kind: String,
    pub target: String,
}

#[derive(Debug, Clone, Default)]
pub struct SimCluster {
    objects: BTreeMap<Key, SimObject>,
    budgets: BTreeMap<Key, Budget>,
    rbac: Vec<RbacRule>,
    templates: BTreeMap<Key, Template>,
    usage: BTreeMap<Key, Usage>,
    /// Pod names by (namespace, owning deployment), kept with `objects`: a deployment's pods
    /// are read on every reconcile, placement and workload fact, and a scan of every object
    /// made building a 20,000-service cluster quadratic.
    owned: BTreeMap<(String, String), BTreeSet<String>>,
    next_version: u64,
    applied: Vec<Applied>,
}

fn cluster_scoped(resource: &str) -> bool {
    matches!(resource, "nodes" | "namespaces")
}

fn key(resource: &str, namespace: Option<&str>, name: &str) -> Key {
    let namespace = if cluster_scoped(resource) {
        ""
    } else {
        namespace.unwrap_or(DEFAULT_NAMESPACE)
    };
    (resource.to_owned(), namespace.to_owned(), name.to_owned())
}

/// A stable five-character suffix, as a ReplicaSet gives its pods.
fn pod_suffix(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

impl SimCluster {
    /// A cluster running every service of `topology` as a deployment: stateful kinds with one
    /// replica and a data volume, the others with three replicas behind a budget of two; three
    /// nodes; an executor allowed everything but deleting namespaces.
    pub fn from_topology(topology: &Topology) -> SimCluster {
        let mut cluster = SimCluster::default();
        for service in topology.services() {
            let namespace = service.namespace.as_deref();
            let stateful = matches!(
                service.kind,
                ServiceKind::Database | ServiceKind::Cache | ServiceKind::Queue
            );
            let replicas = if stateful { 1 } else { 3 };
            cluster.insert(
                "deployments",
                namespace,
                &service.name,
                Some(replicas),
                Some(replicas),
            );
            if stateful {
                let claim = format!("data-{}", service.name);
                cluster
                    .insert("persistentvolumeclaims", namespace, &claim, None, None)
                    .storage_mib = Some(10 * 1_024);
                // Its pods mount it.
                cluster.templates.insert(
                    key("deployments", namespace, &service.name),
                    Template {
                        volumes: vec![claim],
                        ..Template::default()
                    },
                );
            } else {
                cluster.budgets.insert(
                    key("deployments", namespace, &service.name),
                    Budget { min_available: 2 },
                );
            }
        }
        for node in ["node-1", "node-2", "node-3"] {
            cluster.insert("nodes", None, node, None, None).resources = Some(Resources {
                cpu_millis: 4_000,
                memory_mib: 16_384,
            });
        }
        // Nodes came last: place the pods now.
        let deployments: Vec<(Option<String>, String)> = topology
            .services()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        for (namespace, name) in deployments {
            cluster.reconcile(namespace.as_deref(), &name, false);
        }
        cluster.rbac.push(default_grant());
        cluster
    }

    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn insert(
        &mut self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        replicas: Option<u32>,
        ready: Option<u32>,
    ) -> &mut SimObject {
        let version = self.bump();
        let object = self
            .objects
            .entry(key(resource, namespace, name))
            .or_insert_with(|| SimObject::new(version));
        *object = SimObject {
            replicas,
            ready,
            ..SimObject::new(version)
        };
        object
    }

    /// Removes a pod and its usage history.
    fn remove_pod(&mut self, pod: &Key) -> Option<SimObject> {
        self.usage.remove(pod);
        let removed = self.objects.remove(pod)?;
        if let Some(owner) = &removed.owner {
            let owned = (pod.1.clone(), owner.clone());
            if let Some(names) = self.owned.get_mut(&owned) {
                names.remove(&pod.2);
                if names.is_empty() {
                    self.owned.remove(&owned);
                }
            }
        }
        Some(removed)
    }

    /// The keys of `deployment`'s pods in `namespace` (already defaulted), by name.
    fn pods_of(&self, namespace: &str, deployment: &str) -> Vec<Key> {
        self.owned
            .get(&(namespace.to_owned(), deployment.to_owned()))
            .into_iter()
            .flatten()
            .map(|name| ("pods".to_owned(), namespace.to_owned(), name.clone()))
            .collect()
    }

    /// The node a new pod of `deployment` goes to: one of its template's nodes (else any),
    /// not cordoned, with the fewest pods of that deployment, then by name.
    fn place(&self, namespace: &str, deployment: &str) -> Option<String> {
        let allowed = self
            .templates
            .get(&key("deployments", Some(namespace), deployment))
            .map(|t| t.nodes.clone())
            .unwrap_or_default();
        let nodes = ("nodes".to_owned(), String::new(), String::new());
        let open: Vec<&str> = self
            .objects
            .range(nodes..)
            .take_while(|((r, _, _), _)| r == "nodes")
            .filter(|(_, o)| !o.cordoned)
            .map(|((_, _, name), _)| name.as_str())
            .collect();
        let preferred: Vec<&str> = open
            .iter()
            .copied()
            .filter(|n| allowed.iter().any(|a| a == n))
            .collect();
        let candidates = if preferred.is_empty() {
            open
        } else {
            preferred
        };
        let pods = self.pods_of(namespace, deployment);
        candidates
            .into_iter()
            .min_by_key(|node| {
                let here = pods
                    .iter()
                    .filter(|pod| {
                        self.objects
                            .get(*pod)
                            .is_some_and(|o| o.node.as_deref() == Some(*node))
                    })
                    .count();
                (here, node.to_string())
            })
            .map(str::to_owned)
    }

    /// Gives a deployment exactly `replicas` running pods, as its ReplicaSet would: with
    /// `replace`, every old pod goes and new ones (new names) come; otherwise pods are only
    /// added or removed. `ready` follows the running pods.
    fn reconcile(&mut self, namespace: Option<&str>, deployment: &str, replace: bool) {
        let Some(wanted) = self
            .object("deployments", namespace, deployment)
            .and_then(|d| d.replicas)
        else {
            return;
        };
        let ns = key("pods", namespace, "").1;
        let mut pods = self.pods_of(&ns, deployment);
        if replace {
            for pod in std::mem::take(&mut pods) {
                self.remove_pod(&pod);
            }
        }
        while pods.len() > wanted as usize {
            if let Some(pod) = pods.pop() {
                self.remove_pod(&pod);
            }
        }
        let (resources, template) = {
            let deployment_key = key("deployments", namespace, deployment);
            (
                self.objects.get(&deployment_key).and_then(|d| d.resources),
                self.templates
                    .get(&deployment_key)
                    .cloned()
                    .unwrap_or_default(),
            )
        };
        let mut n = 0;
        while pods.len() < wanted as usize {
            let seed = format!("{deployment}/{}/{n}", self.next_version);
            let name = format!("{deployment}-{}", pod_suffix(&seed));
            n += 1;
            if self.objects.contains_key(&key("pods", namespace, &name)) {
                continue;
            }
            let node = self.place(&ns, deployment);
            let pod = self.insert("pods", namespace, &name, None, None);
            pod.owner = Some(deployment.to_owned());
            pod.phase = Some(if node.is_some() { "Running" } else { "Pending" }.into());
            pod.node = node;
            pod.resources = resources;
            pod.volumes = template.volumes.clone();
            self.owned
                .entry((ns.clone(), deployment.to_owned()))
                .or_default()
                .insert(name.clone());
            let pod = key("pods", namespace, &name);
            if let Some(usage) = &template.usage {
                self.usage.insert(pod.clone(), usage.clone());
            }
            pods.push(pod);
        }
        let running = pods
            .iter()
            .filter(|p| {
                self.objects
                    .get(*p)
                    .is_some_and(|o| o.phase.as_deref() == Some("Running"))
            })
            .count() as u32;
        let version = self.bump();
        if let Some(d) = self
            .objects
            .get_mut(&key("deployments", namespace, deployment))
        {
            d.ready = Some(if d.condition.is_some() { 0 } else { running });
            d.version = version;
        }
    }

    /// The names of a deployment's pods.
    pub fn pod_names(&self, namespace: Option<&str>, deployment: &str) -> BTreeSet<String> {
        let namespace = key("pods", namespace, "").1;
        self.owned
            .get(&(namespace, deployment.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Everything in the cluster, ordered by resource, namespace and name.
    pub fn list(&self) -> impl Iterator<Item = Listed<'_>> {
        self.objects
            .iter()
            .map(|((resource, namespace, name), object)| Listed {
                resource,
                namespace,
                name,
                object,
            })
    }

    /// Breaks `target` (a pod for [`Chaos::CrashPod`], else a deployment). Returns what
    /// happened, for people.
    pub fn chaos(
        &mut self,
        chaos: Chaos,
        namespace: Option<&str>,
        target: &str,
    ) -> Result<String, String> {
        match chaos {
            Chaos::CrashPod => {
                let version = self.bump();
                let pod = self
                    .objects
                    .get_mut(&key("pods", namespace, target))
                    .ok_or_else(|| format!("pods/{target} not found"))?;
                pod.phase = Some("CrashLoopBackOff".into());
                pod.restarts += 1;
                pod.version = version;
                if let Some(owner) = pod.owner.clone() {
                    self.reconcile(namespace, &owner, false);
                }
                Ok(format!("pods/{target} is crash-looping"))
            }
            Chaos::ExhaustDatabase => {
                let d = self
                    .objects
                    .get_mut(&key("deployments", namespace, target))
                    .ok_or_else(|| format!("deployments/{target} not found"))?;
                d.condition = Some("ConnectionsExhausted".into());
                self.reconcile(namespace, target, false);
                Ok(format!("deployments/{target} has run out of connections"))
            }
            Chaos::BadRollout => {
                let version = self.bump();
                let d = self
                    .objects
                    .get_mut(&key("deployments", namespace, target))
                    .ok_or_else(|| format!("deployments/{target} not found"))?;
                d.revision += 1;
                d.recent_rollout = true;
                d.version = version;
                let revision = d.revision;
                self.reconcile(namespace, target, true);
                let ns = key("pods", namespace, "").1;
                for pod in self.pods_of(&ns, target) {
                    if let Some(pod) = self.objects.get_mut(&pod) {
                        pod.phase = Some("CrashLoopBackOff".into());
                        pod.restarts += 4;
                        pod.version = version;
                    }
                }
                self.reconcile(namespace, target, false);
                Ok(format!(
                    "deployments/{target} rolled out revision {revision}; its pods crash-loop"
                ))
            }
            Chaos::SetReplicas(replicas) => {
                self.set_replicas(namespace, target, replicas)?;
                Ok(format!(
                    "deployments/{target} now wants {replicas} replica(s)"
                ))
            }
        }
    }

    pub fn object(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&SimObject> {
        self.objects.get(&key(resource, namespace, name))
    }

    /// A pod's usage history, if the fixture gave one.
    pub fn usage(&self, namespace: Option<&str>, pod: &str) -> Option<&Usage> {
        self.usage.get(&key("pods", namespace, pod))
    }

    /// Cordons `node` and evicts its pods, as `kubectl drain` does through the Eviction API:
    /// a pod whose eviction would break its deployment's budget stops the drain there.
    fn drain(&mut self, node: &str, version: u64) -> Result<String, String> {
        let object = self
            .objects
            .get_mut(&key("nodes", None, node))
            .ok_or_else(|| format!("nodes/{node} not found"))?;
        object.cordoned = true;
        object.version = version;
        let here: Vec<Key> = self
            .objects
            .iter()
            .filter(|((r, _, _), o)| r == "pods" && o.node.as_deref() == Some(node))
            .map(|(k, _)| k.clone())
            .collect();
        let mut evicted = Vec::new();
        for pod in here {
            let owner = self.objects.get(&pod).and_then(|p| p.owner.clone());
            let namespace = Some(pod.1.as_str());
            let running = self
                .objects
                .get(&pod)
                .is_some_and(|p| p.phase.as_deref() == Some("Running"));
            if let Some(owner) = owner.as_ref().filter(|_| running) {
                let budget = self.budgets.get(&key("deployments", namespace, owner));
                let ready = self
                    .object("deployments", namespace, owner)
                    .and_then(|d| d.ready)
                    .unwrap_or(0);
                if let Some(budget) = budget
                    && ready <= budget.min_available
                {
                    return Err(format!(
                        "nodes/{node} cordoned; eviction of pods/{} refused: it would violate \
                         the disruption budget of {owner} ({ready} ready, needs {}); evicted \
                         so far: {}",
                        pod.2,
                        budget.min_available,
                        if evicted.is_empty() {
                            "none".to_owned()
                        } else {
                            evicted.join(", ")
                        }
                    ));
                }
            }
            self.remove_pod(&pod);
            evicted.push(format!("pods/{}", pod.2));
            if let Some(owner) = owner {
                let ns = pod.1.clone();
                self.reconcile(Some(&ns), &owner, false);
            }
        }
        Ok(crate::dryrun::drained(node, &evicted))
    }

    /// Everything the executor has done, in order.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// Chaos: set a deployment's replicas (and ready count), as a person or an autoscaler might
    /// between approval and execution.
    pub fn set_replicas(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        replicas: u32,
    ) -> Result<(), String> {
        let version = self.bump();
        let object = self
            .objects
            .get_mut(&key("deployments", namespace, name))
            .ok_or_else(|| format!("deployments/{name} not found"))?;
        object.replicas = Some(replicas);
        object.version = version;
        self.reconcile(namespace, name, false);
        Ok(())
    }

    /// What the Brain may know of deployment `name`: readiness, revisions, restarts.
    pub fn workload(&self, namespace: Option<&str>, name: &str) -> Option<WorkloadFact> {
        let d = self.objects.get(&key("deployments", namespace, name))?;
        let ns = key("pods", namespace, "").1;
        let (mut restarts, mut crash_looping) = (0, false);
        for pod in self
            .pods_of(&ns, name)
            .iter()
            .filter_map(|pod| self.objects.get(pod))
        {
            restarts += pod.restarts;
            crash_looping |= pod.phase.as_deref() == Some("CrashLoopBackOff");
        }
        Some(WorkloadFact {
            name: name.to_owned(),
            replicas: d.replicas.unwrap_or(0),
            ready: d.ready.unwrap_or(0),
            revision: d.revision,
            can_roll_back: d.revision > 1,
            recent_rollout: d.recent_rollout,
            restarts,
            crash_looping,
        })
    }

    /// What `run_diagnostics` reads of a deployment: replicas, readiness, revision and
    /// condition, then each pod's phase, node and restarts. Changes nothing.
    fn diagnostics(&self, namespace: Option<&str>, target: &str) -> Result<String, String> {
        let d = self
            .objects
            .get(&key("deployments", namespace, target))
            .ok_or_else(|| format!("deployments/{target} not found"))?;
        let mut lines = vec![format!(
            "deployments/{target}: {}/{} ready, revision {}{}",
            d.ready.unwrap_or(0),
            d.replicas.unwrap_or(0),
            d.revision,
            d.condition
                .as_ref()
                .map(|c| format!(", condition {c}"))
                .unwrap_or_default()
        )];
        let ns = key("pods", namespace, "").1;
        for (name, pod) in self
            .pods_of(&ns, target)
            .into_iter()
            .filter_map(|pod| Some((pod.2.clone(), self.objects.get(&pod)?)))
        {
            lines.push(format!(
                "pods/{name} {} on {}, {} restart(s)",
                pod.phase.as_deref().unwrap_or("Running"),
                pod.node.as_deref().unwrap_or("no node (Pending)"),
                pod.restarts
            ));
        }
        Ok(lines.join("\n"))
    }

    /// Carries out an approved action; the TOCTOU re-check has already passed.
    /// Applies `request` only if the cluster is still as the re-check `seen` found it: the
    /// same checks read again, under the same hold on the state as the write, must give the
    /// same fingerprint.
    pub fn apply_as_seen(
        &mut self,
        approval: i64,
        request: &ActionRequest,
        seen: &crate::dryrun::DryRunReport,
    ) -> Result<String, ApplyError> {
        let now = crate::dryrun::dry_run(request, self, EXECUTOR, seen.blast_radius, usize::MAX);
        if now.state_fingerprint != seen.state_fingerprint {
            return Err(ApplyError::Moved(format!(
                "the cluster changed between the re-check and the apply (fingerprint {} → {})",
                &seen.state_fingerprint[..seen.state_fingerprint.len().min(12)],
                &now.state_fingerprint[..12]
            )));
        }
        self.apply(approval, request).map_err(ApplyError::Failed)
    }

    pub fn apply(&mut self, approval: i64, request: &ActionRequest) -> Result<String, String> {
        let namespace = request.namespace.as_deref();
        let target = request.target.as_str();
        let version = self.bump();
        fn deployment<'a>(
            objects: &'a mut BTreeMap<Key, SimObject>,
            namespace: Option<&str>,
            target: &str,
        ) -> Result<&'a mut SimObject, String> {
            objects
                .get_mut(&key("deployments", namespace, target))
                .ok_or_else(|| format!("deployments/{target} not found"))
        }
        let outcome = match request.kind.as_str() {
            "restart_deployment" => {
                let d = deployment(&mut self.objects, namespace, target)?;
                d.version = version;
                d.condition = None;
                let replicas = d.replicas.unwrap_or(0);
                self.reconcile(namespace, target, true);
                Ok(format!(
                    "deployments/{target} restarted: {replicas} pod(s) replaced one by one"
                ))
            }
            "rollback_deployment" => {
                let d = deployment(&mut self.objects, namespace, target)?;
                if d.revision <= 1 {
                    return Err(format!("deployments/{target} has no earlier revision"));
                }
                d.revision -= 1;
                d.recent_rollout = false;
                d.version = version;
                // The earlier revision's pods replace the current ones.
                self.reconcile(namespace, target, true);
                let d = deployment(&mut self.objects, namespace, target)?;
                Ok(format!(
                    "deployments/{target} rolled back to revision {}",
                    d.revision
                ))
            }
            "scale_deployment" => {
                let d = deployment(&mut self.objects, namespace, target)?;
                let current = d.replicas.unwrap_or(0);
                let wanted = crate::dryrun::wanted_replicas(&request.params, current)?;
                d.replicas = Some(wanted);
                d.version = version;
                self.reconcile(namespace, target, false);
                Ok(format!(
                    "deployments/{target} scaled from {current} to {wanted} replicas"
                ))
            }
            "delete_pod" => {
                let pod = self
                    .remove_pod(&key("pods", namespace, target))
                    .ok_or_else(|| format!("pods/{target} not found"))?;
                // Its ReplicaSet replaces it under a new name.
                match pod.owner {
                    Some(owner) => {
                        let before = self.pod_names(namespace, &owner);
                        self.reconcile(namespace, &owner, false);
                        let after = self.pod_names(namespace, &owner);
                        Ok(match after.difference(&before).next() {
                            Some(started) => {
                                format!("pods/{target} deleted; {owner} started pods/{started}")
                            }
                            None => format!("pods/{target} deleted"),
                        })
                    }
                    None => Ok(format!("pods/{target} deleted")),
                }
            }
            "delete_pvc" => self
                .objects
                .remove(&key("persistentvolumeclaims", namespace, target))
                .map(|_| format!("persistentvolumeclaims/{target} deleted"))
                .ok_or_else(|| format!("persistentvolumeclaims/{target} not found")),
            "cordon_node" => {
                let node = self
                    .objects
                    .get_mut(&key("nodes", None, target))
                    .ok_or_else(|| format!("nodes/{target} not found"))?;
                node.cordoned = true;
                node.version = version;
                Ok(format!("nodes/{target} cordoned"))
            }
            "drain_node" => self.drain(target, version),
            "resize_node" => {
                let wanted = request
                    .params
                    .get("node_type")
                    .and_then(|v| v.as_str())
                    .ok_or("resize_node needs params.node_type")?
                    .to_owned();
                let node = self
                    .objects
                    .get_mut(&key("nodes", None, target))
                    .ok_or_else(|| format!("nodes/{target} not found"))?;
                let before = node.class.replace(wanted.clone());
                node.version = version;
                Ok(format!(
                    "nodes/{target} resized from {} to {wanted}",
                    before.as_deref().unwrap_or("an untyped node")
                ))
            }
            "run_diagnostics" => self.diagnostics(namespace, target),
            other => Err(format!("the simulated cluster cannot `{other}`")),
        };
        if outcome.is_ok() {
            self.applied.push(Applied {
                approval,
                kind: request.kind.clone(),
                target: request.target.clone(),
            });
        }
        outcome
    }
}

impl ClusterView for SimCluster {
    fn can(&self, identity: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        let namespace = namespace.unwrap_or(DEFAULT_NAMESPACE);
        self.rbac.iter().any(|rule| {
            rule.identity == identity
                && rule.verbs.iter().any(|v| v == verb || v == "*")
                && rule.resources.iter().any(|r| r == resource || r == "*")
                && (rule.namespaces.is_empty() || rule.namespaces.iter().any(|n| n == namespace))
        })
    }

    fn resource(
        &self,
        resource: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Option<ResourceState> {
        self.object(resource, namespace, name)
            .map(|o| ResourceState {
                version: o.version.to_string(),
                replicas: o.replicas,
                ready: o.ready,
            })
    }

    fn budget(&self, resource: &str, name: &str, namespace: Option<&str>) -> Option<Budget> {
        self.budgets.get(&key(resource, namespace, name)).copied()
    }

    fn drain_blockers(&self, node: &str) -> Vec<String> {
        // Pods of each budgeted deployment on the node, against what its budget allows.
        let mut per_owner: BTreeMap<(String, String), u32> = BTreeMap::new();
        for ((r, ns, _), o) in &self.objects {
            if r == "pods"
                && o.node.as_deref() == Some(node)
                && o.phase.as_deref() == Some("Running")
                && let Some(owner) = &o.owner
            {
                *per_owner.entry((ns.clone(), owner.clone())).or_default() += 1;
            }
        }
        per_owner
            .into_iter()
            .filter_map(|((ns, owner), here)| {
                let budget = self.budgets.get(&key("deployments", Some(&ns), &owner))?;
                let ready = self.object("deployments", Some(&ns), &owner)?.ready.unwrap_or(0);
                let left = ready.saturating_sub(here);
                (left < budget.min_available).then(|| {
                    format!(
                        "evicting {here} pod(s) of {ns}/{owner} leaves {left} ready; its budget needs {}",
                        budget.min_available
                    )
                })
            })
            .collect()
    }
}

/// The executor's grant when a fixture names none: everything it acts on, but namespaces.
fn default_grant() -> RbacRule {
    RbacRule {
        identity: EXECUTOR.to_owned(),
        verbs: ["get", "list", "patch", "delete", "create"]
            .map(String::from)
            .to_vec(),
        resources: [
            "deployments",
            "deployments/scale",
            "pods",
            "pods/eviction",
            "persistentvolumeclaims",
            "nodes",
        ]
        .map(String::from)
        .to_vec(),
        namespaces: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dryrun::{CheckName, dry_run, recheck};

    fn request(kind: &str, target: &str, params: serde_json::Value) -> ActionRequest {
        ActionRequest {
            kind: kind.into(),
            target: target.into(),
            namespace: Some("prod".into()),
            params,
            labels: Default::default(),
            requested_by: "system".into(),
        }
    }

    /// The pods-by-owner index, rebuilt from every object.
    fn owners_by_scan(cluster: &SimCluster) -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut owned: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for ((resource, ns, name), object) in &cluster.objects {
            if let (true, Some(owner)) = (resource == "pods", &object.owner) {
                owned
                    .entry((ns.clone(), owner.clone()))
                    .or_default()
                    .insert(name.clone());
            }
        }
        owned
    }

    #[test]
    fn the_pods_by_owner_index_follows_every_change_to_the_pods() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        assert_eq!(cluster.owned, owners_by_scan(&cluster));
        assert_eq!(cluster.pod_names(Some("prod"), "order-api").len(), 3);
        let first_pod = |c: &SimCluster| {
            c.pod_names(Some("prod"), "frontend")
                .into_iter()
                .next()
                .unwrap()
        };
        type Step<'f> = Box<dyn Fn(&mut SimCluster) + 'f>;
        let steps: Vec<Step<'_>> = vec![
            Box::new(|c| {
                let pod = first_pod(c);
                c.apply(1, &request("delete_pod", &pod, serde_json::json!({})))
                    .unwrap();
            }),
            Box::new(|c| {
                c.apply(
                    2,
                    &request(
                        "scale_deployment",
                        "frontend",
                        serde_json::json!({"replicas_delta": 2}),
                    ),
                )
                .unwrap();
            }),
            Box::new(|c| c.set_replicas(Some("prod"), "frontend", 1).unwrap()),
            Box::new(|c| {
                c.apply(
                    3,
                    &request("restart_deployment", "order-api", serde_json::json!({})),
                )
                .unwrap();
            }),
            Box::new(|c| {
                c.chaos(Chaos::BadRollout, Some("prod"), "product-api")
                    .unwrap();
            }),
            Box::new(|c| {
                c.apply(
                    4,
                    &request("rollback_deployment", "product-api", serde_json::json!({})),
                )
                .unwrap();
            }),
            Box::new(|c| {
                let pod = first_pod(c);
                c.chaos(Chaos::CrashPod, Some("prod"), &pod).unwrap();
            }),
            Box::new(|c| {
                c.apply(5, &request("drain_node", "node-1", serde_json::json!({})))
                    .ok();
            }),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&mut cluster);
            assert_eq!(cluster.owned, owners_by_scan(&cluster), "after step {i}");
        }
        assert_eq!(cluster.pod_names(Some("prod"), "frontend").len(), 1);
    }

    #[test]
    fn the_demo_cluster_passes_a_rollback_and_it_changes_the_deployment() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let rollback = request("rollback_deployment", "order-api", serde_json::json!({}));
        let report = dry_run(&rollback, &cluster, EXECUTOR, 2, 10);
        assert!(report.passed, "{report:?}");
        let before = cluster
            .object("deployments", Some("prod"), "order-api")
            .unwrap()
            .clone();
        let said = cluster.apply(7, &rollback).unwrap();
        assert_eq!(said, "deployments/order-api rolled back to revision 1");
        let after = cluster
            .object("deployments", Some("prod"), "order-api")
            .unwrap();
        assert_eq!(after.revision, before.revision - 1);
        assert!(after.version > before.version);
        assert_eq!(
            cluster.applied(),
            [Applied {
                approval: 7,
                kind: "rollback_deployment".into(),
                target: "order-api".into()
            }]
        );
        // A second dry-run sees the change: an approval made before it would be voided.
        let again = dry_run(&rollback, &cluster, EXECUTOR, 2, 10);
        assert!(recheck(&report, &again).is_err());
    }

    #[test]
    fn chaos_between_approval_and_execution_changes_the_fingerprint() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let scale = request(
            "scale_deployment",
            "order-api",
            serde_json::json!({"replicas_delta": 1}),
        );
        let approved = dry_run(&scale, &cluster, EXECUTOR, 0, 10);
        assert!(recheck(&approved, &dry_run(&scale, &cluster, EXECUTOR, 0, 10)).is_ok());
        cluster.set_replicas(Some("prod"), "order-api", 5).unwrap();
        let now = dry_run(&scale, &cluster, EXECUTOR, 0, 10);
        assert!(matches!(
            recheck(&approved, &now),
            Err(crate::dryrun::VoidReason::StateChanged { .. })
        ));
    }

    #[test]
    fn an_apply_after_a_change_since_the_recheck_does_nothing() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let scale = request(
            "scale_deployment",
            "order-api",
            serde_json::json!({"replicas_delta": 1}),
        );
        // The re-check passed; then the state moved before the write.
        let seen = dry_run(&scale, &cluster, EXECUTOR, 0, 10);
        assert!(
            seen.target_version.is_some(),
            "the target's version is kept"
        );
        cluster.set_replicas(Some("prod"), "order-api", 5).unwrap();
        let before = cluster.workload(Some("prod"), "order-api");
        match cluster.apply_as_seen(7, &scale, &seen) {
            Err(ApplyError::Moved(reason)) => {
                assert!(
                    reason.contains("changed between the re-check and the apply"),
                    "{reason}"
                )
            }
            other => panic!("applied over a moved state: {other:?}"),
        }
        assert_eq!(
            cluster.workload(Some("prod"), "order-api"),
            before,
            "nothing was done"
        );
        // As seen: it applies.
        let seen = dry_run(&scale, &cluster, EXECUTOR, 0, 10);
        assert!(cluster.apply_as_seen(8, &scale, &seen).is_ok());
    }

    #[test]
    fn rbac_and_budgets_come_from_the_cluster() {
        let cluster = SimCluster::from_topology(&Topology::demo());
        let drop_ns = request("delete_namespace", "prod", serde_json::json!({}));
        let report = dry_run(&drop_ns, &cluster, EXECUTOR, 0, 10);
        let rbac = report
            .checks
            .iter()
            .find(|c| c.name == CheckName::Rbac)
            .unwrap();
        assert!(!rbac.passed);
        assert!(
            rbac.detail.contains("may not delete namespaces"),
            "{}",
            rbac.detail
        );
        // order-api runs 3 replicas behind a budget of 2: scaling to 1 is refused.
        let shrink = request(
            "scale_deployment",
            "order-api",
            serde_json::json!({"replicas": 1}),
        );
        let report = dry_run(&shrink, &cluster, EXECUTOR, 0, 10);
        let pdb = report
            .checks
            .iter()
            .find(|c| c.name == CheckName::Pdb)
            .unwrap();
        assert!(!pdb.passed, "{pdb:?}");
        assert!(cluster.can(EXECUTOR, "patch", "deployments", Some("prod")));
        assert!(!cluster.can("someone-else", "patch", "deployments", None));
    }

    #[test]
    fn a_restart_replaces_every_pod_and_heals_crashes() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let prod = Some("prod");
        let before = cluster.pod_names(prod, "order-api");
        assert_eq!(before.len(), 3);
        let crashed = before.iter().next().unwrap().clone();
        cluster.chaos(Chaos::CrashPod, prod, &crashed).unwrap();
        let d = cluster.object("deployments", prod, "order-api").unwrap();
        assert_eq!((d.replicas, d.ready), (Some(3), Some(2)));
        let version = d.version;
        cluster
            .apply(
                1,
                &request("restart_deployment", "order-api", serde_json::json!({})),
            )
            .unwrap();
        let after = cluster.pod_names(prod, "order-api");
        assert_eq!(after.len(), 3);
        assert!(after.is_disjoint(&before), "{before:?} → {after:?}");
        let d = cluster.object("deployments", prod, "order-api").unwrap();
        assert_eq!(d.ready, Some(3));
        assert!(d.version > version);
    }

    #[test]
    fn chaos_exhausts_a_database_and_changes_replicas() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let prod = Some("prod");
        cluster
            .chaos(Chaos::ExhaustDatabase, prod, "postgres-db")
            .unwrap();
        let db = cluster.object("deployments", prod, "postgres-db").unwrap();
        assert_eq!(db.ready, Some(0));
        assert_eq!(db.condition.as_deref(), Some("ConnectionsExhausted"));
        cluster
            .chaos(Chaos::SetReplicas(5), prod, "frontend")
            .unwrap();
        assert_eq!(cluster.pod_names(prod, "frontend").len(), 5);
        cluster
            .chaos(Chaos::SetReplicas(1), prod, "frontend")
            .unwrap();
        assert_eq!(cluster.pod_names(prod, "frontend").len(), 1);
        assert_eq!(
            cluster.chaos(Chaos::CrashPod, prod, "nope"),
            Err("pods/nope not found".to_owned())
        );
        assert!(
            cluster
                .list()
                .any(|l| l.resource == "nodes" && l.name == "node-1")
        );
    }

    #[test]
    fn a_deleted_pod_is_replaced_under_a_new_name() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let pod = cluster
            .objects
            .keys()
            .find(|(r, _, n)| r == "pods" && n.starts_with("frontend-"))
            .map(|(_, _, n)| n.clone())
            .unwrap();
        let said = cluster
            .apply(1, &request("delete_pod", &pod, serde_json::json!({})))
            .unwrap();
        assert!(said.starts_with(&format!(
            "pods/{pod} deleted; frontend started pods/frontend-"
        )));
        assert!(cluster.object("pods", Some("prod"), &pod).is_none());
        assert!(
            cluster
                .apply(2, &request("delete_pod", &pod, serde_json::json!({})))
                .is_err()
        );
        assert_eq!(
            cluster.applied().len(),
            1,
            "a failed action is not recorded as applied"
        );
    }

    #[test]
    fn a_bad_rollout_crash_loops_until_it_is_rolled_back() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let prod = Some("prod");
        let before = cluster.workload(prod, "order-api").unwrap();
        assert!(!before.recent_rollout && !before.crash_looping);
        assert_eq!((before.ready, before.revision), (3, 2));
        cluster.chaos(Chaos::BadRollout, prod, "order-api").unwrap();
        let broken = cluster.workload(prod, "order-api").unwrap();
        assert!(broken.recent_rollout && broken.crash_looping && broken.can_roll_back);
        assert_eq!((broken.ready, broken.revision), (0, 3));
        assert!(broken.restarts >= 3);
        let rollback = request(
            "rollback_deployment",
            "order-api",
            serde_json::json!({"to_revision": "previous"}),
        );
        cluster.apply(1, &rollback).unwrap();
        let healed = cluster.workload(prod, "order-api").unwrap();
        assert!(!healed.recent_rollout && !healed.crash_looping);
        assert_eq!((healed.ready, healed.revision), (3, 2));
        assert_eq!(cluster.workload(prod, "no-such-thing"), None);
    }

    #[test]
    fn diagnostics_read_a_workload_and_pass_their_own_dry_run_at_any_blast_radius() {
        let mut cluster = SimCluster::from_topology(&Topology::demo());
        let prod = Some("prod");
        let crashed = cluster
            .pod_names(prod, "order-api")
            .into_iter()
            .next()
            .unwrap();
        cluster.chaos(Chaos::CrashPod, prod, &crashed).unwrap();
        let diagnose = request("run_diagnostics", "order-api", serde_json::json!({}));
        // Far above the blast limit: a read changes none of the dependents.
        let report = dry_run(&diagnose, &cluster, EXECUTOR, 50, 10);
        assert!(report.passed, "{report:?}");
        let version = cluster
            .object("deployments", prod, "order-api")
            .unwrap()
            .version;
        let said = cluster.apply(9, &diagnose).unwrap();
        assert!(
            said.starts_with("deployments/order-api: 2/3 ready, revision 2"),
            "{said}"
        );
        assert_eq!(
            said.lines().count(),
            4,
            "the deployment and its three pods: {said}"
        );
        assert!(
            said.contains(&format!("pods/{crashed} CrashLoopBackOff"))
                && said.contains("1 restart(s)"),
            "{said}"
        );
        let after = cluster.object("deployments", prod, "order-api").unwrap();
        assert_eq!(after.version, version, "a read changes nothing");

        let missing = request("run_diagnostics", "no-such-service", serde_json::json!({}));
        let report = dry_run(&missing, &cluster, EXECUTOR, 0, 10);
        let exists = report
            .checks
            .iter()
            .find(|c| c.name == CheckName::ResourceExists)
            .unwrap();
        assert!(!exists.passed && exists.detail == "deployments/no-such-service not found");
        assert!(cluster.apply(10, &missing).is_err());
    }
}
