//! Floor 3: the executors, one file per backend, each implementing the approvals service's
//! [`Executor`] trait; [`registry`] is the one place that knows them all. Adding an executor is
//! one file here and one line in [`registry`].

pub mod ansible;
pub mod kube;
pub mod mcp;
pub mod shell;
pub mod simulated;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::base::cluster::SimulatedCluster;
use engine::dryrun::{CheckName, DryRunCheck, DryRunReport, blast_radius_check};

use crate::services::approvals::{Blast, ExecError, Executor, Registry};

/// `[actions]`: executors beyond the cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// `[[actions.shell]]`: the only commands the shell executor runs.
    #[serde(default)]
    pub shell: Vec<shell::ShellCommand>,
    /// `[actions.ansible]`: where `ansible:<playbook>` actions come from.
    pub ansible: Option<ansible::AnsibleConfig>,
    /// `[[actions.mcp]]`: MCP servers whose tools are `mcp:<name>/<tool>` actions.
    #[serde(default)]
    pub mcp: Vec<mcp::McpServerConfig>,
}

impl ActionsConfig {
    /// The risk each configured executor declares for its kinds, as policy-table entries:
    /// `shell:<name>`, `ansible:*` (and `ansible:<playbook>`), `mcp:<server>/*` (and
    /// `mcp:<server>/<tool>`).
    pub fn declared_risks(&self) -> Vec<(String, engine::policy::RiskLevel)> {
        let mut out = Vec::new();
        for command in &self.shell {
            out.push((format!("shell:{}", command.name), command.risk));
        }
        if let Some(ansible) = &self.ansible {
            out.push(("ansible:*".to_owned(), ansible.risk));
            for (playbook, risk) in &ansible.playbooks {
                out.push((format!("ansible:{playbook}"), *risk));
            }
        }
        for server in &self.mcp {
            out.push((format!("mcp:{}/*", server.name), server.risk));
            for (tool, risk) in &server.tools {
                out.push((format!("mcp:{}/{tool}", server.name), *risk));
            }
        }
        out
    }
}

/// Where cluster actions go.
pub enum ClusterBackend {
    /// In process (the embedded default and the demo).
    Simulated(engine::simcluster::SimCluster),
    /// A real cluster through its API server.
    Kubernetes(kube::KubeCluster),
}

/// Every executor, in the order they are asked; the cluster is last and takes every kind the
/// others leave.
pub fn registry(actions: &ActionsConfig, cluster: ClusterBackend) -> Registry {
    let (cluster, simulated): (Arc<dyn Executor>, _) = match cluster {
        ClusterBackend::Simulated(sim) => {
            let sim = Arc::new(SimulatedCluster::new(sim));
            (sim.clone(), Some(sim))
        }
        ClusterBackend::Kubernetes(kube) => (Arc::new(kube), None),
    };
    Registry::new(
        vec![
            Arc::new(shell::ShellExecutor::new(actions.shell.clone())),
            Arc::new(ansible::AnsibleExecutor::new(actions.ansible.clone())),
            Arc::new(mcp::McpExecutor::new(actions.mcp.clone())),
            cluster,
        ],
        simulated,
    )
}

/// Names in configuration and action kinds: letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Output kept per run.
const MAX_OUTPUT: usize = 64 * 1024;

/// Runs `argv` with no shell, an environment of only `PATH` and `env`, stdin closed, killed at
/// `timeout`; stdout and stderr captured (64 KiB at most). Ok with the output on exit 0.
pub async fn run(
    argv: &[String],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, ExecError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ExecError::Refused("nothing to run".into()));
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExecError::Unreachable(format!("cannot start {program}: {e}")))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(ExecError::Failed(format!("{program} failed: {e}"))),
        Err(_) => {
            return Err(ExecError::TimedOut(format!(
                "timed out after {} s; killed",
                timeout.as_secs()
            )));
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if text.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (output cut at 64 KiB)");
    }
    let text = text.trim_end().to_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(ExecError::Failed(format!("{} ({})", text, output.status)))
    }
}

/// The report of an executor whose action touches no pod by itself (`what`: "a command"):
/// its checks, then PDB passed and the blast radius against the limit.
pub(crate) fn report_without_replicas(
    mut checks: Vec<DryRunCheck>,
    mut readings: Vec<String>,
    blast: Blast,
    what: &str,
) -> DryRunReport {
    checks.push(DryRunCheck {
        name: CheckName::Pdb,
        passed: true,
        detail: format!("{what} removes no ready replica by itself"),
    });
    checks.push(blast_radius_check(&mut readings, blast.radius, blast.limit));
    DryRunReport::new(checks, &readings, blast.radius)
}

/// `[cluster]`: where actions on the cluster go.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub backend: ClusterKind,
    /// The simulated cluster's fixture (`--cluster FILE`).
    pub file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub kubernetes: kube::KubeConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    #[default]
    Simulated,
    Kubernetes,
}
