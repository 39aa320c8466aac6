//! FinOps: the waste in a cluster, priced. Three scans over an [`Inventory`] (what runs, what
//! it requests, what it used day by day):
//!
//! - **orphaned claims** — bound volumes no pod mounts: their storage price;
//! - **zombie pods** — CPU under 1% of the request for 7+ consecutive days (both
//!   configurable): what the pod reserves, of which `requested - actual × 1.2` is freed once
//!   the capacity is scaled down;
//! - **over-provisioned nodes** — a cheaper node type still holds the node's peak daily use
//!   times the 1.2 safety buffer (never recommended below it): the price difference.
//!
//! Money is exact: prices are decimal strings held as integer nano-dollars, every amount is one
//! integer fraction rounded once, half up, to cents. A pod's cost is its share of its node's
//! price (the mean of its CPU and memory shares) when the node's type is priced, else the
//! per-vCPU-hour and per-GiB-hour prices.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::RiskLevel;
use crate::simcluster::{Resources, SimCluster};

/// An amount in cents (USD unless the pricing says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Money(pub i64);

impl fmt::Display for Money {
    /// `523.60`, `-40.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let cents = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", cents / 100, cents % 100)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money(0), |a, b| a + b)
    }
}

/// A price: a decimal with up to nine places, held as nano-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Price(pub i128);

const NANO: i128 = 1_000_000_000;

impl Price {
    /// `"0.04"`, `"560"`, `"152.00"`; no sign, no exponent.
    pub fn parse(text: &str) -> Result<Price, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not a price (a decimal like 0.04 or 152.00)");
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || fraction.len() > 9
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i128 = whole.parse().map_err(|_| bad())?;
        let mut frac: i128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| bad())?
        };
        for _ in fraction.len()..9 {
            frac *= 10;
        }
        whole
            .checked_mul(NANO)
            .and_then(|w| w.checked_add(frac))
            .map(Price)
            .ok_or_else(bad)
    }

    /// `self × numerator / denominator`, rounded half up to cents.
    pub fn times(self, numerator: i128, denominator: i128) -> Money {
        nano_to_cents(self.0 * numerator, denominator)
    }
}

/// `nano_numerator / denominator` nano-units, rounded once, half up, to cents.
fn nano_to_cents(nano_numerator: i128, denominator: i128) -> Money {
    let den = denominator * (NANO / 100);
    let cents = (2 * nano_numerator + den).div_euclid(2 * den);
    Money(i64::try_from(cents).unwrap_or(i64::MAX))
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            // TOML and YAML numbers: their shortest decimal form is what was written.
            Raw::Number(n) => n.to_string(),
        };
        Price::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A node type that can be bought, with its capacity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeType {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub monthly: Price,
}

/// `[finops.pricing]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default = "usd")]
    pub currency: String,
    pub vcpu_hour: Price,
    pub gib_hour: Price,
    pub storage_gib_month: Price,
    #[serde(default = "hours")]
    pub hours_per_month: u32,
    #[serde(default)]
    pub node_types: BTreeMap<String, NodeType>,
}

fn usd() -> String {
    "USD".into()
}
fn hours() -> u32 {
    730
}

impl Default for Pricing {
    /// The demo's prices.
    fn default() -> Self {
        let p = |t: &str| Price::parse(t).expect("valid default price");
        let node = |cpu: u64, gib: u64, monthly: &str| NodeType {
            cpu_millis: cpu * 1_000,
            memory_mib: gib * 1_024,
            monthly: p(monthly),
        };
        Pricing {
            currency: usd(),
            vcpu_hour: p("0.04"),
            gib_hour: p("0.005"),
            storage_gib_month: p("0.10"),
            hours_per_month: hours(),
            node_types: BTreeMap::from([
                ("m5.xlarge".to_owned(), node(4, 16, "152.00")),
                ("t3.2xlarge".to_owned(), node(8, 32, "220.00")),
                ("m5.4xlarge".to_owned(), node(16, 64, "560.00")),
            ]),
        }
    }
}

/// `[finops.thresholds]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// A pod idles below this share of its CPU request, in percent.
    #[serde(default = "one")]
    pub zombie_cpu_percent: u64,
    /// … for at least this many consecutive days (the latest ones).
    #[serde(default = "seven")]
    pub zombie_days: usize,
    /// The safety buffer on actual use, in tenths (12 = × 1.2).
    #[serde(default = "twelve")]
    pub buffer_tenths: u64,
}

fn one() -> u64 {
    1
}
fn seven() -> usize {
    7
}
fn twelve() -> u64 {
    12
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            zombie_cpu_percent: one(),
            zombie_days: seven(),
            buffer_tenths: twelve(),
        }
    }
}

/// A node as the scans see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub node_type: Option<String>,
    pub capacity: Resources,
}

/// A pod as the scans see it; usage is one sample a day, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub owner: Option<String>,
    pub requests: Resources,
    pub cpu_daily: Vec<u64>,
    pub memory_daily: Vec<u64>,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFacts {
    pub namespace: String,
    pub name: String,
    pub size_mib: u64,
}

/// What a scan reads, from any metrics source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub nodes: Vec<NodeFacts>,
    pub pods: Vec<PodFacts>,
    pub claims: Vec<ClaimFacts>,
}

impl Inventory {
    /// One order for every source: nodes, pods and claims by name, volumes sorted, so two
    /// sources' readings of the same cluster compare equal.
    pub fn normalised(mut self) -> Inventory {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.pods
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for pod in &mut self.pods {
            pod.volumes.sort();
        }
        self.claims
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self
    }

    /// The simulated cluster and its usage history.
    pub fn from_sim(cluster: &SimCluster) -> Inventory {
        let mut inventory = Inventory::default();
        for l in cluster.list() {
            let o = l.object;
            match l.resource {
                "nodes" => inventory.nodes.push(NodeFacts {
                    name: l.name.to_owned(),
                    node_type: o.class.clone(),
                    capacity: o.resources.unwrap_or_default(),
                }),
                "pods" => {
                    let usage = cluster.usage(Some(l.namespace), l.name);
                    inventory.pods.push(PodFacts {
                        namespace: l.namespace.to_owned(),
                        name: l.name.to_owned(),
                        node: o.node.clone(),
                        owner: o.owner.clone(),
                        requests: o.resources.unwrap_or_default(),
                        cpu_daily: usage.map(|u| u.cpu_millis.clone()).unwrap_or_default(),
                        memory_daily: usage.map(|u| u.memory_mib.clone()).unwrap_or_default(),
                        volumes: o.volumes.clone(),
                    });
                }
                "persistentvolumeclaims" => inventory.claims.push(ClaimFacts {
                    namespace: l.namespace.to_owned(),
                    name: l.name.to_owned(),
                    size_mib: o.storage_mib.unwrap_or(0),
                }),
                _ => {}
            }
        }
        inventory
    }
}

/// What a FinOps fix saves, kept on its approval for the approval card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saving {
    pub kind: FindingKind,
    pub recommendation: String,
    pub monthly: Money,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingKind {
    OrphanedPvc,
    ZombiePod,
    OverprovisionedNode,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::OrphanedPvc => "ORPHANED_PVC",
            FindingKind::ZombiePod => "ZOMBIE_POD",
            FindingKind::OverprovisionedNode => "OVERPROVISIONED_NODE",
        }
    }
}

/// Whether a saving can be had now, or needs a scale-down first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Bucket {
    Realizable,
    Freed,
}

/// One priced finding and the action that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub resource: String,
    /// Empty for nodes.
    pub namespace: String,
    /// What the resource costs (or the fix saves) a month.
    pub monthly_cost: Money,
    /// What counts towards the report's tiles.
    pub saving: Money,
    pub bucket: Bucket,
    pub risk: RiskLevel,
    pub recommendation: String,
    /// The action request that fixes it: kind, target, params.
    pub action_kind: String,
    pub action_params: serde_json::Value,
    /// For people: how the amount was reached.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub currency: String,
    pub monthly_waste: Money,
    pub realizable_monthly: Money,
    pub freed_monthly: Money,
    /// What the realizable fixes save in a year.
    pub annual_if_all_fixed: Money,
    /// Largest saving first.
    pub findings: Vec<Finding>,
}

/// How many of the latest days are idle, counted back from the newest.
fn idle_days(daily: &[u64], is_idle: impl Fn(u64) -> bool) -> usize {
    daily.iter().rev().take_while(|d| is_idle(**d)).count()
}

/// A pod's monthly cost for `cpu` millicores and `mib` of memory (numerators over
/// `scale`, so buffered amounts stay exact).
fn pod_amount(
    pricing: &Pricing,
    node: Option<&NodeFacts>,
    cpu_scaled: i128,
    mib_scaled: i128,
    scale: i128,
) -> Money {
    let priced = node.and_then(|n| {
        let t = pricing.node_types.get(n.node_type.as_deref()?)?;
        (n.capacity.cpu_millis > 0 && n.capacity.memory_mib > 0).then_some((n, t))
    });
    match priced {
        // price × (cpu / cpu_cap + mem / mem_cap) / 2
        Some((n, t)) => {
            let cc = i128::from(n.capacity.cpu_millis);
            let mc = i128::from(n.capacity.memory_mib);
            t.monthly
                .times(cpu_scaled * mc + mib_scaled * cc, 2 * cc * mc * scale)
        }
        None => {
            let h = i128::from(pricing.hours_per_month);
            // vcpu_hour × cpu/1000 × h + gib_hour × mib/1024 × h, as one fraction
            let num = (pricing.vcpu_hour.0 * cpu_scaled * 1_024
                + pricing.gib_hour.0 * mib_scaled * 1_000)
                * h;
            nano_to_cents(num, 1_000 * 1_024 * scale)
        }
    }
}

/// Runs the three scans.
pub fn scan(inventory: &Inventory, pricing: &Pricing, thresholds: &Thresholds) -> Report {
    let mut findings = Vec::new();
    let nodes: BTreeMap<&str, &NodeFacts> = inventory
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    let buffer = i128::from(thresholds.buffer_tenths);

    // Orphaned claims.
    let mounted: BTreeSet<(&str, &str)> = inventory
        .pods
        .iter()
        .flat_map(|p| p.volumes.iter().map(|v| (p.namespace.as_str(), v.as_str())))
        .collect();
    for claim in &inventory.claims {
        if mounted.contains(&(claim.namespace.as_str(), claim.name.as_str())) {
            continue;
        }
        let cost = pricing
            .storage_gib_month
            .times(i128::from(claim.size_mib), 1_024);
        findings.push(Finding {
            kind: FindingKind::OrphanedPvc,
            resource: claim.name.clone(),
            namespace: claim.namespace.clone(),
            monthly_cost: cost,
            saving: cost,
            bucket: Bucket::Realizable,
            risk: RiskLevel::Low,
            recommendation: format!("Delete orphaned PVC '{}'", claim.name),
            action_kind: "delete_pvc".into(),
            action_params: serde_json::json!({}),
            detail: format!(
                "{} MiB mounted by no pod, at {}/GiB-month",
                claim.size_mib,
                Money(i64::try_from(pricing.storage_gib_month.0 / (NANO / 100)).unwrap_or(0))
            ),
        });
    }

    // Zombie pods.
    for pod in &inventory.pods {
        let request = pod.requests.cpu_millis;
        if request == 0 {
            continue;
        }
        let percent = thresholds.zombie_cpu_percent;
        let days = idle_days(&pod.cpu_daily, |used| used * 100 < request * percent);
        if days < thresholds.zombie_days {
            continue;
        }
        let node = pod.node.as_deref().and_then(|n| nodes.get(n).copied());
        let cost = pod_amount(
            pricing,
            node,
            i128::from(pod.requests.cpu_millis),
            i128::from(pod.requests.memory_mib),
            1,
        );
        // Freed once scaled down: requested - peak actual × buffer, per resource, never < 0.
        let peak =
            |series: &[u64]| i128::from(series.iter().rev().take(days).copied().max().unwrap_or(0));
        let cpu_left =
            (i128::from(pod.requests.cpu_millis) * 10 - peak(&pod.cpu_daily) * buffer).max(0);
        let mib_left =
            (i128::from(pod.requests.memory_mib) * 10 - peak(&pod.memory_daily) * buffer).max(0);
        let freed = pod_amount(pricing, node, cpu_left, mib_left, 10);
        findings.push(Finding {
            kind: FindingKind::ZombiePod,
            resource: pod.name.clone(),
            namespace: pod.namespace.clone(),
            monthly_cost: cost,
            saving: freed,
            bucket: Bucket::Freed,
            risk: RiskLevel::Medium,
            recommendation: format!("Delete zombie Pod '{}'", pod.name),
            action_kind: "delete_pod".into(),
            action_params: serde_json::json!({}),
            detail: format!(
                "CPU under {percent}% of its {request}m request for the last {days} day(s); {freed} freed after the ×{}.{} buffer once its node is scaled down",
                buffer / 10,
                buffer % 10
            ),
        });
    }

    // Over-provisioned nodes.
    for node in &inventory.nodes {
        let Some(current) = node
            .node_type
            .as_deref()
            .and_then(|t| pricing.node_types.get(t))
        else {
            continue;
        };
        let here: Vec<&PodFacts> = inventory
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
            .collect();
        let peak_daily = |series: fn(&PodFacts) -> &Vec<u64>| -> u64 {
            let days = here.iter().map(|p| series(p).len()).max().unwrap_or(0);
            (0..days)
                .map(|d| {
                    here.iter()
                        .map(|p| {
                            let s = series(p);
                            // Align on the newest sample.
                            let offset = days - s.len();
                            if d >= offset { s[d - offset] } else { 0 }
                        })
                        .sum::<u64>()
                })
                .max()
                .unwrap_or(0)
        };
        let needed_cpu = i128::from(peak_daily(|p| &p.cpu_daily)) * buffer;
        let needed_mib = i128::from(peak_daily(|p| &p.memory_daily)) * buffer;
        let requested_cpu: u64 = here.iter().map(|p| p.requests.cpu_millis).sum();
        let requested_mib: u64 = here.iter().map(|p| p.requests.memory_mib).sum();
        let cheaper = pricing
            .node_types
            .iter()
            .filter(|(_, t)| {
                t.monthly < current.monthly
                    && i128::from(t.cpu_millis) * 10 >= needed_cpu
                    && i128::from(t.memory_mib) * 10 >= needed_mib
            })
            .min_by_key(|(name, t)| (t.monthly, (*name).clone()));
        let Some((name, target)) = cheaper else {
            continue;
        };
        let saving = Price(current.monthly.0 - target.monthly.0).times(1, 1);
        findings.push(Finding {
            kind: FindingKind::OverprovisionedNode,
            resource: node.name.clone(),
            namespace: String::new(),
            monthly_cost: saving,
            saving,
            bucket: Bucket::Realizable,
            risk: RiskLevel::High,
            recommendation: format!("Resize node '{}'", node.name),
            action_kind: "resize_node".into(),
            action_params: serde_json::json!({"node_type": name}),
            detail: format!(
                "requests {requested_cpu}m CPU / {requested_mib} MiB, peak use × buffer {}m / {} MiB: a {name} holds it",
                needed_cpu / 10,
                needed_mib / 10
            ),
        });
    }

    findings.sort_by(|a, b| {
        b.monthly_cost
            .cmp(&a.monthly_cost)
            .then_with(|| a.resource.cmp(&b.resource))
    });
    let realizable: Money = findings
        .iter()
        .filter(|f| f.bucket == Bucket::Realizable)
        .map(|f| f.saving)
        .sum();
    let freed: Money = findings
        .iter()
        .filter(|f| f.bucket == Bucket::Freed)
        .map(|f| f.saving)
        .sum();
    Report {
        currency: pricing.currency.clone(),
        monthly_waste: realizable + freed,
        realizable_monthly: realizable,
        freed_monthly: freed,
        annual_if_all_fixed: Money(realizable.0 * 12),
        findings,
    }
}

#[cfg(test)]
mod tests;
