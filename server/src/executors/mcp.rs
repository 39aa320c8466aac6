//! AWOOOI as an MCP client: action kind `mcp:<server>/<tool>` calls a tool of a configured MCP
//! server (a stdio command or a streamable-HTTP URL) with the action's params as arguments.
//! The dry-run connects, checks the tool exists and the arguments fit its input schema.

use std::time::Duration;

use engine::dryrun::{CheckName, DryRunCheck, DryRunReport};
use engine::policy::ActionRequest;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock, JsonObject, Tool};
use rmcp::service::{RoleClient, RunningService};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::services::approvals::{Blast, ExecError, Executor, Handles};

/// One MCP server (`[[actions.mcp]]`): `command` (stdio) or `url` (streamable HTTP).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Action kinds are `mcp:<name>/<tool>`.
    pub name: String,
    /// Program and arguments of a stdio server.
    pub command: Option<Vec<String>>,
    /// Endpoint of a streamable-HTTP server.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …` to an HTTP server.
    pub token: Option<String>,
    /// Per call (default 60 s).
    pub timeout_seconds: Option<u64>,
    /// The risk of its tools, `mcp:<name>/<tool>` (required: tools are in no policy table).
    pub risk: engine::policy::RiskLevel,
    /// Per-tool risks over `risk`, e.g. `drop_table = "CRITICAL"`.
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, engine::policy::RiskLevel>,
}

impl std::fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("risk", &self.risk)
            .field("tools", &self.tools)
            .finish()
    }
}

/// Checks `[[actions.mcp]]` as configuration.
pub fn validate(servers: &[McpServerConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in servers.iter().enumerate() {
        let at = format!("actions.mcp[{i}]");
        if !crate::executors::valid_name(&s.name) {
            return Err(format!("{at}.name: letters, digits, - and _ only"));
        }
        if !seen.insert(&s.name) {
            return Err(format!("{at}.name: `{}` is listed twice", s.name));
        }
        match (&s.command, &s.url) {
            (Some(c), None) if !c.is_empty() => {}
            (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {}
            _ => {
                return Err(format!(
                    "{at}: give either command = [...] or url = \"http(s)://…\""
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct McpExecutor {
    servers: Vec<McpServerConfig>,
}

type Client = RunningService<RoleClient, ()>;

/// Top-level checks of `args` against a tool's input schema: required properties present,
/// declared primitive types respected, no unknown properties when the schema forbids them.
pub fn check_arguments(schema: &JsonObject, args: &JsonObject) -> Result<(), String> {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !args.contains_key(required) {
            return Err(format!("argument `{required}` is required"));
        }
    }
    for (key, value) in args {
        let Some(declared) = properties.get(key) else {
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                return Err(format!("argument `{key}` is not in the tool's schema"));
            }
            continue;
        };
        let types: Vec<&str> = match declared.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let fits = types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        });
        if !fits {
            return Err(format!("argument `{key}` must be {}", types.join(" or ")));
        }
    }
    Ok(())
}

impl McpExecutor {
    pub fn new(servers: Vec<McpServerConfig>) -> McpExecutor {
        McpExecutor { servers }
    }

    /// `mcp:<server>/<tool>` → the server's configuration and the tool name.
    fn target(&self, kind: &str) -> Result<(&McpServerConfig, String), String> {
        let rest = kind.trim_start_matches("mcp:");
        let (server, tool) = rest
            .split_once('/')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty())
            .ok_or_else(|| format!("`{kind}`: expected mcp:<server>/<tool>"))?;
        let config = self
            .servers
            .iter()
            .find(|s| s.name == server)
            .ok_or_else(|| format!("no MCP server `{server}` is configured ([[actions.mcp]])"))?;
        Ok((config, tool.to_owned()))
    }

    async fn connect(config: &McpServerConfig) -> Result<Client, String> {
        let name = &config.name;
        if let Some(command) = &config.command {
            let mut process = tokio::process::Command::new(&command[0]);
            process.args(&command[1..]).kill_on_drop(true);
            let transport = rmcp::transport::TokioChildProcess::new(process)
                .map_err(|e| format!("cannot start MCP server `{name}`: {e}"))?;
            ().serve(transport)
                .await
                .map_err(|e| format!("MCP server `{name}` did not initialize: {e}"))
        } else {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let url = config.url.clone().unwrap_or_default();
            let mut transport_config = StreamableHttpClientTransportConfig::with_uri(url);
            if let Some(token) = &config.token {
                transport_config = transport_config.auth_header(token.clone());
            }
            ().serve(StreamableHttpClientTransport::from_config(transport_config))
                .await
                .map_err(|e| format!("MCP server `{name}` did not initialize: {e}"))
        }
    }

    fn timeout(config: &McpServerConfig) -> Duration {
        Duration::from_secs(config.timeout_seconds.unwrap_or(60))
    }

    async fn tool(client: &Client, tool: &str) -> Result<Option<Tool>, String> {
        let tools = client
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        Ok(tools.into_iter().find(|t| t.name == tool))
    }

    fn arguments(request: &ActionRequest) -> Result<JsonObject, String> {
        match &request.params {
            Value::Object(map) => Ok(map.clone()),
            Value::Null => Ok(JsonObject::new()),
            _ => Err("params must be an object (they are the tool's arguments)".into()),
        }
    }
}

#[async_trait::async_trait]
impl Executor for McpExecutor {
    fn handles(&self) -> Handles {
        Handles::Prefix("mcp")
    }

    /// The five checks for an MCP tool call.
    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        let mut readings = vec![format!("action={}:{}", request.kind, request.target)];
        let mut checks = Vec::new();
        let mut push = |name, passed, detail: String| {
            checks.push(DryRunCheck {
                name,
                passed,
                detail,
            })
        };
        match self.target(&request.kind) {
            Err(why) => {
                push(CheckName::Rbac, false, why);
                push(CheckName::ResourceExists, false, "no MCP server".into());
                push(CheckName::Syntax, false, "no tool to check against".into());
            }
            Ok((config, tool_name)) => {
                push(
                    CheckName::Rbac,
                    true,
                    format!("MCP server `{}` is configured", config.name),
                );
                let looked_up = tokio::time::timeout(Self::timeout(config), async {
                    let mut client = Self::connect(config).await?;
                    let tool = Self::tool(&client, &tool_name).await;
                    let _ = client.close().await;
                    tool
                })
                .await
                .unwrap_or_else(|_| Err("the MCP server did not answer in time".into()));
                match looked_up {
                    Ok(Some(tool)) => {
                        let schema = serde_json::to_string(&tool.input_schema).unwrap_or_default();
                        readings.push(format!(
                            "tool={tool_name} schema={}",
                            hex::encode(Sha256::digest(schema.as_bytes()))
                        ));
                        push(
                            CheckName::ResourceExists,
                            true,
                            format!("`{}` offers tool `{tool_name}`", config.name),
                        );
                        let fits = Self::arguments(request)
                            .and_then(|args| check_arguments(&tool.input_schema, &args));
                        push(
                            CheckName::Syntax,
                            fits.is_ok(),
                            fits.map(|()| format!("arguments match `{tool_name}`'s input schema"))
                                .unwrap_or_else(|e| e),
                        );
                    }
                    Ok(None) => {
                        push(
                            CheckName::ResourceExists,
                            false,
                            format!("`{}` has no tool `{tool_name}`", config.name),
                        );
                        push(CheckName::Syntax, false, "no tool to check against".into());
                    }
                    Err(why) => {
                        push(CheckName::ResourceExists, false, why);
                        push(CheckName::Syntax, false, "no tool to check against".into());
                    }
                }
            }
        }
        readings.push(format!("arguments={}", request.params));
        super::report_without_replicas(checks, readings, blast, "a tool call")
    }

    /// Calls the tool; Ok with its text when it succeeds, Err when it reports an error.
    async fn execute(
        &self,
        _approval: i64,
        request: &ActionRequest,
        _seen: &DryRunReport,
    ) -> Result<String, ExecError> {
        let (config, tool) = self.target(&request.kind).map_err(ExecError::Refused)?;
        let arguments = Self::arguments(request).map_err(ExecError::Refused)?;
        let call = async {
            let mut client = Self::connect(config)
                .await
                .map_err(ExecError::Unreachable)?;
            let result = client
                .call_tool(CallToolRequestParams::new(tool.clone()).with_arguments(arguments))
                .await;
            let _ = client.close().await;
            let result =
                result.map_err(|e| ExecError::Failed(format!("tools/call {tool} failed: {e}")))?;
            let text: Vec<String> = result
                .content
                .iter()
                .filter_map(ContentBlock::as_text)
                .map(|t| t.text.clone())
                .collect();
            let text = text.join("\n");
            if result.is_error == Some(true) {
                Err(ExecError::Failed(text))
            } else {
                Ok(text)
            }
        };
        tokio::time::timeout(Self::timeout(config), call)
            .await
            .unwrap_or_else(|_| {
                Err(ExecError::TimedOut(format!(
                    "timed out after {} s",
                    Self::timeout(config).as_secs()
                )))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::check_arguments;

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let schema = serde_json::json!({"type": "object", "required": ["name"],
            "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "count": {"type": ["integer", "null"]}}});
        let schema = schema.as_object().unwrap();
        let args = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(
            check_arguments(schema, &args(serde_json::json!({"name": "x", "count": 2}))),
            Ok(())
        );
        assert_eq!(
            check_arguments(schema, &args(serde_json::json!({"count": 2}))),
            Err("argument `name` is required".into())
        );
        assert_eq!(
            check_arguments(schema, &args(serde_json::json!({"name": 1}))),
            Err("argument `name` must be string".into())
        );
        assert_eq!(
            check_arguments(schema, &args(serde_json::json!({"name": "x", "extra": 1}))),
            Err("argument `extra` is not in the tool's schema".into())
        );
    }
}
