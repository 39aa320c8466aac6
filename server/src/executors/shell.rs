//! The shell executor: only commands from the allow-list in configuration, run as argument
//! vectors (no shell in between unless the allow-list names one itself), with a timeout, a
//! clean environment and captured output. Action kind `shell:<name>`; `{placeholder}`s in the
//! allow-listed argv are filled from the action's params.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use engine::dryrun::{CheckName, DryRunCheck, DryRunReport};
use engine::policy::ActionRequest;
use serde::Deserialize;

use crate::executors::{run, valid_name};
use crate::services::approvals::{Blast, ExecError, Executor, Handles};

/// One allow-listed command (`[[actions.shell]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellCommand {
    /// The action kind is `shell:<name>`.
    pub name: String,
    /// Program (absolute path) and arguments; `{param}` is replaced by `params.param`.
    pub argv: Vec<String>,
    /// Killed after this long (default 30 s).
    pub timeout_seconds: Option<u64>,
    /// The risk of `shell:<name>` (required: a command is in no policy table).
    pub risk: engine::policy::RiskLevel,
}

#[derive(Debug, Clone, Default)]
pub struct ShellExecutor {
    commands: BTreeMap<String, ShellCommand>,
}

/// Checks the allow-list as configuration: names what is wrong.
pub fn validate(commands: &[ShellCommand]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in commands.iter().enumerate() {
        let at = format!("actions.shell[{i}]");
        if !valid_name(&c.name) {
            return Err(format!("{at}.name: letters, digits, - and _ only"));
        }
        if !seen.insert(&c.name) {
            return Err(format!("{at}.name: `{}` is listed twice", c.name));
        }
        match c.argv.first() {
            Some(program) if Path::new(program).is_absolute() => {}
            _ => {
                return Err(format!(
                    "{at}.argv: must start with an absolute program path"
                ));
            }
        }
        if c.timeout_seconds == Some(0) {
            return Err(format!("{at}.timeout_seconds: must be at least 1"));
        }
    }
    Ok(())
}

/// The placeholders of one argument, in order.
fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

impl ShellExecutor {
    pub fn new(commands: Vec<ShellCommand>) -> ShellExecutor {
        ShellExecutor {
            commands: commands.into_iter().map(|c| (c.name.clone(), c)).collect(),
        }
    }

    /// The argv for `request`, or what is wrong with its params.
    fn render(
        &self,
        command: &ShellCommand,
        request: &ActionRequest,
    ) -> Result<Vec<String>, String> {
        let params = match &request.params {
            serde_json::Value::Object(map) => map.clone(),
            serde_json::Value::Null => Default::default(),
            _ => return Err("params must be an object".into()),
        };
        let mut used = std::collections::BTreeSet::new();
        let mut argv = Vec::with_capacity(command.argv.len());
        for arg in &command.argv {
            let mut rendered = arg.clone();
            for name in placeholders(arg) {
                let value = match params.get(name) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(_) => return Err(format!("params.{name} must be a string or a number")),
                    None => return Err(format!("params.{name} is missing")),
                };
                if value.contains('\0') {
                    return Err(format!("params.{name} contains a NUL byte"));
                }
                rendered = rendered.replace(&format!("{{{name}}}"), &value);
                used.insert(name.to_owned());
            }
            argv.push(rendered);
        }
        if let Some(extra) = params.keys().find(|k| !used.contains(k.as_str())) {
            return Err(format!("params.{extra} is not used by {}", request.kind));
        }
        Ok(argv)
    }
}

#[async_trait::async_trait]
impl Executor for ShellExecutor {
    fn handles(&self) -> Handles {
        Handles::Prefix("shell")
    }

    /// The five checks for a shell action.
    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        let name = request.kind.trim_start_matches("shell:");
        let command = self.commands.get(name);
        let mut checks = Vec::new();
        let mut readings = vec![format!("action={}:{}", request.kind, request.target)];
        let mut check = |name, passed, detail: String| {
            checks.push(DryRunCheck {
                name,
                passed,
                detail,
            })
        };
        let argv = command.map(|c| self.render(c, request));
        match &argv {
            Some(Ok(argv)) => {
                readings.push(format!("argv={argv:?}"));
                check(CheckName::Syntax, true, format!("runs {}", argv.join(" ")));
            }
            Some(Err(e)) => check(CheckName::Syntax, false, e.clone()),
            None => check(
                CheckName::Syntax,
                false,
                format!("unknown command `{name}`"),
            ),
        }
        check(
            CheckName::Rbac,
            command.is_some(),
            if command.is_some() {
                format!("{} is on the allow-list", request.kind)
            } else {
                format!(
                    "{} is not on the allow-list ([[actions.shell]])",
                    request.kind
                )
            },
        );
        match command.and_then(|c| c.argv.first()) {
            Some(program) => {
                let meta = std::fs::metadata(program).ok().filter(|m| m.is_file());
                #[cfg(unix)]
                let executable = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.as_ref()
                        .is_some_and(|m| m.permissions().mode() & 0o111 != 0)
                };
                #[cfg(not(unix))]
                let executable = meta.is_some();
                readings.push(format!(
                    "program={program} len={:?} modified={:?}",
                    meta.as_ref().map(|m| m.len()),
                    meta.as_ref().and_then(|m| m.modified().ok())
                ));
                check(
                    CheckName::ResourceExists,
                    executable,
                    if executable {
                        format!("{program} is an executable file")
                    } else {
                        format!("{program} is missing or not executable")
                    },
                );
            }
            None => check(CheckName::ResourceExists, false, "no program to run".into()),
        }
        super::report_without_replicas(checks, readings, blast, "a command")
    }

    /// Runs the command: no shell, an empty environment but `PATH`, stdin closed, killed at
    /// the timeout. Ok with the output on exit status 0.
    async fn execute(
        &self,
        _approval: i64,
        request: &ActionRequest,
        _seen: &DryRunReport,
    ) -> Result<String, ExecError> {
        let name = request.kind.trim_start_matches("shell:");
        let command = self.commands.get(name).ok_or_else(|| {
            ExecError::Refused(format!("{} is not on the allow-list", request.kind))
        })?;
        let argv = self.render(command, request).map_err(ExecError::Refused)?;
        let timeout = Duration::from_secs(command.timeout_seconds.unwrap_or(30));
        run(&argv, &[], timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blast(radius: usize, limit: usize) -> Blast {
        Blast { radius, limit }
    }

    fn request(kind: &str, params: serde_json::Value) -> ActionRequest {
        ActionRequest {
            kind: kind.into(),
            target: "host".into(),
            namespace: None,
            params,
            labels: Default::default(),
            requested_by: "sam".into(),
        }
    }

    fn executor() -> ShellExecutor {
        ShellExecutor::new(vec![ShellCommand {
            name: "greet".into(),
            argv: vec!["/bin/echo".into(), "hello {who}!".into(), "{n}".into()],
            timeout_seconds: Some(5),
            risk: engine::policy::RiskLevel::Low,
        }])
    }

    #[test]
    fn the_allow_list_is_validated_with_names() {
        let bad = |name: &str, argv: &[&str]| {
            validate(&[ShellCommand {
                name: name.into(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                timeout_seconds: None,
                risk: engine::policy::RiskLevel::Low,
            }])
            .unwrap_err()
        };
        assert_eq!(
            bad("a b", &["/bin/true"]),
            "actions.shell[0].name: letters, digits, - and _ only"
        );
        assert_eq!(
            bad("ok", &["true"]),
            "actions.shell[0].argv: must start with an absolute program path"
        );
    }

    #[tokio::test]
    async fn params_fill_placeholders_and_nothing_else() {
        let shell = executor();
        let ok = shell
            .dry_run(
                &request(
                    "shell:greet",
                    serde_json::json!({"who": "a; rm -rf /", "n": 3}),
                ),
                blast(0, 10),
            )
            .await;
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.checks[0].detail, "runs /bin/echo hello a; rm -rf /! 3");
        let missing = shell
            .dry_run(
                &request("shell:greet", serde_json::json!({"who": "x"})),
                blast(0, 10),
            )
            .await;
        assert_eq!(missing.checks[0].detail, "params.n is missing");
        let extra = shell
            .dry_run(
                &request(
                    "shell:greet",
                    serde_json::json!({"who": "x", "n": 1, "more": "y"}),
                ),
                blast(0, 10),
            )
            .await;
        assert_eq!(
            extra.checks[0].detail,
            "params.more is not used by shell:greet"
        );
        let unknown = shell
            .dry_run(&request("shell:rm", serde_json::json!({})), blast(0, 10))
            .await;
        assert!(!unknown.passed);
        assert_eq!(
            unknown.checks[1].detail,
            "shell:rm is not on the allow-list ([[actions.shell]])"
        );
    }

    #[tokio::test]
    async fn commands_run_without_a_shell() {
        let shell = executor();
        let said = shell
            .execute(
                1,
                &request("shell:greet", serde_json::json!({"who": "$(id)", "n": 2})),
                &DryRunReport::new(Vec::new(), &[], 0),
            )
            .await
            .unwrap();
        assert_eq!(said, "hello $(id)! 2", "no interpolation");
    }
}
