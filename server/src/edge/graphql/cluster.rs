//! The simulated cluster over GraphQL: what runs (`cluster`), and the chaos hook that breaks
//! it on purpose for demos and tests (`clusterChaos`, ADMIN, audited).

use async_graphql::{Context, Enum, Object, SimpleObject};
use engine::Role;
use engine::simcluster::Chaos;
use engine::simcluster::quantity::{format_cpu, format_mib};
use sea_orm::DatabaseConnection;

use super::{ApiError, principal, require_role};
use crate::services::approvals::Approvals;

/// One object of the simulated cluster.
#[derive(SimpleObject)]
pub struct ClusterObject {
    /// `deployments`, `pods`, `persistentvolumeclaims`, `nodes`.
    resource: String,
    /// Empty for cluster-scoped resources (nodes).
    namespace: String,
    name: String,
    /// Changes with every write to the object.
    version: String,
    replicas: Option<i32>,
    ready: Option<i32>,
    revision: i32,
    /// Pods: `Running`, `CrashLoopBackOff`.
    phase: Option<String>,
    restarts: i32,
    /// Pods: the deployment that owns them.
    owner: Option<String>,
    /// Deployments: what is wrong (`ConnectionsExhausted`).
    condition: Option<String>,
    cordoned: bool,
    /// Pods: the node they run on.
    node: Option<String>,
    /// Pods and deployments (per pod): requested CPU (`500m`); nodes: their capacity.
    cpu: Option<String>,
    /// Pods and deployments (per pod): requested memory (`1Gi`); nodes: their capacity.
    memory: Option<String>,
    /// Pods: the claims they mount.
    volumes: Vec<String>,
    /// Claims: their size (`400Gi`).
    storage: Option<String>,
    /// Nodes: the instance type; claims: the storage class.
    class: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChaosKind {
    /// `target` is a pod: it crash-loops.
    CrashPod,
    /// `target` is a deployment: it runs out of connections.
    ExhaustDatabase,
    /// `target` is a deployment: its replica count becomes `replicas`.
    SetReplicas,
    /// `target` is a deployment: it rolls out a new revision whose pods crash-loop.
    BadRollout,
}

fn simulated<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Approvals> {
    let approvals = ctx.data::<Approvals>()?;
    if approvals.simulated_cluster().is_none() {
        return Err(
            ApiError::Conflict("the cluster backend is not the simulated one".into()).into(),
        );
    }
    Ok(approvals)
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct ClusterQuery;

#[Object]
impl ClusterQuery {
    /// Every object of the simulated cluster, by resource, namespace and name.
    async fn cluster(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ClusterObject>> {
        principal(ctx)?;
        let cluster = simulated(ctx)?
            .simulated_cluster()
            .expect("checked by simulated()");
        Ok(cluster.with(|c| {
            c.list()
                .map(|l| ClusterObject {
                    resource: l.resource.to_owned(),
                    namespace: l.namespace.to_owned(),
                    name: l.name.to_owned(),
                    version: l.object.version.to_string(),
                    replicas: l.object.replicas.map(to_i32),
                    ready: l.object.ready.map(to_i32),
                    revision: to_i32(l.object.revision),
                    phase: l.object.phase.clone(),
                    restarts: to_i32(l.object.restarts),
                    owner: l.object.owner.clone(),
                    condition: l.object.condition.clone(),
                    cordoned: l.object.cordoned,
                    node: l.object.node.clone(),
                    cpu: l.object.resources.map(|r| format_cpu(r.cpu_millis)),
                    memory: l.object.resources.map(|r| format_mib(r.memory_mib)),
                    volumes: l.object.volumes.clone(),
                    storage: l.object.storage_mib.map(format_mib),
                    class: l.object.class.clone(),
                })
                .collect()
        }))
    }
}

#[derive(Default)]
pub struct ClusterMutation;

#[Object]
impl ClusterMutation {
    /// Breaks something in the simulated cluster (ADMIN). Approvals dry-run before the change
    /// are voided at execution, as on a real cluster.
    async fn cluster_chaos(
        &self,
        ctx: &Context<'_>,
        kind: ChaosKind,
        target: String,
        namespace: Option<String>,
        replicas: Option<i32>,
    ) -> async_graphql::Result<String> {
        let who = require_role(ctx, &[Role::Admin])?;
        let chaos = match (kind, replicas) {
            (ChaosKind::CrashPod, _) => Chaos::CrashPod,
            (ChaosKind::ExhaustDatabase, _) => Chaos::ExhaustDatabase,
            (ChaosKind::BadRollout, _) => Chaos::BadRollout,
            (ChaosKind::SetReplicas, Some(r)) if (0..=1_000).contains(&r) => {
                Chaos::SetReplicas(r as u32)
            }
            (ChaosKind::SetReplicas, _) => {
                return Err(ApiError::BadUserInput(
                    "replicas: SET_REPLICAS needs replicas between 0 and 1000".into(),
                )
                .into());
            }
        };
        let approvals = simulated(ctx)?;
        let namespace = namespace.or_else(|| {
            // A pod's namespace is its deployment's; deployments are named like services.
            let service = target.rsplit_once('-').map_or(target.as_str(), |(s, _)| s);
            approvals
                .namespace_of(&target)
                .or_else(|| approvals.namespace_of(service))
        });
        let said = approvals
            .simulated_cluster()
            .expect("checked by simulated()")
            .with(|c| c.chaos(chaos, namespace.as_deref(), &target))
            .map_err(ApiError::NotFound)?;
        let db = ctx.data::<DatabaseConnection>()?;
        crate::base::audit::record(
            db,
            &who.name,
            "cluster.chaos",
            &format!("cluster:{target}"),
            serde_json::json!({"chaos": format!("{chaos:?}"), "namespace": namespace, "result": said}),
        )
        .await
        .map_err(ApiError::internal)?;
        Ok(said)
    }
}
