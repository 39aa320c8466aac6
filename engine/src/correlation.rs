//! Alert storms: which open incident a new alert belongs to, by the topology.
//!
//! When a database fails, everything above it alerts. Those alerts belong to one incident whose
//! root cause is the database. A new alert on service `S` joins an open incident (same label
//! scope, last alert within the window) when
//!
//! - `S` already alerts in it; or
//! - `S` depends (within `max_depth` hops) on one of the incident's root-cause candidates — the
//!   incident's alerted services none of whose dependencies alert ("order-api depends on
//!   postgres-db, which is this incident's root cause"); or
//! - `S` is itself a root-cause candidate of the incident: one of its root-cause candidates
//!   depends on `S` ("auth-service depends on postgres-db"). An alerting service already
//!   explained by a root below it is not re-explained: a failing cache under a frontend that
//!   the failing database explains opens its own incident.
//!
//! A service that depends on an incident's root is explained by it: it joins (the likeliest root
//! by kind, as [`Topology::root_causes`] ranks, when it depends on several — a frontend above a
//! failing database and a failing cache explains neither, and the two failures stay two
//! incidents). Only a service no alerting dependency explains can be a new root: when it is a
//! root-cause candidate of two or more open incidents, they share it and merge into the oldest.
//!
//! Everything here is decided from names and times alone; the caller keeps the groups.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};

use crate::alert::Labels;
use crate::topology::Topology;

/// The grouping rules (configuration, with these defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Hops along the topology (default 3).
    pub max_depth: u32,
    /// An incident takes new alerts while its last one is at most this old (default 15 min).
    pub window: chrono::Duration,
    /// Labels whose values must be equal for alerts to share an incident (default
    /// `namespace`, `cluster`; a missing label is the empty value).
    pub match_labels: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_depth: 3,
            window: chrono::Duration::minutes(15),
            match_labels: vec!["namespace".into(), "cluster".into()],
        }
    }
}

impl Rules {
    /// The alert's values of the labels that must match.
    pub fn scope_of(&self, labels: &Labels) -> Vec<String> {
        self.match_labels
            .iter()
            .map(|l| labels.get(l).cloned().unwrap_or_default())
            .collect()
    }
}

/// An open incident as correlation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub opened_at: DateTime<Utc>,
    pub last_alert_at: DateTime<Utc>,
    pub scope: Vec<String>,
    /// Its alerted services that are in the topology ([`Correlator::add`] keeps `roots`).
    services: BTreeSet<String>,
    /// Its root-cause candidates, likeliest first (kept, so a storm does not recompute them
    /// for every alert).
    roots: Vec<String>,
}

impl Group {
    pub fn new(
        id: i64,
        opened_at: DateTime<Utc>,
        last_alert_at: DateTime<Utc>,
        scope: Vec<String>,
    ) -> Group {
        Group {
            id,
            opened_at,
            last_alert_at,
            scope,
            services: BTreeSet::new(),
            roots: Vec::new(),
        }
    }

    pub fn services(&self) -> &BTreeSet<String> {
        &self.services
    }

    /// Root-cause candidates, likeliest first; the first is the incident's root cause.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }
}

/// Why an alert joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The service already alerts in the incident.
    SameService,
    /// The service depends on the incident's root-cause candidate `root`.
    DependsOnRoot { root: String },
    /// `dependent`, alerting in the incident, depends on the service.
    RootOf { dependent: String },
}

impl Why {
    /// For the thinking stream.
    pub fn explain(&self, service: &str) -> String {
        match self {
            Why::SameService => format!("{service} already alerts in this incident"),
            Why::DependsOnRoot { root } => {
                format!("{service} depends on {root}, which is this incident's root cause")
            }
            Why::RootOf { dependent } => format!(
                "{dependent} depends on {service}: {service} is a root-cause candidate of this incident"
            ),
        }
    }
}

/// Where a new alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No open incident explains it: it opens its own.
    New,
    Join {
        id: i64,
        why: Why,
    },
    /// It is a root-cause candidate of all of `into` and `merged`: they merge into `into`
    /// (the oldest), and it joins.
    Merge {
        into: i64,
        merged: Vec<i64>,
        why: Why,
    },
}

/// Correlation over one topology.
pub struct Correlator<'t> {
    topology: &'t Topology,
    rules: &'t Rules,
}

impl<'t> Correlator<'t> {
    pub fn new(topology: &'t Topology, rules: &'t Rules) -> Self {
        Correlator { topology, rules }
    }

    pub fn rules(&self) -> &Rules {
        self.rules
    }

    /// Adds alerting services to `group` and recomputes its root-cause candidates; true when
    /// a service was new to it.
    pub fn add(&self, group: &mut Group, services: impl IntoIterator<Item = String>) -> bool {
        let before = group.services.len();
        group.services.extend(services);
        let grew = group.services.len() != before;
        if grew || group.roots.is_empty() {
            group.roots = self
                .roots(&group.services)
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
        grew
    }

    /// The root-cause candidates of `services`: those none of whose dependencies (within the
    /// depth) is among them, likeliest first (kind, then name).
    pub fn roots<'s>(&self, services: &'s BTreeSet<String>) -> Vec<&'s str> {
        let mut roots: Vec<&str> = services
            .iter()
            .filter(|s| {
                !self
                    .topology
                    .dependencies(s, self.rules.max_depth)
                    .iter()
                    .any(|d| *d != s.as_str() && services.contains(*d))
            })
            .map(String::as_str)
            .collect();
        roots.sort_by_key(|s| (self.priority(s), *s));
        roots
    }

    /// The likeliest root cause of `services`.
    pub fn root_cause<'s>(&self, services: &'s BTreeSet<String>) -> Option<&'s str> {
        self.roots(services).into_iter().next()
    }

    fn priority(&self, service: &str) -> u8 {
        self.topology
            .kind_of(service)
            .map_or(u8::MAX, |k| k.root_cause_priority())
    }

    /// Where an alert on `service` (in the topology) with `scope` at `at` goes, among `open`.
    ///
    /// In order: an incident where the service already alerts; else the incidents whose root
    /// the service depends on (it is a victim: the likeliest root wins, then the oldest, and
    /// nothing merges — it may be a victim of two independent failures); else the incidents
    /// it is a root-cause candidate of (one: it joins; several: they merge into the oldest).
    pub fn decide(
        &self,
        open: &[Group],
        service: &str,
        scope: &[String],
        at: DateTime<Utc>,
    ) -> Verdict {
        let depth = self.rules.max_depth;
        let mut live: Vec<&Group> = open
            .iter()
            .filter(|g| g.scope == scope && at - g.last_alert_at <= self.rules.window)
            .collect();
        live.sort_by_key(|g| (g.opened_at, g.id));
        if let Some(group) = live.iter().find(|g| g.services.contains(service)) {
            return Verdict::Join {
                id: group.id,
                why: Why::SameService,
            };
        }
        let below: HashSet<&str> = self
            .topology
            .dependencies(service, depth)
            .into_iter()
            .collect();
        let victim_of = live
            .iter()
            .filter_map(|g| {
                let root = g.roots.iter().find(|r| below.contains(r.as_str()))?;
                Some((self.priority(root), *g, root.clone()))
            })
            // `live` is oldest first and min_by_key keeps the first of equals.
            .min_by_key(|(priority, _, _)| *priority);
        if let Some((_, group, root)) = victim_of {
            return Verdict::Join {
                id: group.id,
                why: Why::DependsOnRoot { root },
            };
        }
        let above: Vec<&str> = self.topology.dependents(service, depth);
        // Only an unexplained service (a root of the incident) can be explained by this one:
        // a frontend already explained by a failing database does not pull in a failing cache.
        let mut causes = live.iter().filter_map(|g| {
            let dependent = above.iter().find(|a| g.roots.iter().any(|r| r == *a))?;
            Some((
                g.id,
                Why::RootOf {
                    dependent: (*dependent).to_owned(),
                },
            ))
        });
        let Some((into, why)) = causes.next() else {
            return Verdict::New;
        };
        let merged: Vec<i64> = causes.map(|(id, _)| id).collect();
        if merged.is_empty() {
            Verdict::Join { id: into, why }
        } else {
            Verdict::Merge { into, merged, why }
        }
    }
}

#[cfg(test)]
mod tests;
