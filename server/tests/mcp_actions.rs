//! AWOOOI as an MCP client: `mcp:<server>/<tool>` actions against a real third-party MCP server
//! (built with the official Python SDK, stdio), through policy, dry-run and signatures.

use crate::support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(tools_are_called_with_real_values_after_a_dry_run);

const SECRET_IP: &str = "10.77.88.99";

const FIELDS: &str = "id status effectiveRisk dryRun { passed checks { name passed detail } }
    execution { executor status output }";

fn check<'a>(approval: &'a Value, name: &str) -> &'a Value {
    approval["dryRun"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

async fn tools_are_called_with_real_values_after_a_dry_run(backend: Backend) {
    let log = std::env::temp_dir().join(format!("awoooi-mcp-{}.log", rand::random::<u32>()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_tools_server.py");
    let toml = format!(
        "[[actions.mcp]]\nname = \"ops\"\ncommand = [\"{}\", \"{}\", \"{}\"]\ntimeout_seconds = 30\n\
         risk = \"MEDIUM\"\n",
        support::venv("python").display(),
        script.display(),
        log.display()
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "ApiDown", "service": "api", "severity": "critical",
                "description": format!("api on {SECRET_IP} is down")}),
        )
        .await;
    let propose = |action: Value| {
        let (server, sam, incident) = (&server, sam.clone(), incident.clone());
        async move {
            let answer = server
                .graphql(
                    Some(&sam),
                    &format!("mutation($i: ID!, $a: ActionInput!) {{ proposeAction(incidentId: $i, action: $a) {{ {FIELDS} }} }}"),
                    json!({"i": incident, "a": action}),
                )
                .await;
            assert_eq!(answer["errors"], Value::Null, "{answer}");
            answer["data"]["proposeAction"].clone()
        }
    };
    let approve = |id: String| {
        let (server, alice) = (&server, alice.clone());
        async move {
            server
                .graphql(
                    Some(&alice),
                    "mutation($id: ID!) { approve(approvalId: $id) { status } }",
                    json!({"id": id}),
                )
                .await
        }
    };

    let restart = propose(
        json!({"kind": "mcp:ops/restart_service", "target": "[IP_1]",
        "params": {"name": "nginx", "host": "[IP_1]"}}),
    )
    .await;
    assert_eq!(restart["dryRun"]["passed"], true, "{restart}");
    assert_eq!(
        check(&restart, "RESOURCE_EXISTS")["detail"],
        "`ops` offers tool `restart_service`"
    );
    let id = restart["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(id.clone()).await["errors"], Value::Null);
    let done = server.settled_approval(&sam, &id, FIELDS).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(done["execution"]["executor"], "mcp");
    assert_eq!(done["execution"]["output"], "restarted nginx on [IP_1]");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("restart nginx on {SECRET_IP}\n"),
        "the tool got the real value"
    );

    // Arguments that do not fit the tool's schema, and tools that do not exist, fail the
    // dry-run; nobody can approve them.
    let missing = propose(json!({"kind": "mcp:ops/restart_service", "target": "api",
        "params": {"name": "nginx"}}))
    .await;
    assert_eq!(
        check(&missing, "SYNTAX")["detail"],
        "argument `host` is required"
    );
    let unknown = propose(json!({"kind": "mcp:ops/format_disk", "target": "api"})).await;
    assert_eq!(
        check(&unknown, "RESOURCE_EXISTS")["detail"],
        "`ops` has no tool `format_disk`"
    );
    let elsewhere = propose(json!({"kind": "mcp:nowhere/x", "target": "api"})).await;
    assert_eq!(
        check(&elsewhere, "RBAC")["detail"],
        "no MCP server `nowhere` is configured ([[actions.mcp]])"
    );
    let refused = approve(unknown["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT");

    // A tool that reports an error leaves the approval FAILED with its words.
    let fail =
        propose(json!({"kind": "mcp:ops/fail", "target": "api", "params": {"reason": "no"}})).await;
    let fail_id = fail["id"].as_str().unwrap().to_owned();
    approve(fail_id.clone()).await;
    let failed = server.settled_approval(&sam, &fail_id, FIELDS).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["execution"]["output"]
            .as_str()
            .unwrap()
            .contains("refused: no"),
        "{failed}"
    );
    assert!(!server.dump_text_columns().await.contains(SECRET_IP));
    let _ = std::fs::remove_file(log);
}
