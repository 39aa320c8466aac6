//! The simulated cluster's YAML fixture (`awoooi serve --cluster FILE`; the demo loads
//! `demo.yaml`). Errors name the field (`deployments[2].requests.cpu`) and change nothing.
//!
//! ```yaml
//! nodes:
//!   - { name: worker-1, type: m5.xlarge, cpu: 4, memory: 16Gi }
//! deployments:
//!   - name: order-api
//!     namespace: prod
//!     replicas: 3
//!     min_available: 2          # its PodDisruptionBudget
//!     requests: { cpu: 500m, memory: 1Gi }
//!     nodes: [worker-1, worker-2]   # where its pods may run (default: any node)
//!     volumes: [data-order]     # claims every pod mounts
//!     usage: { cpu: 120m, memory: 600Mi, days: 14 }   # per pod, one sample a day
//! pods:                         # pods no deployment owns
//!   - { name: legacy-api-5d7b8, namespace: legacy, node: worker-2,
//!       requests: { cpu: 1, memory: 2Gi }, usage: { cpu: [3m, 2m, 4m], memory: [900Mi, 900Mi, 910Mi] } }
//! persistent_volume_claims:
//!   - { name: data-postgres-backup, namespace: prod, size: 400Gi, storage_class: standard }
//! rbac:                         # default: the executor may act on everything but namespaces
//!   - { verbs: [get, patch], resources: [deployments], namespaces: [prod] }
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use super::quantity::{parse_bytes_mib, parse_cpu};
use super::{
    Budget, EXECUTOR, RbacRule, Resources, SimCluster, Template, Usage, default_grant, key,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixtureError {
    #[error("invalid cluster fixture at {path}: {message}")]
    Parse { path: String, message: String },
    #[error("cluster fixture, {path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> FixtureError {
    FixtureError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// A quantity as YAML gives it: `500m`, `4Gi`, or a bare number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Quantity {
    Text(String),
    Integer(u64),
    Float(f64),
}

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Text(t) => t.clone(),
            Quantity::Integer(i) => i.to_string(),
            Quantity::Float(f) => f.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Samples {
    Many(Vec<Quantity>),
    One(Quantity),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    nodes: Vec<NodeSpec>,
    #[serde(default)]
    deployments: Vec<DeploymentSpec>,
    #[serde(default)]
    pods: Vec<PodSpec>,
    #[serde(default)]
    persistent_volume_claims: Vec<ClaimSpec>,
    rbac: Option<Vec<RbacSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpec {
    name: String,
    #[serde(rename = "type")]
    node_type: Option<String>,
    cpu: Quantity,
    memory: Quantity,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestsSpec {
    cpu: Quantity,
    memory: Quantity,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageSpec {
    cpu: Samples,
    memory: Samples,
    /// With single values: how many days they repeat (default 14).
    days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentSpec {
    name: String,
    namespace: Option<String>,
    replicas: u32,
    #[serde(default = "two")]
    revision: u32,
    min_available: Option<u32>,
    requests: Option<RequestsSpec>,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    volumes: Vec<String>,
    usage: Option<UsageSpec>,
}

fn two() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodSpec {
    name: String,
    namespace: Option<String>,
    node: Option<String>,
    requests: Option<RequestsSpec>,
    #[serde(default)]
    volumes: Vec<String>,
    usage: Option<UsageSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimSpec {
    name: String,
    namespace: Option<String>,
    size: Quantity,
    storage_class: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RbacSpec {
    identity: Option<String>,
    verbs: Vec<String>,
    resources: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
}

const MAX_REPLICAS: u32 = 1_000;
const MAX_DAYS: u32 = 366;

fn requests(spec: &RequestsSpec, path: &str) -> Result<Resources, FixtureError> {
    Ok(Resources {
        cpu_millis: parse_cpu(&spec.cpu.text()).map_err(|e| invalid(format!("{path}.cpu"), e))?,
        memory_mib: parse_bytes_mib(&spec.memory.text())
            .map_err(|e| invalid(format!("{path}.memory"), e))?,
    })
}

fn series(
    samples: &Samples,
    days: Option<u32>,
    path: &str,
    parse: fn(&str) -> Result<u64, String>,
) -> Result<Vec<u64>, FixtureError> {
    match samples {
        Samples::One(q) => {
            let days = days.unwrap_or(14);
            if days == 0 || days > MAX_DAYS {
                return Err(invalid(
                    format!("{path}.days"),
                    format!("must be between 1 and {MAX_DAYS}"),
                ));
            }
            let value = parse(&q.text()).map_err(|e| invalid(path, e))?;
            Ok(vec![value; days as usize])
        }
        Samples::Many(list) => {
            if days.is_some() {
                return Err(invalid(
                    format!("{path}.days"),
                    "only with a single value; a list gives one sample a day",
                ));
            }
            if list.is_empty() || list.len() > MAX_DAYS as usize {
                return Err(invalid(
                    path,
                    format!("needs between 1 and {MAX_DAYS} daily samples"),
                ));
            }
            list.iter()
                .enumerate()
                .map(|(i, q)| parse(&q.text()).map_err(|e| invalid(format!("{path}[{i}]"), e)))
                .collect()
        }
    }
}

fn usage(spec: &UsageSpec, path: &str) -> Result<Usage, FixtureError> {
    let cpu = series(&spec.cpu, spec.days, &format!("{path}.cpu"), parse_cpu)?;
    let memory = series(
        &spec.memory,
        spec.days,
        &format!("{path}.memory"),
        parse_bytes_mib,
    )?;
    if cpu.len() != memory.len() {
        return Err(invalid(
            path,
            format!(
                "cpu has {} daily samples and memory {}; they must cover the same days",
                cpu.len(),
                memory.len()
            ),
        ));
    }
    Ok(Usage {
        cpu_millis: cpu,
        memory_mib: memory,
    })
}

/// `<path>.requests`, when given.
fn optional_requests(
    spec: &Option<RequestsSpec>,
    path: &str,
) -> Result<Option<Resources>, FixtureError> {
    spec.as_ref()
        .map(|r| requests(r, &format!("{path}.requests")))
        .transpose()
}

/// `<path>.usage`, when given.
fn optional_usage(spec: &Option<UsageSpec>, path: &str) -> Result<Option<Usage>, FixtureError> {
    spec.as_ref()
        .map(|u| usage(u, &format!("{path}.usage")))
        .transpose()
}

fn name(text: &str, path: &str) -> Result<String, FixtureError> {
    let name = text.trim();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            path,
            format!("`{text}` is not a Kubernetes name (lower-case letters, digits, `-`, `.`)"),
        ))
    }
}

impl SimCluster {
    /// Reads a fixture (format in this module's documentation).
    pub fn from_yaml(text: &str) -> Result<SimCluster, FixtureError> {
        let file: File = serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(
            text,
        ))
        .map_err(|e| FixtureError::Parse {
            path: match e.path().to_string() {
                p if p == "." => "the top level".to_owned(),
                p => p,
            },
            message: e.into_inner().to_string(),
        })?;
        SimCluster::from_file(file)
    }

    fn from_file(file: File) -> Result<SimCluster, FixtureError> {
        let mut cluster = SimCluster::default();
        let mut nodes = BTreeSet::new();
        for (i, spec) in file.nodes.iter().enumerate() {
            let path = format!("nodes[{i}]");
            let node = name(&spec.name, &format!("{path}.name"))?;
            if !nodes.insert(node.clone()) {
                return Err(invalid(path, format!("node `{node}` is declared twice")));
            }
            let capacity = requests(
                &RequestsSpec {
                    cpu: spec.cpu.clone(),
                    memory: spec.memory.clone(),
                },
                &path,
            )?;
            let object = cluster.insert("nodes", None, &node, None, None);
            object.resources = Some(capacity);
            object.class = spec.node_type.clone();
        }
        let known_node = |node: &str, path: String| {
            if nodes.contains(node) {
                Ok(())
            } else {
                Err(invalid(path, format!("node `{node}` is not declared")))
            }
        };

        let mut claims = BTreeSet::new();
        for (i, spec) in file.persistent_volume_claims.iter().enumerate() {
            let path = format!("persistent_volume_claims[{i}]");
            let claim = name(&spec.name, &format!("{path}.name"))?;
            let namespace = spec.namespace.as_deref();
            let k = key("persistentvolumeclaims", namespace, &claim);
            if !claims.insert((k.1.clone(), claim.clone())) {
                return Err(invalid(path, format!("claim `{claim}` is declared twice")));
            }
            let size = parse_bytes_mib(&spec.size.text())
                .map_err(|e| invalid(format!("{path}.size"), e))?;
            let object = cluster.insert("persistentvolumeclaims", namespace, &claim, None, None);
            object.storage_mib = Some(size);
            object.class = spec.storage_class.clone();
        }
        let known_claims = |namespace: &str, volumes: &[String], path: &str| {
            for (j, volume) in volumes.iter().enumerate() {
                if !claims.contains(&(namespace.to_owned(), volume.clone())) {
                    return Err(invalid(
                        format!("{path}.volumes[{j}]"),
                        format!("claim `{volume}` is not declared in namespace {namespace}"),
                    ));
                }
            }
            Ok(())
        };

        let mut deployments = Vec::new();
        for (i, spec) in file.deployments.iter().enumerate() {
            let path = format!("deployments[{i}]");
            let deployment = name(&spec.name, &format!("{path}.name"))?;
            let namespace = spec.namespace.as_deref();
            let k = key("deployments", namespace, &deployment);
            if cluster.objects.contains_key(&k) {
                return Err(invalid(
                    path,
                    format!("deployment `{deployment}` is declared twice"),
                ));
            }
            if spec.replicas > MAX_REPLICAS {
                return Err(invalid(
                    format!("{path}.replicas"),
                    format!("must be at most {MAX_REPLICAS}"),
                ));
            }
            if spec.revision == 0 {
                return Err(invalid(format!("{path}.revision"), "must be at least 1"));
            }
            for (j, node) in spec.nodes.iter().enumerate() {
                known_node(node, format!("{path}.nodes[{j}]"))?;
            }
            known_claims(&k.1, &spec.volumes, &path)?;
            let resources = optional_requests(&spec.requests, &path)?;
            let template = Template {
                nodes: spec.nodes.clone(),
                volumes: spec.volumes.clone(),
                usage: optional_usage(&spec.usage, &path)?,
            };
            let object = cluster.insert(
                "deployments",
                namespace,
                &deployment,
                Some(spec.replicas),
                Some(spec.replicas),
            );
            object.revision = spec.revision;
            object.resources = resources;
            if let Some(min_available) = spec.min_available {
                cluster.budgets.insert(k.clone(), Budget { min_available });
            }
            cluster.templates.insert(k.clone(), template);
            deployments.push((k.1, deployment));
        }
        for (namespace, deployment) in &deployments {
            cluster.reconcile(Some(namespace), deployment, false);
        }

        for (i, spec) in file.pods.iter().enumerate() {
            let path = format!("pods[{i}]");
            let pod = name(&spec.name, &format!("{path}.name"))?;
            let namespace = spec.namespace.as_deref();
            let k = key("pods", namespace, &pod);
            if cluster.objects.contains_key(&k) {
                return Err(invalid(
                    path,
                    format!(
                        "pod `{pod}` is declared twice (or a deployment made one of that name)"
                    ),
                ));
            }
            if let Some(node) = &spec.node {
                known_node(node, format!("{path}.node"))?;
            }
            known_claims(&k.1, &spec.volumes, &path)?;
            let resources = optional_requests(&spec.requests, &path)?;
            let history = optional_usage(&spec.usage, &path)?;
            let object = cluster.insert("pods", namespace, &pod, None, None);
            object.phase = Some(
                if spec.node.is_some() {
                    "Running"
                } else {
                    "Pending"
                }
                .into(),
            );
            object.node = spec.node.clone();
            object.resources = resources;
            object.volumes = spec.volumes.clone();
            if let Some(history) = history {
                cluster.usage.insert(k, history);
            }
        }

        match file.rbac {
            None => cluster.rbac.push(default_grant()),
            Some(rules) => {
                for (i, rule) in rules.into_iter().enumerate() {
                    if rule.verbs.is_empty() || rule.resources.is_empty() {
                        return Err(invalid(
                            format!("rbac[{i}]"),
                            "needs at least one verb and one resource",
                        ));
                    }
                    cluster.rbac.push(RbacRule {
                        identity: rule.identity.unwrap_or_else(|| EXECUTOR.to_owned()),
                        verbs: rule.verbs,
                        resources: rule.resources,
                        namespaces: rule.namespaces,
                    });
                }
            }
        }
        Ok(cluster)
    }

    /// The demo's cluster: the demo topology's services, plus the waste FinOps finds.
    pub fn demo() -> SimCluster {
        SimCluster::from_yaml(DEMO_YAML).expect("the demo cluster fixture is valid")
    }
}

/// The demo fixture, as `--cluster` would read it.
pub const DEMO_YAML: &str = include_str!("demo.yaml");

#[cfg(test)]
mod tests;
