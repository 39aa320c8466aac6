//! `awoooi tracer-bullet` (the real binary) against a running demo server: all five steps
//! pass from a fresh start; with its MCP server unreachable it fails and says where.

use crate::support;

use support::{Backend, PASSWORD, TestServer};

on_both_backends!(
    the_tracer_bullet_passes_then_fails_clearly_without_mcp,
    the_tracer_bullet_passes_symptoms_first,
    the_3am_scenario_fires_only_in_demo_mode
);

async fn the_tracer_bullet_passes_then_fails_clearly_without_mcp(backend: Backend) {
    let server = TestServer::start_with(backend, &["--demo"]).await;
    server::edge::demo::seed(&server.state.db, PASSWORD)
        .await
        .unwrap();

    let run = server.cli(
        &[
            "tracer-bullet",
            "--url",
            &server.base,
            "--password",
            PASSWORD,
            "--gap",
            "0.5",
        ],
        None,
    );
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    for step in [
        "trigger_alert",
        "graphrag_analysis",
        "generate_approval",
        "multisig_approval",
        "mcp_execution",
    ] {
        printed(&run, &format!("[x] [{step}] PASS"));
    }
    printed(&run, "root cause postgres-db");
    printed(&run, "EXECUTED: deployments/postgres-db restarted");
    printed(&run, "  Passed: 5\n  Failed: 0\n  Status: ALL PASSED");

    // Stop the MCP server it needs (here: point it at a port nobody listens on).
    let broken = server.cli(
        &[
            "tracer-bullet",
            "--url",
            &server.base,
            "--password",
            PASSWORD,
            "--mcp-url",
            "http://127.0.0.1:9/mcp",
        ],
        None,
    );
    assert_eq!(broken.status.code(), Some(1), "{}", broken.stdout);
    assert!(
        broken.stdout.contains("[x] [trigger_alert] PASS"),
        "{}",
        broken.stdout
    );
    assert!(
        broken.stdout.contains("[ ] [generate_approval] FAIL"),
        "{}",
        broken.stdout
    );
    assert!(
        broken
            .stdout
            .contains("cannot reach the MCP server at http://127.0.0.1:9/mcp"),
        "{}",
        broken.stdout
    );
    assert!(
        broken
            .stdout
            .contains("[ ] [mcp_execution] FAIL\n      skipped: an earlier step failed")
    );
    assert!(broken.stdout.contains("Status: FAILED"));

    let wrong = server.cli(
        &["tracer-bullet", "--url", &server.base, "--password", "nope"],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        wrong
            .stdout
            .contains("cannot sign in as admin: invalid username or password"),
        "{}",
        wrong.stdout
    );
}

/// The frontend's alert first, long enough before the database's that it is analysed
/// alone: the incident settles on postgres-db, its fix is the one pending proposal, and
/// the thinking stream says why the analysis ran again.
async fn the_tracer_bullet_passes_symptoms_first(backend: Backend) {
    let server = TestServer::start_with(backend, &["--demo"]).await;
    server::edge::demo::seed(&server.state.db, PASSWORD)
        .await
        .unwrap();
    let run = server.cli(
        &[
            "tracer-bullet",
            "--url",
            &server.base,
            "--password",
            PASSWORD,
            "--order",
            "symptoms-first",
            "--gap",
            "1.5",
        ],
        None,
    );
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    printed(&run, "symptoms first, 1.5 s apart");
    printed(
        &run,
        "proposed by the analysis: restart_deployment postgres-db",
    );
    printed(&run, "  Passed: 5\n  Failed: 0\n  Status: ALL PASSED");
    let token = server.login("admin", PASSWORD).await;
    let thinking = server
        .graphql(
            Some(&token),
            "{ incident(id: \"1\") { thinking { text } } }",
            serde_json::json!({}),
        )
        .await;
    let said: Vec<&str> = thinking["data"]["incident"]["thinking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(
        said.iter()
            .any(|t| t.starts_with("First analysis, after 0.2 s without a new alert")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|t| t
            .starts_with("Analysing again: the root cause changed from frontend to postgres-db")),
        "{said:#?}"
    );
}

/// The incident's one pending approval once its analysis settled: `(kind, target, dry-run
/// passed)`; panics if another is pending too.
async fn settled_fix(server: &TestServer, token: &str, id: &str) -> (String, String, bool) {
    let query = "query($id: ID!) { incident(id: $id) { status approvals { status
        action { kind target } dryRun { passed } } } }";
    for _ in 0..400 {
        let answer = server
            .graphql(Some(token), query, serde_json::json!({"id": id}))
            .await;
        let incident = &answer["data"]["incident"];
        let pending: Vec<&serde_json::Value> = incident["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "PENDING")
            .collect();
        if incident["status"] == "AWAITING_APPROVAL" && !pending.is_empty() {
            assert_eq!(pending.len(), 1, "{incident}");
            let a = pending[0];
            return (
                a["action"]["kind"].as_str().unwrap().to_owned(),
                a["action"]["target"].as_str().unwrap().to_owned(),
                a["dryRun"]["passed"] == true,
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("incident {id} never settled on a pending fix");
}

/// The tracer's output holds `text`; shows the output when not.
fn printed(run: &support::CliOutput, text: &str) {
    assert!(run.stdout.contains(text), "{}", run.stdout);
}

async fn the_3am_scenario_fires_only_in_demo_mode(backend: Backend) {
    let fire = "mutation($s: Boolean!) { fireDemoScenario(symptomsFirst: $s) { id service } }";
    // In both orders: one incident (the frontend's alert joins the database's, its root
    // cause), whose one pending fix is the database's and passes its dry-run.
    for symptoms_first in [false, true] {
        let demo = TestServer::start_with(backend, &["--demo"]).await;
        let token = demo.signed_in("sam", "sre").await;
        let fired = demo
            .graphql(Some(&token), fire, serde_json::json!({"s": symptoms_first}))
            .await;
        assert_eq!(fired["errors"], serde_json::Value::Null, "{fired}");
        let incidents = fired["data"]["fireDemoScenario"].as_array().unwrap();
        let services: Vec<&str> = incidents
            .iter()
            .map(|i| i["service"].as_str().unwrap())
            .collect();
        assert_eq!(services, ["postgres-db"]);
        let id = incidents[0]["id"].as_str().unwrap();
        assert_eq!(
            settled_fix(&demo, &token, id).await,
            ("restart_deployment".into(), "postgres-db".into(), true),
            "symptoms first: {symptoms_first}"
        );
    }
    let demo = TestServer::start_with(backend, &["--demo"]).await;
    let fire = "mutation { fireDemoScenario { id } }";
    let viewer = demo.signed_in("erin", "viewer").await;
    let refused = demo
        .graphql(Some(&viewer), fire, serde_json::json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");

    let plain = TestServer::start(backend).await;
    let token = plain.signed_in("sam", "sre").await;
    let refused = plain
        .graphql(Some(&token), fire, serde_json::json!({}))
        .await;
    assert_eq!(
        refused["errors"][0]["message"],
        "the 3 AM scenario is only available on a server started with --demo"
    );
}
