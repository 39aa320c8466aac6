//! `awoooi tracer-bullet`: the seed's five-step end-to-end check against a running server,
//! through public interfaces only — the alert webhook, GraphQL, and AWOOOI's MCP server —
//! signing as two demo users. Exit 0 only when every step passes.

use std::time::Duration;

use crate::edge::cli::AlertOrder;

use engine::policy::ApprovalStatus;
use engine::stored::Stored;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use serde_json::{Value, json};

/// How to reach the server and whom to act as.
#[derive(Debug, Clone)]
pub struct Tracer {
    pub url: String,
    /// AWOOOI's MCP endpoint (default `<url>/mcp`).
    pub mcp_url: String,
    /// The demo users' password.
    pub password: String,
    /// How long a step may wait for the system.
    pub patience: Duration,
    /// Which alert fires first.
    pub order: AlertOrder,
    /// The time between the two alerts.
    pub gap: Duration,
}

struct Step {
    name: &'static str,
    outcome: Result<String, String>,
}

struct Context {
    http: reqwest::Client,
    admin: String,
    incident: String,
    approval: String,
}

impl Tracer {
    async fn graphql(
        &self,
        http: &reqwest::Client,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let url = format!("{}/graphql", self.url.trim_end_matches('/'));
        let mut request = http
            .post(&url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer: Value = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{url} did not answer with GraphQL: {e}"))?;
        if let Some(error) = answer["errors"].get(0) {
            return Err(format!(
                "{} ({})",
                error["message"].as_str().unwrap_or("error"),
                error["extensions"]["code"].as_str().unwrap_or("ERROR")
            ));
        }
        Ok(answer["data"].clone())
    }

    async fn login(&self, http: &reqwest::Client, user: &str) -> Result<String, String> {
        let data = self
            .graphql(
                http,
                None,
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
                json!({"u": user, "p": self.password}),
            )
            .await
            .map_err(|e| format!("cannot sign in as {user}: {e}"))?;
        data["login"]["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no token for {user}"))
    }

    /// One MCP tool call on AWOOOI's MCP server, as `token`'s user.
    async fn mcp(&self, token: &str, tool: &str, arguments: Value) -> Result<Value, String> {
        use rmcp::transport::StreamableHttpClientTransport;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.mcp_url.clone()).auth_header(token);
        let mut client = ()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .map_err(|e| format!("cannot reach the MCP server at {}: {e}", self.mcp_url))?;
        let arguments = match arguments {
            Value::Object(map) => map,
            _ => Default::default(),
        };
        let result = client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await;
        let _ = client.close().await;
        let result = result.map_err(|e| format!("MCP tools/call {tool} failed: {e}"))?;
        let text: String = result
            .content
            .iter()
            .filter_map(ContentBlock::as_text)
            .map(|t| t.text.as_str())
            .collect();
        if result.is_error == Some(true) {
            return Err(format!("MCP tool {tool}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("MCP tool {tool} answered no JSON: {e}"))
    }

    async fn trigger_alert(&self, test_id: &str) -> Result<(Context, String), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let admin = self.login(&http, "admin").await?;
        let url = format!("{}/api/v1/alerts/webhook", self.url.trim_end_matches('/'));
        let mut incident = String::new();
        let mut alerts = crate::edge::demo::SCENARIO.to_vec();
        if self.order == AlertOrder::SymptomsFirst {
            alerts.reverse();
        }
        for (i, (name, service, description)) in alerts.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(self.gap).await;
            }
            let response = http
                .post(&url)
                .bearer_auth(&admin)
                .json(
                    &json!({"name": name, "service": service, "severity": "critical",
                    "description": format!("{description} ({test_id})")}),
                )
                .send()
                .await
                .map_err(|e| format!("cannot reach {url}: {e}"))?;
            if response.status() != 202 {
                return Err(format!("{url} answered {} for {name}", response.status()));
            }
            let receipt: Value = response.json().await.map_err(|e| e.to_string())?;
            let joined = receipt["incidents"][0]
                .as_str()
                .ok_or("the webhook named no incident")?
                .to_owned();
            if !incident.is_empty() && joined != incident {
                return Err(format!(
                    "{name} opened incident #{joined} instead of joining #{incident}"
                ));
            }
            incident = joined;
        }
        Ok((
            Context {
                http,
                admin,
                incident: incident.clone(),
                approval: String::new(),
            },
            format!(
                "2 alerts accepted {}, {:.1} s apart; both in incident #{incident}",
                match self.order {
                    AlertOrder::CauseFirst => "cause first",
                    AlertOrder::SymptomsFirst => "symptoms first",
                },
                self.gap.as_secs_f64()
            ),
        ))
    }

    async fn graphrag_analysis(&self, ctx: &Context) -> Result<String, String> {
        let query = "query($id: ID!) { incident(id: $id) { status service alerts { service }
            analysis { summary rootCauses { service } proposal { rootCause }
            blastRadius { affected { service } } } } }";
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut seen = String::from("no analysis yet");
        loop {
            let data = self
                .graphql(
                    &ctx.http,
                    Some(&ctx.admin),
                    query,
                    json!({"id": ctx.incident}),
                )
                .await?;
            let incident = &data["incident"];
            let analysis = &incident["analysis"];
            let cause = incident["service"].as_str().unwrap_or("none");
            let services: Vec<&str> = incident["alerts"]
                .as_array()
                .map(|a| a.iter().filter_map(|a| a["service"].as_str()).collect())
                .unwrap_or_default();
            if analysis.is_object() {
                // Settled: the incident's root cause is the database, and the analysis
                // describes it (ranks it first, concludes on it).
                let ranked = analysis["rootCauses"][0]["service"].as_str();
                let concluded = analysis["proposal"]["rootCause"].as_str();
                seen = format!(
                    "root cause {cause}, analysis ranks {} and concludes {}",
                    ranked.unwrap_or("nothing"),
                    concluded.unwrap_or("nothing")
                );
                let settled = cause == "postgres-db"
                    && ranked == Some("postgres-db")
                    && concluded == Some("postgres-db")
                    && incident["status"] != "ANALYZING";
                if settled && services.contains(&"frontend") {
                    let blast = analysis["blastRadius"]["affected"]
                        .as_array()
                        .map_or(0, Vec::len);
                    return Ok(format!(
                        "root cause postgres-db; blast radius {blast} service(s)"
                    ));
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "incident #{} did not settle on postgres-db within {} s ({seen}; alerts on {services:?})",
                    ctx.incident,
                    self.patience.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The fix the analysis proposed, read over MCP: one pending approval, aimed at the
    /// database, whose dry-run passed, and no pending proposal aimed elsewhere.
    async fn generate_approval(&self, ctx: &mut Context) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + self.patience;
        loop {
            let incident = self
                .mcp(&ctx.admin, "get_incident", json!({"id": ctx.incident}))
                .await?;
            let pending: Vec<&Value> = incident["approvals"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|a| status_of(a) == Some(ApprovalStatus::Pending))
                        .collect()
                })
                .unwrap_or_default();
            let aimed = |a: &Value| {
                a["action"]["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("postgres-db"))
            };
            let elsewhere: Vec<String> = pending
                .iter()
                .filter(|a| !aimed(a))
                .map(|a| {
                    format!(
                        "#{} {} {}",
                        a["id"].as_str().unwrap_or("?"),
                        a["action"]["kind"],
                        a["action"]["target"]
                    )
                })
                .collect();
            if let Some(fix) = pending.iter().find(|a| aimed(a)) {
                if !elsewhere.is_empty() {
                    return Err(format!(
                        "pending proposals aimed elsewhere: {}",
                        elsewhere.join(", ")
                    ));
                }
                if fix["dryRun"]["passed"] != true {
                    return Err(format!(
                        "the proposed fix's dry-run failed: {}",
                        fix["dryRun"]["checks"]
                    ));
                }
                ctx.approval = fix["id"].as_str().unwrap_or_default().to_owned();
                return Ok(format!(
                    "approval #{} proposed by the analysis: {} {}, {} risk, dry-run passed",
                    ctx.approval,
                    fix["action"]["kind"].as_str().unwrap_or("?"),
                    fix["action"]["target"].as_str().unwrap_or("?"),
                    fix["effectiveRisk"].as_str().unwrap_or("?"),
                ));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "no pending fix aimed at postgres-db within {} s (pending: {})",
                    self.patience.as_secs(),
                    if elsewhere.is_empty() {
                        "none".to_owned()
                    } else {
                        elsewhere.join(", ")
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn multisig_approval(&self, ctx: &Context) -> Result<String, String> {
        let mut signed = Vec::new();
        for user in ["alice", "bob"] {
            let token = self.login(&ctx.http, user).await?;
            let data = self
                .graphql(
                    &ctx.http,
                    Some(&token),
                    "mutation($id: ID!) { approve(approvalId: $id, comment: \"tracer bullet\") { status } }",
                    json!({"id": ctx.approval}),
                )
                .await
                .map_err(|e| format!("{user} could not sign: {e}"))?;
            signed.push(user);
            if status_of(&data["approve"]) != Some(ApprovalStatus::Pending) {
                let status = data["approve"]["status"].as_str().unwrap_or_default();
                return Ok(format!("signed by {}; now {status}", signed.join(" and ")));
            }
        }
        Err(format!(
            "still PENDING after {} signed",
            signed.join(" and ")
        ))
    }

    async fn mcp_execution(&self, ctx: &Context) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + self.patience;
        loop {
            let approval = self
                .mcp(
                    &ctx.admin,
                    "approval_status",
                    json!({"approval_id": ctx.approval}),
                )
                .await?;
            match status_of(&approval) {
                Some(ApprovalStatus::Executed) => {
                    return Ok(format!(
                        "EXECUTED: {}",
                        approval["execution"]["output"].as_str().unwrap_or_default()
                    ));
                }
                Some(ApprovalStatus::Voided) => {
                    return Err(format!(
                        "VOIDED: {}",
                        approval["voidReason"].as_str().unwrap_or_default()
                    ));
                }
                Some(ApprovalStatus::Failed) => {
                    return Err(format!(
                        "FAILED: {}",
                        approval["execution"]["output"].as_str().unwrap_or_default()
                    ));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(format!(
                        "not executed within {} s (status {})",
                        self.patience.as_secs(),
                        approval["status"]
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Runs the five steps, printing the seed's table to `out`; true when all passed.
    pub async fn run(&self, out: &mut impl std::io::Write) -> std::io::Result<bool> {
        let test_id = format!("tb2-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let rule = "=".repeat(60);
        writeln!(
            out,
            "{rule}\nTRACER BULLET 2.0 - FULL LOOP TEST\nTest ID: {test_id}\n{rule}\n"
        )?;
        let mut steps = Vec::new();
        let skipped = |name| Step {
            name,
            outcome: Err("skipped: an earlier step failed".into()),
        };
        match self.trigger_alert(&test_id).await {
            Ok((mut ctx, said)) => {
                steps.push(Step {
                    name: "trigger_alert",
                    outcome: Ok(said),
                });
                let analysis = self.graphrag_analysis(&ctx).await;
                let analysed = analysis.is_ok();
                steps.push(Step {
                    name: "graphrag_analysis",
                    outcome: analysis,
                });
                if analysed {
                    let generated = self.generate_approval(&mut ctx).await;
                    let ok = generated.is_ok();
                    steps.push(Step {
                        name: "generate_approval",
                        outcome: generated,
                    });
                    if ok {
                        let signed = self.multisig_approval(&ctx).await;
                        let ok = signed.is_ok();
                        steps.push(Step {
                            name: "multisig_approval",
                            outcome: signed,
                        });
                        if ok {
                            let executed = self.mcp_execution(&ctx).await;
                            steps.push(Step {
                                name: "mcp_execution",
                                outcome: executed,
                            });
                        }
                    }
                }
            }
            Err(why) => steps.push(Step {
                name: "trigger_alert",
                outcome: Err(why),
            }),
        }
        for name in [
            "trigger_alert",
            "graphrag_analysis",
            "generate_approval",
            "multisig_approval",
            "mcp_execution",
        ] {
            if !steps.iter().any(|s| s.name == name) {
                steps.push(skipped(name));
            }
        }
        for step in &steps {
            match &step.outcome {
                Ok(detail) => writeln!(out, "[x] [{}] PASS\n      {detail}", step.name)?,
                Err(reason) => writeln!(out, "[ ] [{}] FAIL\n      {reason}", step.name)?,
            }
        }
        let passed = steps.iter().filter(|s| s.outcome.is_ok()).count();
        let all = passed == steps.len();
        writeln!(
            out,
            "\n{rule}\nTEST SUMMARY\n{rule}\n  Total Steps: {}\n  Passed: {passed}\n  Failed: {}\n  Status: {}",
            steps.len(),
            steps.len() - passed,
            if all { "ALL PASSED" } else { "FAILED" }
        )?;
        Ok(all)
    }
}

/// The `status` of an approval in an API answer, if it is one.
fn status_of(approval: &Value) -> Option<ApprovalStatus> {
    ApprovalStatus::from_stored(approval["status"].as_str()?).ok()
}
