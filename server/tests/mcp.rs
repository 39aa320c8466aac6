//! AWOOOI's MCP server driven by a real MCP client (the official Python SDK, installed into
//! `.venv` by `scripts/setup.sh --e2e`), over streamable HTTP and over stdio (`awoooi mcp`).
//! An agent can propose; nothing it does executes.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(a_real_mcp_client_lists_inspects_and_proposes_but_never_executes);

fn client(args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let output = Command::new(support::venv("python"))
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "MCP client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

async fn a_real_mcp_client_lists_inspects_and_proposes_but_never_executes(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("agent", "sre").await;
    let incident = server
        .incident_from_alert(
            &token,
            json!({"name": "CheckoutSlow", "service": "checkout", "severity": "warning"}),
        )
        .await;

    // Without a bearer token /mcp answers 401 before any MCP is spoken.
    let anonymous = server
        .post_json(
            "/mcp",
            None,
            &[("accept", "application/json, text/event-stream")],
            "{}",
        )
        .await;
    assert_eq!(anonymous.status(), 401);

    let url = format!("{}/mcp", server.base);
    let over_http = client(&["http", &url, &token, &incident]);
    let binary = env!("CARGO_BIN_EXE_awoooi");
    let over_stdio = client(&["stdio", binary, &server.base, &token, &incident]);

    for out in [&over_http, &over_stdio] {
        assert_eq!(
            out["tools"],
            json!([
                "acknowledge_incident",
                "approval_status",
                "assign_incident",
                "blast_radius",
                "comment_on_incident",
                "finops_report",
                "get_incident",
                "list_incidents",
                "propose_action",
                "root_causes"
            ])
        );
        // Acknowledged and assigned as the caller; the first acknowledgement stands.
        let acked: Value = serde_json::from_str(out["ack"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(acked["acknowledgedBy"], "agent", "{out}");
        let assigned: Value =
            serde_json::from_str(out["assign"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(assigned["assignee"], "agent", "{out}");
        let comment: Value =
            serde_json::from_str(out["comment"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(comment["author"], "agent");
        let body = comment["body"].as_str().unwrap();
        assert!(
            body.contains("[IP_") && !body.contains("10.9.8.7"),
            "stored with the incident's label: {body}"
        );
        assert_eq!(out["list"]["error"], false, "{out}");
        assert!(
            out["list"]["text"]
                .as_str()
                .unwrap()
                .contains("CheckoutSlow on checkout")
        );
        let blast: Value = serde_json::from_str(out["blast"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(blast["target"], "postgres-db");
        assert_eq!(out["propose"]["error"], false, "{out}");
        let proposed: Value =
            serde_json::from_str(out["propose"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(proposed["status"], "PENDING");
        assert_eq!(proposed["effectiveRisk"], "HIGH");
        let status: Value = serde_json::from_str(out["status"]["text"].as_str().unwrap()).unwrap();
        assert_eq!(status["status"], "PENDING");
        assert_eq!(status["signatures"], json!([]));
        assert_eq!(out["finops"]["error"], false, "{out}");
        let finops: Value = serde_json::from_str(out["finops"]["text"].as_str().unwrap()).unwrap();
        // The cluster generated from the topology mounts every claim and measures nothing.
        assert_eq!(finops["monthlyWaste"], "0.00", "{finops}");
        assert_eq!(finops["currency"], "USD");
        assert_eq!(out["missing_argument"]["error"], true);
        assert_eq!(
            out["missing_argument"]["text"],
            "id: a non-empty string is required"
        );
        assert_eq!(out["unknown_service"]["error"], true);
        assert!(
            out["unknown_service"]["text"]
                .as_str()
                .unwrap()
                .ends_with("(NOT_FOUND)"),
            "{out}"
        );
    }
    // Both proposals wait for people; the cluster was not touched.
    let pending = server
        .graphql(
            Some(&token),
            "{ approvals(status: PENDING) { totalCount edges { node { requestedBy } } } }",
            json!({}),
        )
        .await;
    assert_eq!(pending["data"]["approvals"]["totalCount"], 2, "{pending}");
    assert_eq!(
        pending["data"]["approvals"]["edges"][0]["node"]["requestedBy"],
        "agent"
    );
    let cluster = server.state.approvals.simulated_cluster().unwrap();
    assert!(cluster.with(|c| c.applied().is_empty()));
    // Both comments are on the incident, and its timeline shows the three steps.
    let seen = server
        .graphql(
            Some(&token),
            "query($id: ID!) { incident(id: $id) { comments { author }
               timeline(first: 100) { edges { node { kind actor } } } } }",
            json!({"id": incident}),
        )
        .await;
    let seen = &seen["data"]["incident"];
    assert_eq!(seen["comments"].as_array().unwrap().len(), 2, "{seen}");
    let kinds: Vec<&str> = seen["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    for kind in ["ACKNOWLEDGED", "ASSIGNED", "COMMENTED"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
}
