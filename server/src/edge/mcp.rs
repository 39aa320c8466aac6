//! AWOOOI as an MCP server: `/mcp` (streamable HTTP, bearer token) and `awoooi mcp` (stdio,
//! acting through a running server's API with `AWOOOI_TOKEN`). Every tool is one GraphQL
//! operation run as the caller, so the same roles and rules apply; `propose_action` creates an
//! approval and nothing more — an agent can never execute by itself.

use std::sync::Arc;

use axum::http::request::Parts;
use engine::incident::IncidentStatus;
use engine::stored::Stored;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use async_graphql::Executor;

use crate::edge::graphql::{AppSchema, RequestAuth};

/// Where tool calls go.
#[derive(Clone)]
pub enum Backend {
    /// Inside the server: the schema, run as whoever the HTTP request authenticated.
    InProcess(AppSchema),
    /// A running server's `/graphql`, with one token (`awoooi mcp`).
    Remote {
        url: String,
        token: String,
        client: reqwest::Client,
    },
}

struct Spec {
    name: &'static str,
    description: &'static str,
    schema: fn() -> Value,
}

const TOOLS: &[Spec] = &[
    Spec {
        name: "list_incidents",
        description: "Incidents, newest first (pseudonymised).",
        schema: || {
            json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": IncidentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
                "first": {"type": "integer", "minimum": 1, "maximum": 100}}})
        },
    },
    Spec {
        name: "get_incident",
        description: "One incident with its alerts, analysis and approvals.",
        schema: || json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}),
    },
    Spec {
        name: "root_causes",
        description: "Unhealthy dependencies of a service, likeliest first.",
        schema: || {
            json!({"type": "object", "required": ["service"], "properties": {
                "service": {"type": "string"}, "max_depth": {"type": "integer", "minimum": 1, "maximum": 10}}})
        },
    },
    Spec {
        name: "blast_radius",
        description: "Everything that breaks with a service, nearest first.",
        schema: || {
            json!({"type": "object", "required": ["service"], "properties": {
                "service": {"type": "string"}, "max_depth": {"type": "integer", "minimum": 1, "maximum": 10}}})
        },
    },
    Spec {
        name: "propose_action",
        description: "Propose an action for an incident. It becomes an approval that people sign; \
                      it is never executed by this call.",
        schema: || {
            json!({"type": "object", "required": ["incident_id", "kind", "target"], "properties": {
                "incident_id": {"type": "string"},
                "kind": {"type": "string", "description": "e.g. restart_deployment, scale_deployment, rollback_deployment, shell:<name>, ansible:<playbook>"},
                "target": {"type": "string"},
                "namespace": {"type": "string"},
                "params": {"type": "object"},
                "rationale": {"type": "string"}}})
        },
    },
    Spec {
        name: "acknowledge_incident",
        description: "Acknowledge an open incident as the caller: it stops its escalation. The \
                      first acknowledgement stands.",
        schema: || json!({"type": "object", "required": ["incident_id"], "properties": {"incident_id": {"type": "string"}}}),
    },
    Spec {
        name: "assign_incident",
        description: "Assign an incident to a user by name; omit `assignee` to unassign it.",
        schema: || {
            json!({"type": "object", "required": ["incident_id"], "properties": {
                "incident_id": {"type": "string"}, "assignee": {"type": "string"}}})
        },
    },
    Spec {
        name: "comment_on_incident",
        description: "Comment on an incident (Markdown). Raw values are stored as the incident's \
                      labels.",
        schema: || {
            json!({"type": "object", "required": ["incident_id", "body"], "properties": {
                "incident_id": {"type": "string"}, "body": {"type": "string"}}})
        },
    },
    Spec {
        name: "finops_report",
        description: "The latest FinOps scan: monthly waste, what is realizable now, what is freed \
                      after a scale-down, and each finding with its saving, risk and fixing action.",
        schema: || json!({"type": "object", "properties": {}}),
    },
    Spec {
        name: "approval_status",
        description: "Where an approval stands: status, signatures, dry-run, execution.",
        schema: || json!({"type": "object", "required": ["approval_id"], "properties": {"approval_id": {"type": "string"}}}),
    },
];

const APPROVAL_FIELDS: &str = "id status baseRisk effectiveRisk requiredSignatures requiredRoles
    action { kind target namespace params } signatures { signer role decision }
    dryRun { passed checks { name passed detail } } voidReason execution { status output }";

const TRIAGE_FIELDS: &str = "id title status acknowledgedBy acknowledgedAt assignee";

fn tool(spec: &Spec) -> Tool {
    let schema: JsonObject = match (spec.schema)() {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(spec.name, spec.description, Arc::new(schema))
}

fn text(args: &JsonObject, key: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("{key}: a non-empty string is required")),
    }
}

/// The GraphQL operation for a tool call, and the field of `data` to return.
fn operation(name: &str, args: &JsonObject) -> Result<(String, Value, &'static str), String> {
    let depth = args.get("max_depth").and_then(Value::as_i64).unwrap_or(3);
    Ok(match name {
        "list_incidents" => (
            "query($s: IncidentStatus, $f: Int) { incidents(status: $s, first: $f) { totalCount
              edges { node { id title severity status service createdAt } } } }"
                .into(),
            json!({"s": args.get("status"), "f": args.get("first").and_then(Value::as_i64).unwrap_or(20)}),
            "incidents",
        ),
        "get_incident" => (
            "query($id: ID!) { incident(id: $id) { id title severity status service createdAt
              alerts { name status severity count } analysis { summary confidence brain
              rootCauses { service kind depth } } approvals { id status effectiveRisk requestedBy
              dryRun { passed checks { name passed detail } } action { kind target } } } }"
                .into(),
            json!({"id": text(args, "id")?}),
            "incident",
        ),
        "root_causes" => (
            "query($s: String!, $d: Int) { rootCauses(service: $s, maxDepth: $d) { service kind depth health rank } }"
                .into(),
            json!({"s": text(args, "service")?, "d": depth}),
            "rootCauses",
        ),
        "blast_radius" => (
            "query($s: String!, $d: Int) { blastRadius(service: $s, maxDepth: $d) { target maxDepth affected { service kind depth } } }"
                .into(),
            json!({"s": text(args, "service")?, "d": depth}),
            "blastRadius",
        ),
        "propose_action" => (
            format!("mutation($i: ID!, $a: ActionInput!) {{ proposeAction(incidentId: $i, action: $a) {{ {APPROVAL_FIELDS} }} }}"),
            json!({"i": text(args, "incident_id")?, "a": {
                "kind": text(args, "kind")?,
                "target": text(args, "target")?,
                "namespace": args.get("namespace"),
                "params": args.get("params"),
                "rationale": args.get("rationale"),
            }}),
            "proposeAction",
        ),
        "acknowledge_incident" => (
            format!("mutation($i: ID!) {{ acknowledgeIncident(incidentId: $i) {{ {TRIAGE_FIELDS} }} }}"),
            json!({"i": text(args, "incident_id")?}),
            "acknowledgeIncident",
        ),
        "assign_incident" => (
            format!("mutation($i: ID!, $a: String) {{ assignIncident(incidentId: $i, assignee: $a) {{ {TRIAGE_FIELDS} }} }}"),
            json!({"i": text(args, "incident_id")?, "a": args.get("assignee")}),
            "assignIncident",
        ),
        "comment_on_incident" => (
            "mutation($i: ID!, $b: String!) { commentOnIncident(incidentId: $i, body: $b) { id author body createdAt } }"
                .into(),
            json!({"i": text(args, "incident_id")?, "b": text(args, "body")?}),
            "commentOnIncident",
        ),
        "approval_status" => (
            format!("query($id: ID!) {{ approval(id: $id) {{ {APPROVAL_FIELDS} }} }}"),
            json!({"id": text(args, "approval_id")?}),
            "approval",
        ),
        "finops_report" => (
            "query { finopsReport { currency monthlyWaste realizableMonthly freedMonthly annualIfAllFixed
              scannedAt findings { kind resource namespace monthlyCost saving bucket risk
              recommendation actionKind actionParams detail } } }"
                .into(),
            json!({}),
            "finopsReport",
        ),
        other => return Err(format!("unknown tool `{other}`")),
    })
}

impl Backend {
    async fn graphql(
        &self,
        auth: Option<RequestAuth>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let raw = match self {
            Backend::InProcess(schema) => {
                let Some(auth) = auth.filter(|a| a.principal.is_some()) else {
                    return Err(
                        "sign in first: send Authorization: Bearer <token> (UNAUTHENTICATED)"
                            .into(),
                    );
                };
                let request = async_graphql::Request::new(query)
                    .variables(async_graphql::Variables::from_json(variables))
                    .data(auth);
                serde_json::to_value(schema.execute(request).await)
                    .map_err(|e| format!("cannot encode the answer: {e}"))?
            }
            Backend::Remote { url, token, client } => client
                .post(format!("{}/graphql", url.trim_end_matches('/')))
                .bearer_auth(token)
                .json(&json!({"query": query, "variables": variables}))
                .send()
                .await
                .map_err(|e| format!("cannot reach {url}: {e}"))?
                .json::<Value>()
                .await
                .map_err(|e| format!("{url} did not answer with GraphQL: {e}"))?,
        };
        if let Some(error) = raw["errors"].get(0) {
            return Err(format!(
                "{} ({})",
                error["message"].as_str().unwrap_or("error"),
                error["extensions"]["code"].as_str().unwrap_or("ERROR")
            ));
        }
        Ok(raw["data"].clone())
    }
}

/// The MCP handler.
#[derive(Clone)]
pub struct AwoooiMcp {
    backend: Backend,
}

impl AwoooiMcp {
    pub fn new(backend: Backend) -> AwoooiMcp {
        AwoooiMcp { backend }
    }

    /// Runs one tool; the text is JSON for agents, or the reason it failed.
    pub async fn call(
        &self,
        name: &str,
        args: &JsonObject,
        auth: Option<RequestAuth>,
    ) -> Result<String, String> {
        let (query, variables, field) = operation(name, args)?;
        let data = self.backend.graphql(auth, &query, variables).await?;
        match &data[field] {
            Value::Null => Err(format!("{name}: not found (NOT_FOUND)")),
            found => Ok(serde_json::to_string_pretty(found).unwrap_or_default()),
        }
    }
}

impl ServerHandler for AwoooiMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("awoooi", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "AWOOOI incidents, topology and approvals. Texts are pseudonymised. \
                 propose_action only creates an approval; people sign it and AWOOOI executes.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            TOOLS.iter().map(tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if !TOOLS.iter().any(|t| t.name == request.name.as_ref()) {
            return Err(McpError::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        }
        let auth = context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<RequestAuth>())
            .cloned();
        let args = request.arguments.unwrap_or_default();
        Ok(match self.call(request.name.as_ref(), &args, auth).await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(why) => CallToolResult::error(vec![ContentBlock::text(why)]),
        }
        .into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        TOOLS.iter().find(|t| t.name == name).map(tool)
    }
}

/// The `/mcp` service (stateless, JSON answers: any replica can take any request).
pub fn http_service(
    schema: AppSchema,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    AwoooiMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let handler = AwoooiMcp::new(Backend::InProcess(schema));
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            // Callers authenticate with a bearer token (never a cookie), so a rebound DNS name
            // gains nothing; deployments serve /mcp under their own host names.
            .disable_allowed_hosts(),
    )
}

/// `awoooi mcp`: serves MCP on stdin/stdout, acting through `url` with `token`.
pub async fn serve_stdio(url: String, token: String) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let handler = AwoooiMcp::new(Backend::Remote {
        url,
        token,
        client: reqwest::Client::new(),
    });
    let running = handler.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
