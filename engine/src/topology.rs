//! GraphRAG's graph: services, their kinds and `depends_on` edges, and the two walks the
//! product is built on — blast radius (who breaks with a service) and root causes (which
//! unhealthy dependencies could explain it).

use std::collections::HashMap;
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

/// Per-thread walk buffers: a "seen" bitset over the services (a few KiB, so it stays in
/// the first-level cache), the BFS queue, which doubles as the visit order (sized for every
/// service, so the walk appends with a plain index), and where each depth's services end in
/// it. The bits a walk set are cleared at the start of the next one.
#[derive(Default)]
struct Scratch {
    seen: Vec<u64>,
    queue: Vec<u32>,
    /// How much of `queue` the last walk filled.
    filled: usize,
    ends: Vec<usize>,
}

impl Scratch {
    fn begin(&mut self, services: usize) -> (&mut [u64], &mut [u32], &mut Vec<usize>) {
        // Whichever writes less: the whole bitset, or the words of the services last reached.
        if self.filled >= self.seen.len() {
            self.seen.fill(0);
        } else {
            for &node in &self.queue[..self.filled] {
                if let Some(word) = self.seen.get_mut(node as usize / 64) {
                    *word = 0;
                }
            }
        }
        self.filled = 0;
        self.ends.clear();
        let words = services.div_ceil(64);
        if self.seen.len() < words {
            self.seen.resize(words, 0);
        }
        if self.queue.len() < services {
            self.queue.resize(services, 0);
        }
        (
            &mut self.seen[..words],
            &mut self.queue[..services],
            &mut self.ends,
        )
    }
}

/// What a walk reached: the start, then each depth's services, in `order`; depth `d`'s end
/// is `ends[d - 1]`.
struct Levels<'s> {
    order: &'s [u32],
    ends: &'s [usize],
}

impl<'s> Levels<'s> {
    /// Services reached, the start excluded.
    fn reached(&self) -> usize {
        self.order.len() - 1
    }

    /// `(depth, services at that depth)`, nearest first.
    fn iter(&self) -> impl Iterator<Item = (u32, &'s [u32])> + '_ {
        let order = self.order;
        std::iter::once(1)
            .chain(self.ends.iter().copied())
            .zip(self.ends.iter().copied())
            .zip(1..)
            .map(move |((from, to), depth)| (depth, &order[from..to]))
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceNode {
    pub name: String,
    pub kind: ServiceKind,
    pub namespace: Option<String>,
}

/// A service reached by a walk, and how many hops away. Borrows from the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedService<'t> {
    pub service: &'t str,
    pub kind: ServiceKind,
    pub depth: u32,
}

/// Everything that breaks with `target`, nearest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlastRadius<'t> {
    pub target: &'t str,
    pub affected: Vec<AffectedService<'t>>,
    pub max_depth: u32,
}

/// An unhealthy dependency that may explain the target's trouble; `rank` 1 is the likeliest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootCause<'t> {
    pub service: &'t str,
    pub kind: ServiceKind,
    pub depth: u32,
    pub rank: u32,
}

/// Which services are unhealthy, as a mask over a topology's services (built once per
/// question, so the walks test health without hashing names).
#[derive(Debug, Clone, Default)]
pub struct Unhealthy(Vec<u64>);

impl Unhealthy {
    fn contains(&self, node: usize) -> bool {
        self.0
            .get(node / 64)
            .is_some_and(|word| word & (1 << (node % 64)) != 0)
    }
}

/// The dependency graph. Edges point from a service to what it depends on. Cycles are allowed.
#[derive(Clone, Default)]
pub struct Topology {
    graph: DiGraph<ServiceNode, ()>,
    /// Name → node. foldhash: the walks start with a lookup, and SipHash cost more than the
    /// lookup's probe; the keys are the operator's own service names.
    index: HashMap<String, NodeIndex, foldhash::fast::RandomState>,
    /// Each service's position in name order, for cheap name tie-breaks.
    name_rank: Vec<u32>,
    /// Names and kinds by node, packed apart from the graph's nodes: the walks' results read
    /// them for every service reached.
    names: Vec<Box<str>>,
    kinds: Vec<ServiceKind>,
    /// Compressed adjacency (dependencies, then dependents), each list in name order: the
    /// walks read contiguous memory, and their output is ordered without sorting.
    outgoing: Adjacency,
    incoming: Adjacency,
}

/// A compressed adjacency: each service's neighbors, one list after another. Services are
/// numbered in 16 bits when there are at most 65,536 of them: the lists take half the memory,
/// and a walk, which reads a list at a random place for every service it expands, finds more
/// of them in cache.
#[derive(Clone)]
enum Adjacency {
    Narrow(Lists<u16>),
    Wide(Lists<u32>),
}

impl Default for Adjacency {
    fn default() -> Self {
        Adjacency::Narrow(Lists::default())
    }
}

#[derive(Clone, Default)]
struct Lists<I> {
    start: Vec<u32>,
    list: Vec<I>,
}

impl<I: Copy + TryFrom<usize> + Into<u32>> Lists<I> {
    /// `None` if a service's number does not fit in `I`.
    fn build(
        graph: &DiGraph<ServiceNode, ()>,
        direction: Direction,
        name_rank: &[u32],
    ) -> Option<Self> {
        let mut start = Vec::with_capacity(graph.node_count() + 1);
        let mut list: Vec<I> = Vec::with_capacity(graph.edge_count());
        for node in graph.node_indices() {
            start.push(list.len() as u32);
            let first = list.len();
            for neighbor in graph.neighbors_directed(node, direction) {
                list.push(I::try_from(neighbor.index()).ok()?);
            }
            list[first..].sort_unstable_by_key(|&n| name_rank[n.into() as usize]);
        }
        start.push(list.len() as u32);
        Some(Lists { start, list })
    }
}

impl<I> Lists<I> {
    fn neighbors(&self, node: usize) -> &[I] {
        &self.list[self.start[node] as usize..self.start[node + 1] as usize]
    }
}

impl Adjacency {
    fn build(graph: &DiGraph<ServiceNode, ()>, direction: Direction, name_rank: &[u32]) -> Self {
        match Lists::<u16>::build(graph, direction, name_rank) {
            Some(narrow) => Adjacency::Narrow(narrow),
            None => Adjacency::Wide(
                Lists::<u32>::build(graph, direction, name_rank)
                    .expect("a topology's services are numbered in 32 bits"),
            ),
        }
    }
}

/// How many places ahead in the queue [`breadth_first`] asks for a service's list.
const AHEAD: usize = 4;

/// Asks the processor to start loading the cache line of `data`; a hint, which changes no
/// result.
#[inline(always)]
fn prefetch<T>(data: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address, and writes nothing.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(data.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Breadth-first from `queue[0]` (already marked in `seen`) along `lists`, up to `max_depth`
/// hops: appends each service met to `queue` and each depth's end to `ends`; returns how much
/// of `queue` it filled.
fn breadth_first<I: Copy + Into<u32>>(
    lists: &Lists<I>,
    max_depth: u32,
    seen: &mut [u64],
    queue: &mut [u32],
    ends: &mut Vec<usize>,
) -> usize {
    // Each service enters the queue at most once, so `len` stays within it.
    let mut len = 1;
    let mut level = 0..1;
    for _ in 0..max_depth {
        for i in level.clone() {
            // Each service's list is read at a random place in memory: the lists of the
            // services a few places ahead in the queue are asked for before they are needed,
            // and where their lists start before that.
            if i + 2 * AHEAD < len {
                prefetch(&lists.start[queue[i + 2 * AHEAD] as usize]);
            }
            if i + AHEAD < len {
                let at = lists.start[queue[i + AHEAD] as usize] as usize;
                prefetch(lists.list.as_ptr().wrapping_add(at));
            }
            let node = queue[i] as usize;
            for &neighbor in lists.neighbors(node) {
                let neighbor: u32 = neighbor.into();
                let word = &mut seen[neighbor as usize / 64];
                let bit = 1u64 << (neighbor % 64);
                if *word & bit == 0 {
                    *word |= bit;
                    queue[len] = neighbor;
                    len += 1;
                }
            }
        }
        if len == level.end {
            break;
        }
        level = level.end..len;
        ends.push(len);
    }
    len
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
        let mut by_name: Vec<usize> = (0..topology.graph.node_count()).collect();
        by_name.sort_by(|a, b| {
            let name = |i: usize| &topology.graph[NodeIndex::new(i)].name;
            name(*a).cmp(name(*b))
        });
        topology.name_rank = vec![0; by_name.len()];
        for (rank, node) in by_name.into_iter().enumerate() {
            topology.name_rank[node] = rank as u32;
        }
        topology.names = topology
            .graph
            .node_weights()
            .map(|n| n.name.as_str().into())
            .collect();
        topology.kinds = topology.graph.node_weights().map(|n| n.kind).collect();
        topology.outgoing =
            Adjacency::build(&topology.graph, Direction::Outgoing, &topology.name_rank);
        topology.incoming =
            Adjacency::build(&topology.graph, Direction::Incoming, &topology.name_rank);
        Ok(topology)
    }

    /// The mask of `names` that are services of this topology (others are ignored).
    pub fn unhealthy<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Unhealthy {
        let mut mask = vec![0u64; self.graph.node_count().div_ceil(64)];
        for name in names {
            if let Some(node) = self.index.get(name) {
                mask[node.index() / 64] |= 1 << (node.index() % 64);
            }
        }
        Unhealthy(mask)
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

    /// Breadth-first walk from `start` (excluded) along `direction`, up to `max_depth` hops;
    /// then `reached(levels)` with the services met at each depth (`levels[0]` at depth 1),
    /// each level in (parent order, name) order.
    fn walk<R>(
        &self,
        start: NodeIndex,
        direction: Direction,
        max_depth: u32,
        reached: impl FnOnce(Levels<'_>) -> R,
    ) -> R {
        let adjacency = match direction {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        };
        SCRATCH.with_borrow_mut(|scratch| {
            let (seen, queue, ends) = scratch.begin(self.graph.node_count());
            let start = start.index();
            seen[start / 64] |= 1 << (start % 64);
            queue[0] = start as u32;
            let len = match adjacency {
                Adjacency::Narrow(lists) => breadth_first(lists, max_depth, seen, queue, ends),
                Adjacency::Wide(lists) => breadth_first(lists, max_depth, seen, queue, ends),
            };
            scratch.filled = len;
            reached(Levels {
                order: &scratch.queue[..len],
                ends: &scratch.ends,
            })
        })
    }

    /// Who depends on `service`, directly or not, within `max_depth` hops — nearest first;
    /// within a level, in the order the walk meets them (parents in order, then by name).
    pub fn blast_radius(
        &self,
        service: &str,
        max_depth: i64,
    ) -> Result<BlastRadius<'_>, TopologyError> {
        let max_depth = check_depth(max_depth)?;
        let start = self.node(service)?;
        let affected = self.walk(start, Direction::Incoming, max_depth, |levels| {
            let mut affected = Vec::with_capacity(levels.reached());
            for (depth, level) in levels.iter() {
                affected.extend(level.iter().map(|&node| AffectedService {
                    service: &self.names[node as usize],
                    kind: self.kinds[node as usize],
                    depth,
                }));
            }
            affected
        });
        Ok(BlastRadius {
            target: &self.graph[start].name,
            affected,
            max_depth,
        })
    }

    /// How many services depend on `service` within `max_depth` hops: the size of its blast
    /// radius, without building it.
    pub fn blast_radius_len(&self, service: &str, max_depth: i64) -> Result<usize, TopologyError> {
        let max_depth = check_depth(max_depth)?;
        let start = self.node(service)?;
        Ok(self.walk(start, Direction::Incoming, max_depth, |levels| {
            levels.reached()
        }))
    }

    /// What `service` depends on, directly or not, within `max_depth` hops (1 to
    /// [`MAX_DEPTH`]), nearest first; empty for a service outside the topology.
    pub fn dependencies(&self, service: &str, max_depth: u32) -> Vec<&str> {
        self.reach(service, Direction::Outgoing, max_depth)
    }

    /// Who depends on `service` within `max_depth` hops (the blast radius' names).
    pub fn dependents(&self, service: &str, max_depth: u32) -> Vec<&str> {
        self.reach(service, Direction::Incoming, max_depth)
    }

    fn reach(&self, service: &str, direction: Direction, max_depth: u32) -> Vec<&str> {
        let Some(&start) = self.index.get(service) else {
            return Vec::new();
        };
        self.walk(start, direction, max_depth.clamp(1, MAX_DEPTH), |levels| {
            levels
                .iter()
                .flat_map(|(_, level)| level)
                .map(|&node| &*self.names[node as usize])
                .collect()
        })
    }

    /// The service's kind, if it is in the topology.
    pub fn kind_of(&self, service: &str) -> Option<ServiceKind> {
        self.index.get(service).map(|&i| self.kinds[i.index()])
    }

    /// Every unhealthy dependency of `service` within `max_depth` hops (never `service`
    /// itself), ranked by kind, then depth, then name.
    pub fn root_causes(
        &self,
        service: &str,
        max_depth: i64,
        unhealthy: &Unhealthy,
    ) -> Result<Vec<RootCause<'_>>, TopologyError> {
        let max_depth = check_depth(max_depth)?;
        let start = self.node(service)?;
        // (kind priority, depth, name rank) packed into one integer, and the node: sorting
        // these is the ranking, and the results are built once it is done.
        let mut found: Vec<(u64, usize)> =
            self.walk(start, Direction::Outgoing, max_depth, |levels| {
                let mut found = Vec::with_capacity(16);
                for (depth, level) in levels.iter() {
                    for &node in level {
                        let node = node as usize;
                        if unhealthy.contains(node) {
                            let key = u64::from(self.kinds[node].root_cause_priority()) << 56
                                | u64::from(depth) << 32
                                | u64::from(self.name_rank[node]);
                            found.push((key, node));
                        }
                    }
                }
                found
            });
        found.sort_unstable_by_key(|&(key, _)| key);
        let causes = found
            .into_iter()
            .zip(1..)
            .map(|((key, node), rank)| RootCause {
                service: &self.names[node],
                kind: self.kinds[node],
                depth: (key >> 32) as u32 & 0xff_ffff,
                rank,
            })
            .collect();
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
