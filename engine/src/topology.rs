//! GraphRAG's graph: services, their kinds and `depends_on` edges, and the two walks the
//! product is built on — blast radius (who breaks with a service) and root causes (which
//! unhealthy dependencies could explain it).

use std::collections::{HashMap, VecDeque};
use std::fmt;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

/// What a service is; root causes rank by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceKind {
    Ingress,
    Service,
    Database,
    Cache,
    Queue,
    Storage,
    External,
}

impl ServiceKind {
    /// Root-cause priority: DATABASE > CACHE > QUEUE > STORAGE > everything else.
    pub fn root_cause_priority(self) -> u8 {
        match self {
            ServiceKind::Database => 0,
            ServiceKind::Cache => 1,
            ServiceKind::Queue => 2,
            ServiceKind::Storage => 3,
            _ => 4,
        }
    }
}

/// One service as the topology file declares it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    pub kind: ServiceKind,
    #[serde(default)]
    pub namespace: Option<String>,
    /// The services this one calls or needs.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    services: Vec<ServiceSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("invalid topology file: {0}")]
    Parse(String),
    #[error("service #{0} has an empty name")]
    EmptyName(usize),
    #[error("service `{0}` is declared twice")]
    Duplicate(String),
    #[error("service `{service}` depends on `{missing}`, which is not declared")]
    UnknownDependency { service: String, missing: String },
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("maxDepth must be between 1 and {max}, got {got}")]
    BadDepth { got: i64, max: u32 },
}

pub const MAX_DEPTH: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceNode {
    pub name: String,
    pub kind: ServiceKind,
    pub namespace: Option<String>,
}

/// A service reached by a walk, and how many hops away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedService {
    pub service: String,
    pub kind: ServiceKind,
    pub depth: u32,
}

/// Everything that breaks with `target`, nearest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlastRadius {
    pub target: String,
    pub affected: Vec<AffectedService>,
    pub max_depth: u32,
}

/// An unhealthy dependency that may explain the target's trouble; `rank` 1 is the likeliest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootCause {
    pub service: String,
    pub kind: ServiceKind,
    pub depth: u32,
    pub rank: u32,
}

/// The dependency graph. Edges point from a service to what it depends on. Cycles are allowed.
#[derive(Clone, Default)]
pub struct Topology {
    graph: DiGraph<ServiceNode, ()>,
    index: HashMap<String, NodeIndex>,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("services", &self.graph.node_count())
            .field("edges", &self.graph.edge_count())
            .finish()
    }
}

/// The seed's demo: ingress → frontend → auth-service, product-api, order-api → postgres-db,
/// with a cache behind product-api and a queue behind order-api.
pub const DEMO_YAML: &str = r#"
services:
  - name: ingress
    kind: INGRESS
    namespace: prod
    depends_on: [frontend]
  - name: frontend
    kind: SERVICE
    namespace: prod
    depends_on: [auth-service, product-api, order-api]
  - name: auth-service
    kind: SERVICE
    namespace: prod
    depends_on: [postgres-db]
  - name: product-api
    kind: SERVICE
    namespace: prod
    depends_on: [postgres-db, redis-cache]
  - name: order-api
    kind: SERVICE
    namespace: prod
    depends_on: [postgres-db, order-queue]
  - name: postgres-db
    kind: DATABASE
    namespace: prod
  - name: redis-cache
    kind: CACHE
    namespace: prod
  - name: order-queue
    kind: QUEUE
    namespace: prod
"#;

impl Topology {
    pub fn demo() -> Topology {
        Topology::from_yaml(DEMO_YAML).expect("demo topology is valid")
    }

    /// Reads the YAML file format of API.md.
    pub fn from_yaml(text: &str) -> Result<Topology, TopologyError> {
        let file: TopologyFile =
            serde_norway::from_str(text).map_err(|e| TopologyError::Parse(e.to_string()))?;
        Topology::from_specs(&file.services)
    }

    pub fn from_specs(specs: &[ServiceSpec]) -> Result<Topology, TopologyError> {
        let mut topology = Topology::default();
        for (i, spec) in specs.iter().enumerate() {
            let name = spec.name.trim();
            if name.is_empty() {
                return Err(TopologyError::EmptyName(i + 1));
            }
            if topology.index.contains_key(name) {
                return Err(TopologyError::Duplicate(name.to_owned()));
            }
            let node = topology.graph.add_node(ServiceNode {
                name: name.to_owned(),
                kind: spec.kind,
                namespace: spec.namespace.clone(),
            });
            topology.index.insert(name.to_owned(), node);
        }
        for spec in specs {
            let from = topology.index[spec.name.trim()];
            for dependency in &spec.depends_on {
                let to = *topology.index.get(dependency.trim()).ok_or_else(|| {
                    TopologyError::UnknownDependency {
                        service: spec.name.trim().to_owned(),
                        missing: dependency.clone(),
                    }
                })?;
                topology.graph.update_edge(from, to, ());
            }
        }
        Ok(topology)
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn contains(&self, service: &str) -> bool {
        self.index.contains_key(service)
    }

    /// Services in declaration order.
    pub fn services(&self) -> impl Iterator<Item = &ServiceNode> {
        self.graph.node_weights()
    }

    /// `(from, to)`: `from` depends on `to`.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.graph.raw_edges().iter().map(|e| {
            (
                self.graph[e.source()].name.as_str(),
                self.graph[e.target()].name.as_str(),
            )
        })
    }

    fn node(&self, service: &str) -> Result<NodeIndex, TopologyError> {
        self.index
            .get(service)
            .copied()
            .ok_or_else(|| TopologyError::UnknownService(service.to_owned()))
    }

    /// Breadth-first walk from `start` (excluded) along `direction`, up to `max_depth` hops.
    fn walk(
        &self,
        start: NodeIndex,
        direction: Direction,
        max_depth: u32,
    ) -> Vec<(NodeIndex, u32)> {
        let mut seen = vec![false; self.graph.node_count()];
        seen[start.index()] = true;
        let mut queue = VecDeque::from([(start, 0u32)]);
        let mut reached = Vec::new();
        while let Some((node, depth)) = queue.pop_front() {
            if depth == max_depth {
                continue;
            }
            for next in self.graph.neighbors_directed(node, direction) {
                if !seen[next.index()] {
                    seen[next.index()] = true;
                    reached.push((next, depth + 1));
                    queue.push_back((next, depth + 1));
                }
            }
        }
        reached
    }

    /// Who depends on `service`, directly or not, within `max_depth` hops — nearest first,
    /// then by name.
    pub fn blast_radius(
        &self,
        service: &str,
        max_depth: i64,
    ) -> Result<BlastRadius, TopologyError> {
        let max_depth = check_depth(max_depth)?;
        let start = self.node(service)?;
        let mut affected: Vec<AffectedService> = self
            .walk(start, Direction::Incoming, max_depth)
            .into_iter()
            .map(|(node, depth)| AffectedService {
                service: self.graph[node].name.clone(),
                kind: self.graph[node].kind,
                depth,
            })
            .collect();
        affected.sort_by(|a, b| (a.depth, &a.service).cmp(&(b.depth, &b.service)));
        Ok(BlastRadius {
            target: service.to_owned(),
            affected,
            max_depth,
        })
    }

    /// Every unhealthy dependency of `service` within `max_depth` hops (never `service`
    /// itself), ranked by kind, then depth, then name.
    pub fn root_causes(
        &self,
        service: &str,
        max_depth: i64,
        unhealthy: impl Fn(&str) -> bool,
    ) -> Result<Vec<RootCause>, TopologyError> {
        let max_depth = check_depth(max_depth)?;
        let start = self.node(service)?;
        let mut causes: Vec<RootCause> = self
            .walk(start, Direction::Outgoing, max_depth)
            .into_iter()
            .filter(|(node, _)| unhealthy(&self.graph[*node].name))
            .map(|(node, depth)| RootCause {
                service: self.graph[node].name.clone(),
                kind: self.graph[node].kind,
                depth,
                rank: 0,
            })
            .collect();
        causes.sort_by(|a, b| {
            (a.kind.root_cause_priority(), a.depth, &a.service).cmp(&(
                b.kind.root_cause_priority(),
                b.depth,
                &b.service,
            ))
        });
        for (i, cause) in causes.iter_mut().enumerate() {
            cause.rank = i as u32 + 1;
        }
        Ok(causes)
    }
}

fn check_depth(max_depth: i64) -> Result<u32, TopologyError> {
    if (1..=i64::from(MAX_DEPTH)).contains(&max_depth) {
        Ok(max_depth as u32)
    } else {
        Err(TopologyError::BadDepth {
            got: max_depth,
            max: MAX_DEPTH,
        })
    }
}

#[cfg(test)]
mod tests;
