//! The Ansible executor: `ansible:<playbook>` runs `<playbook_dir>/<playbook>.yml` (and only
//! playbooks from that directory) with `ansible-playbook`, the action's params as extra vars.
//! The dry-run includes Ansible's own `--syntax-check`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::dryrun::{CheckName, DryRunCheck, DryRunReport};
use engine::policy::ActionRequest;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::executors::{run, valid_name};
use crate::services::approvals::{Blast, ExecError, Executor, Handles};

/// `[actions.ansible]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnsibleConfig {
    /// The only directory playbooks are taken from.
    pub playbook_dir: PathBuf,
    /// `ansible-playbook` (absolute path, or found on PATH).
    pub binary: Option<PathBuf>,
    /// Inventory (default `localhost,`).
    pub inventory: Option<String>,
    /// Connection plugin (default `local`).
    pub connection: Option<String>,
    /// Killed after this long (default 300 s).
    pub timeout_seconds: Option<u64>,
    /// The risk of `ansible:<playbook>` actions (required: playbooks are in no policy table).
    pub risk: engine::policy::RiskLevel,
    /// Per-playbook risks over `risk`, keyed as in the kind (`ansible:drop-replica` →
    /// `drop-replica = "CRITICAL"`).
    #[serde(default)]
    pub playbooks: std::collections::BTreeMap<String, engine::policy::RiskLevel>,
}

#[derive(Debug, Clone, Default)]
pub struct AnsibleExecutor {
    config: Option<AnsibleConfig>,
}

impl AnsibleExecutor {
    pub fn new(config: Option<AnsibleConfig>) -> AnsibleExecutor {
        AnsibleExecutor { config }
    }

    fn binary(config: &AnsibleConfig) -> String {
        config
            .binary
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ansible-playbook".into())
    }

    /// The playbook a request names, if it is allowed and there.
    fn playbook(&self, request: &ActionRequest) -> Result<(&AnsibleConfig, PathBuf), String> {
        let config = self
            .config
            .as_ref()
            .ok_or("no [actions.ansible] playbook directory is configured")?;
        let name = request.kind.trim_start_matches("ansible:");
        if !valid_name(name) {
            return Err(format!(
                "`{name}`: playbook names are letters, digits, - and _"
            ));
        }
        Ok((config, config.playbook_dir.join(format!("{name}.yml"))))
    }

    fn argv(
        config: &AnsibleConfig,
        playbook: &Path,
        request: &ActionRequest,
        check: bool,
    ) -> Vec<String> {
        let vars = match &request.params {
            serde_json::Value::Null => "{}".to_owned(),
            other => other.to_string(),
        };
        let mut argv = vec![
            Self::binary(config),
            "-i".into(),
            config
                .inventory
                .clone()
                .unwrap_or_else(|| "localhost,".into()),
            "-c".into(),
            config.connection.clone().unwrap_or_else(|| "local".into()),
            "-e".into(),
            vars,
        ];
        if check {
            argv.push("--syntax-check".into());
        }
        argv.push(playbook.display().to_string());
        argv
    }

    fn env(scratch: &str) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", scratch.to_owned()),
            ("ANSIBLE_LOCAL_TEMP", format!("{scratch}/tmp")),
            ("ANSIBLE_NOCOLOR", "1".into()),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0".into()),
            ("ANSIBLE_LOCALHOST_WARNING", "0".into()),
            ("ANSIBLE_INVENTORY_UNPARSED_WARNING", "0".into()),
        ]
    }

    async fn run_playbook(argv: &[String], timeout: Duration) -> Result<String, ExecError> {
        let scratch =
            std::env::temp_dir().join(format!("awoooi-ansible-{}", rand::random::<u64>()));
        std::fs::create_dir_all(scratch.join("tmp"))
            .map_err(|e| ExecError::Unreachable(format!("scratch dir: {e}")))?;
        let scratch_text = scratch.display().to_string();
        let env = Self::env(&scratch_text);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let result = run(argv, &env, timeout).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }
}

#[async_trait::async_trait]
impl Executor for AnsibleExecutor {
    fn handles(&self) -> Handles {
        Handles::Prefix("ansible")
    }

    /// The five checks: the playbook is in the allowed directory and passes Ansible's
    /// syntax check with these extra vars.
    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        let mut checks = Vec::new();
        let mut readings = vec![format!("action={}:{}", request.kind, request.target)];
        let found = self.playbook(request);
        let params_ok = request.params.is_object() || request.params.is_null();
        match &found {
            Ok((config, path)) => {
                checks.push(DryRunCheck {
                    name: CheckName::Rbac,
                    passed: true,
                    detail: format!(
                        "playbooks from {} are allowed",
                        config.playbook_dir.display()
                    ),
                });
                match std::fs::read(path) {
                    Ok(bytes) => {
                        readings.push(format!(
                            "playbook={} sha256={}",
                            path.display(),
                            hex::encode(Sha256::digest(&bytes))
                        ));
                        checks.push(DryRunCheck {
                            name: CheckName::ResourceExists,
                            passed: true,
                            detail: format!("{} exists", path.display()),
                        });
                        let syntax = if params_ok {
                            let argv = Self::argv(config, path, request, true);
                            Self::run_playbook(&argv, Duration::from_secs(60)).await
                        } else {
                            Err(ExecError::Refused(
                                "params must be an object (they are the extra vars)".into(),
                            ))
                        };
                        checks.push(DryRunCheck {
                            name: CheckName::Syntax,
                            passed: syntax.is_ok(),
                            detail: match syntax {
                                Ok(_) => format!(
                                    "ansible-playbook --syntax-check passes for {}",
                                    path.display()
                                ),
                                Err(e) => e.to_string(),
                            },
                        });
                    }
                    Err(e) => {
                        checks.push(DryRunCheck {
                            name: CheckName::ResourceExists,
                            passed: false,
                            detail: format!("{}: {e}", path.display()),
                        });
                        checks.push(DryRunCheck {
                            name: CheckName::Syntax,
                            passed: false,
                            detail: "no playbook to check".into(),
                        });
                    }
                }
            }
            Err(why) => {
                checks.push(DryRunCheck {
                    name: CheckName::Rbac,
                    passed: false,
                    detail: why.clone(),
                });
                checks.push(DryRunCheck {
                    name: CheckName::ResourceExists,
                    passed: false,
                    detail: "no playbook".into(),
                });
                checks.push(DryRunCheck {
                    name: CheckName::Syntax,
                    passed: false,
                    detail: "no playbook to check".into(),
                });
            }
        }
        readings.push(format!("vars={}", request.params));
        super::report_without_replicas(checks, readings, blast, "a playbook run")
    }

    /// Runs the playbook; Ok with its output when it succeeds.
    async fn execute(
        &self,
        _approval: i64,
        request: &ActionRequest,
        _seen: &DryRunReport,
    ) -> Result<String, ExecError> {
        let (config, path) = self.playbook(request).map_err(ExecError::Refused)?;
        if !path.is_file() {
            return Err(ExecError::Refused(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let argv = Self::argv(config, &path, request, false);
        let timeout = Duration::from_secs(config.timeout_seconds.unwrap_or(300));
        Self::run_playbook(&argv, timeout).await
    }
}
