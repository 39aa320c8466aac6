//! The service graph: the whole topology with live health, blast radius and root causes.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Enum, Object, SimpleObject};
use engine::topology::{Topology, TopologyError};
use sea_orm::DatabaseConnection;

use super::{ApiError, principal};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::topology::ServiceKind")]
pub enum ServiceKind {
    Ingress,
    Service,
    Database,
    Cache,
    Queue,
    Storage,
    External,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
}

/// A service of the topology.
#[derive(SimpleObject)]
pub struct Service {
    name: String,
    kind: ServiceKind,
    namespace: Option<String>,
    /// False while a firing alert names it.
    healthy: bool,
}

/// `from` depends on `to`.
#[derive(SimpleObject)]
pub struct Edge {
    from: String,
    to: String,
}

#[derive(SimpleObject)]
#[graphql(name = "Topology")]
pub struct TopologyView {
    services: Vec<Service>,
    edges: Vec<Edge>,
}

#[derive(SimpleObject)]
pub struct AffectedService {
    pub(crate) service: String,
    pub(crate) kind: ServiceKind,
    pub(crate) depth: i32,
}

/// Everything that breaks with `target`, nearest first.
#[derive(SimpleObject)]
pub struct BlastRadius {
    pub(crate) target: String,
    pub(crate) affected: Vec<AffectedService>,
    pub(crate) max_depth: i32,
}

/// An unhealthy dependency that may explain the trouble; rank 1 is the likeliest.
#[derive(SimpleObject)]
pub struct RootCause {
    pub(crate) service: String,
    pub(crate) kind: ServiceKind,
    pub(crate) depth: i32,
    pub(crate) health: Health,
    pub(crate) rank: i32,
}

async fn unhealthy_services(db: &DatabaseConnection) -> Result<HashSet<String>, ApiError> {
    crate::services::analysis::firing_services(db)
        .await
        .map_err(ApiError::internal)
}

fn topology_error(error: TopologyError) -> ApiError {
    match error {
        TopologyError::UnknownService(name) => {
            ApiError::NotFound(format!("no service `{name}` in the topology"))
        }
        other => ApiError::BadUserInput(other.to_string()),
    }
}

#[derive(Default)]
pub struct TopologyQuery;

#[Object]
impl TopologyQuery {
    /// Every service with its health, and every dependency.
    async fn topology(&self, ctx: &Context<'_>) -> async_graphql::Result<TopologyView> {
        principal(ctx)?;
        let topology = ctx.data::<Arc<Topology>>()?;
        let unhealthy = unhealthy_services(ctx.data::<DatabaseConnection>()?).await?;
        Ok(TopologyView {
            services: topology
                .services()
                .map(|s| Service {
                    name: s.name.clone(),
                    kind: s.kind.into(),
                    namespace: s.namespace.clone(),
                    healthy: !unhealthy.contains(&s.name),
                })
                .collect(),
            edges: topology
                .edges()
                .map(|(from, to)| Edge {
                    from: from.to_owned(),
                    to: to.to_owned(),
                })
                .collect(),
        })
    }

    /// Who breaks with `service` (reverse dependencies, breadth first, up to `maxDepth` 1–10).
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        service: String,
        #[graphql(default = 3)] max_depth: i32,
    ) -> async_graphql::Result<BlastRadius> {
        principal(ctx)?;
        let topology = ctx.data::<Arc<Topology>>()?;
        let radius = topology
            .blast_radius(&service, i64::from(max_depth))
            .map_err(topology_error)?;
        Ok(BlastRadius {
            target: radius.target.to_owned(),
            affected: radius
                .affected
                .into_iter()
                .map(|a| AffectedService {
                    service: a.service.to_owned(),
                    kind: a.kind.into(),
                    depth: a.depth as i32,
                })
                .collect(),
            max_depth: radius.max_depth as i32,
        })
    }

    /// Every unhealthy dependency of `service` within `maxDepth` (1–10), ranked
    /// DATABASE > CACHE > QUEUE > STORAGE > others, then by depth, then by name.
    async fn root_causes(
        &self,
        ctx: &Context<'_>,
        service: String,
        #[graphql(default = 3)] max_depth: i32,
    ) -> async_graphql::Result<Vec<RootCause>> {
        principal(ctx)?;
        let topology = ctx.data::<Arc<Topology>>()?;
        let unhealthy = unhealthy_services(ctx.data::<DatabaseConnection>()?).await?;
        let unhealthy = topology.unhealthy(unhealthy.iter().map(String::as_str));
        let causes = topology
            .root_causes(&service, i64::from(max_depth), &unhealthy)
            .map_err(topology_error)?;
        Ok(causes
            .into_iter()
            .map(|c| RootCause {
                service: c.service.to_owned(),
                kind: c.kind.into(),
                depth: c.depth as i32,
                health: Health::Unhealthy,
                rank: c.rank as i32,
            })
            .collect())
    }
}
