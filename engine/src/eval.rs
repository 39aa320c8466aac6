//! The evaluation suite's data and plans (`evals/`, `awoooi eval`): fault scenarios written as
//! data over a topology, each replayed in several alert orders. This module reads and checks
//! the scenario files and turns a scenario and an order class into the steps to send; the
//! server runs them and grades what the incident loop did.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::topology::Topology;

/// One scenario file: a topology (by file stem) and its scenarios.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub topology: String,
    pub scenarios: Vec<Scenario>,
}

/// A fault: what fires, what the cluster looks like, and the right answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    /// The expected root cause(s); more than one for independent faults at once.
    pub causes: Vec<String>,
    /// The expected kind of fix for the first cause.
    pub fix: String,
    /// The service the fix acts on (default: the first cause).
    #[serde(default)]
    pub fix_target: Option<String>,
    #[serde(default)]
    pub cluster: Vec<ChaosStep>,
    pub alerts: Vec<ScenarioAlert>,
}

impl Scenario {
    pub fn fix_target(&self) -> &str {
        self.fix_target
            .as_deref()
            .unwrap_or_else(|| self.causes.first().map_or("", String::as_str))
    }

    pub fn multi_cause(&self) -> bool {
        self.causes.len() > 1
    }
}

/// The simulated cluster's state when the alerts fire.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosStep {
    pub chaos: ChaosName,
    pub service: String,
    #[serde(default)]
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChaosName {
    ExhaustDatabase,
    CrashPod,
    BadRollout,
    SetReplicas,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioAlert {
    pub name: String,
    pub service: String,
    pub severity: String,
    pub description: String,
}

/// Why a scenario file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);

impl ScenarioFile {
    pub fn from_yaml(text: &str) -> Result<ScenarioFile, ScenarioError> {
        serde_norway::from_str(text).map_err(|e| ScenarioError(e.to_string()))
    }

    /// Every service a scenario names is in `topology`; ids are unique; each scenario has a
    /// cause, alerts, and an alert on each cause.
    pub fn check(&self, topology: &Topology) -> Result<(), ScenarioError> {
        let mut ids = BTreeSet::new();
        for s in &self.scenarios {
            let bad = |what: String| Err(ScenarioError(format!("scenario {}: {what}", s.id)));
            if !ids.insert(s.id.as_str()) {
                return bad("the id is used twice".into());
            }
            if s.causes.is_empty() || s.alerts.is_empty() {
                return bad("needs at least one cause and one alert".into());
            }
            let named = s
                .causes
                .iter()
                .chain(s.fix_target.iter())
                .chain(s.cluster.iter().map(|c| &c.service))
                .chain(s.alerts.iter().map(|a| &a.service));
            for service in named {
                if !topology.contains(service) {
                    return bad(format!("`{service}` is not in topology {}", self.topology));
                }
            }
            for cause in &s.causes {
                if !s.alerts.iter().any(|a| &a.service == cause) {
                    return bad(format!("no alert fires on its cause `{cause}`"));
                }
            }
            if s.cluster
                .iter()
                .any(|c| c.chaos == ChaosName::SetReplicas && c.replicas.is_none())
            {
                return bad("set_replicas needs `replicas`".into());
            }
        }
        Ok(())
    }
}

/// How a scenario's alerts are replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderClass {
    /// The causes' alerts first, then the symptoms'.
    CauseFirst,
    /// The symptoms' alerts first (as in production: their `for:` is shorter).
    SymptomsFirst,
    /// A seeded random permutation (the number is the permutation's index).
    Random(u8),
    /// Symptoms first, with unrelated services' alerts in between.
    Noise,
    /// Symptoms first, every alert sent twice.
    Repeats,
    /// Symptoms first; the cause's alert fires, resolves and fires again.
    Flap,
}

impl OrderClass {
    /// Every class, with `randoms` random permutations.
    pub fn all(randoms: u8) -> Vec<OrderClass> {
        let mut all = vec![OrderClass::CauseFirst, OrderClass::SymptomsFirst];
        all.extend((0..randoms).map(OrderClass::Random));
        all.extend([OrderClass::Noise, OrderClass::Repeats, OrderClass::Flap]);
        all
    }

    /// The class's name in reports (`random` for every permutation).
    pub fn name(self) -> &'static str {
        match self {
            OrderClass::CauseFirst => "cause-first",
            OrderClass::SymptomsFirst => "symptoms-first",
            OrderClass::Random(_) => "random",
            OrderClass::Noise => "noise",
            OrderClass::Repeats => "repeats",
            OrderClass::Flap => "flap",
        }
    }

    pub fn parse(name: &str) -> Option<Vec<OrderClass>> {
        Some(match name {
            "cause-first" => vec![OrderClass::CauseFirst],
            "symptoms-first" => vec![OrderClass::SymptomsFirst],
            "random" => (0..3).map(OrderClass::Random).collect(),
            "noise" => vec![OrderClass::Noise],
            "repeats" => vec![OrderClass::Repeats],
            "flap" => vec![OrderClass::Flap],
            _ => return None,
        })
    }
}

/// One alert to send, after a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Milliseconds to wait before sending it.
    pub wait_ms: u64,
    pub name: String,
    pub service: String,
    pub severity: String,
    pub description: String,
    pub firing: bool,
}

/// A small deterministic generator (SplitMix64): the same seed, the same plan.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Services unrelated to every service of `scenario` (no dependency path of at most 3 hops
/// either way), sorted: where noise alerts come from.
pub fn unrelated(topology: &Topology, scenario: &Scenario) -> Vec<String> {
    let mut near: BTreeSet<String> = BTreeSet::new();
    for a in &scenario.alerts {
        near.insert(a.service.clone());
        near.extend(
            topology
                .dependencies(&a.service, 3)
                .into_iter()
                .map(str::to_owned),
        );
        near.extend(
            topology
                .dependents(&a.service, 3)
                .into_iter()
                .map(str::to_owned),
        );
    }
    topology
        .services()
        .map(|s| s.name.clone())
        .filter(|s| !near.contains(s))
        .filter(|s| {
            !topology
                .dependencies(s, 3)
                .iter()
                .chain(topology.dependents(s, 3).iter())
                .any(|d| near.contains(*d))
        })
        .collect()
}

/// The steps of `scenario` in order class `class`. Pauses are 0 (a burst) or between one and
/// two quiet periods (`quiet_ms`, so an analysis may run in between), chosen by `seed`.
pub fn plan(
    topology: &Topology,
    scenario: &Scenario,
    class: OrderClass,
    quiet_ms: u64,
    seed: u64,
) -> Vec<Step> {
    let mut rng = Seeded::new(seed ^ (class_seed(class) << 32));
    let is_cause = |a: &ScenarioAlert| scenario.causes.contains(&a.service);
    let causes: Vec<&ScenarioAlert> = scenario.alerts.iter().filter(|a| is_cause(a)).collect();
    let symptoms: Vec<&ScenarioAlert> = scenario.alerts.iter().filter(|a| !is_cause(a)).collect();
    let step = |a: &ScenarioAlert, firing: bool| Step {
        wait_ms: 0,
        name: a.name.clone(),
        service: a.service.clone(),
        severity: a.severity.clone(),
        description: a.description.clone(),
        firing,
    };
    let symptoms_first = || -> Vec<Step> {
        symptoms
            .iter()
            .chain(causes.iter())
            .map(|a| step(a, true))
            .collect()
    };
    let mut steps: Vec<Step> = match class {
        OrderClass::CauseFirst => causes
            .iter()
            .chain(symptoms.iter())
            .map(|a| step(a, true))
            .collect(),
        OrderClass::SymptomsFirst => symptoms_first(),
        OrderClass::Random(_) => {
            let mut all: Vec<Step> = scenario.alerts.iter().map(|a| step(a, true)).collect();
            // Fisher–Yates.
            for i in (1..all.len()).rev() {
                let j = rng.below(i + 1);
                all.swap(i, j);
            }
            all
        }
        OrderClass::Noise => {
            let mut all = symptoms_first();
            let pool = unrelated(topology, scenario);
            for (i, service) in pool.iter().take(2).enumerate() {
                let noise = Step {
                    wait_ms: 0,
                    name: ["DiskSpaceLow", "CertificateExpiringSoon"][i].to_owned(),
                    service: service.clone(),
                    severity: "warning".to_owned(),
                    description: format!("{service}: unrelated trouble"),
                    firing: true,
                };
                let at = rng.below(all.len() + 1);
                all.insert(at, noise);
            }
            all
        }
        OrderClass::Repeats => symptoms_first()
            .into_iter()
            .flat_map(|s| [s.clone(), s])
            .collect(),
        OrderClass::Flap => {
            let mut all = symptoms_first();
            if let Some(cause) = causes.first() {
                let at = all
                    .iter()
                    .position(|s| s.service == cause.service)
                    .unwrap_or(all.len());
                all.insert(at + 1, step(cause, false));
                all.insert(at + 2, step(cause, true));
            }
            all
        }
    };
    for s in steps.iter_mut().skip(1) {
        s.wait_ms = if rng.below(2) == 0 {
            0
        } else {
            quiet_ms + (rng.next_u64() % quiet_ms.max(1))
        };
    }
    steps
}

fn class_seed(class: OrderClass) -> u64 {
    match class {
        OrderClass::CauseFirst => 1,
        OrderClass::SymptomsFirst => 2,
        OrderClass::Random(i) => 10 + u64::from(i),
        OrderClass::Noise => 3,
        OrderClass::Repeats => 4,
        OrderClass::Flap => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let alert = |name: &str, service: &str| ScenarioAlert {
            name: name.into(),
            service: service.into(),
            severity: "critical".into(),
            description: String::new(),
        };
        Scenario {
            id: "pg".into(),
            title: "postgres out of connections".into(),
            causes: vec!["postgres-db".into()],
            fix: "restart_deployment".into(),
            fix_target: None,
            cluster: Vec::new(),
            alerts: vec![
                alert("ConnectionsExhausted", "postgres-db"),
                alert("HighErrorRate", "order-api"),
                alert("HighErrorRate", "frontend"),
            ],
        }
    }

    fn order(steps: &[Step]) -> Vec<(String, bool)> {
        steps
            .iter()
            .map(|s| (s.service.clone(), s.firing))
            .collect()
    }

    #[test]
    fn each_class_orders_the_alerts_as_it_says() {
        let topology = Topology::demo();
        let s = scenario();
        let services = |class| -> Vec<String> {
            plan(&topology, &s, class, 300, 7)
                .into_iter()
                .map(|s| s.service)
                .collect()
        };
        assert_eq!(
            services(OrderClass::CauseFirst),
            ["postgres-db", "order-api", "frontend"]
        );
        assert_eq!(
            services(OrderClass::SymptomsFirst),
            ["order-api", "frontend", "postgres-db"]
        );
        assert_eq!(services(OrderClass::Repeats).len(), 6);
        let flap = plan(&topology, &s, OrderClass::Flap, 300, 7);
        assert_eq!(
            order(&flap)[2..],
            [
                ("postgres-db".to_owned(), true),
                ("postgres-db".to_owned(), false),
                ("postgres-db".to_owned(), true)
            ]
        );
        let mut random = services(OrderClass::Random(0));
        random.sort();
        assert_eq!(random, ["frontend", "order-api", "postgres-db"]);
        // The same seed, the same plan.
        assert_eq!(
            plan(&topology, &s, OrderClass::Random(1), 300, 7),
            plan(&topology, &s, OrderClass::Random(1), 300, 7)
        );
    }

    #[test]
    fn pauses_are_bursts_or_longer_than_the_quiet_period() {
        let topology = Topology::demo();
        let steps = plan(&topology, &scenario(), OrderClass::Repeats, 300, 3);
        assert_eq!(steps[0].wait_ms, 0);
        assert!(
            steps
                .iter()
                .all(|s| s.wait_ms == 0 || (300..600).contains(&s.wait_ms))
        );
    }

    #[test]
    fn noise_comes_from_services_unrelated_to_the_scenario() {
        let topology = Topology::demo();
        let s = scenario();
        let pool = unrelated(&topology, &s);
        for service in &pool {
            assert!(!s.alerts.iter().any(|a| &a.service == service));
        }
        let noisy = plan(&topology, &s, OrderClass::Noise, 300, 7);
        assert_eq!(noisy.len(), 3 + pool.len().min(2));
    }

    #[test]
    fn a_scenario_naming_an_unknown_service_is_refused() {
        let topology = Topology::demo();
        let mut file = ScenarioFile {
            topology: "demo".into(),
            scenarios: vec![scenario()],
        };
        assert_eq!(file.check(&topology), Ok(()));
        file.scenarios[0].alerts[1].service = "nowhere".into();
        assert_eq!(
            file.check(&topology).unwrap_err().0,
            "scenario pg: `nowhere` is not in topology demo"
        );
    }

    #[test]
    fn the_shipped_scenarios_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals");
        let mut count = 0;
        for entry in std::fs::read_dir(root.join("scenarios")).unwrap() {
            let path = entry.unwrap().path();
            let file = ScenarioFile::from_yaml(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let topology = Topology::from_yaml(
                &std::fs::read_to_string(root.join(format!("topologies/{}.yaml", file.topology)))
                    .unwrap(),
            )
            .unwrap();
            file.check(&topology)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += file.scenarios.len();
        }
        assert!(count >= 40, "{count} scenarios");
    }
}
