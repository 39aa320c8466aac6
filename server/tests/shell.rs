//! The shell executor end to end, on SQLite and PostgreSQL: only allow-listed commands, real
//! values at the action boundary and labels everywhere else, timeouts, clear refusals.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(the_executor_sees_real_values_and_storage_only_labels);

const SECRET_IP: &str = "10.20.30.40";

const SETTLED: &str = "status voidReason action { target params }
    dryRun { passed checks { name detail } } execution { executor status output }";

fn letters() -> String {
    (0..12)
        .map(|_| (b'a' + rand::random::<u8>() % 26) as char)
        .collect()
}

async fn propose(server: &TestServer, token: &str, incident: &str, action: Value) -> Value {
    let answer = server
        .graphql(
            Some(token),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a)
               { id status effectiveRisk action { target params } dryRun { passed checks { name passed detail } } } }",
            json!({"i": incident, "a": action}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["proposeAction"].clone()
}

async fn approve(server: &TestServer, token: &str, id: &str) -> Value {
    server
        .graphql(
            Some(token),
            "mutation($id: ID!) { approve(approvalId: $id) { status } }",
            json!({"id": id}),
        )
        .await
}

async fn the_executor_sees_real_values_and_storage_only_labels(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("awoooi-shell-{}", letters()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = r#"
[[actions.shell]]
name = "record"
argv = ["/bin/sh", "-c", 'touch "$1" && echo "recorded $1"', "sh", "{path}"]
risk = "MEDIUM"
[[actions.shell]]
name = "nap"
argv = ["/bin/sleep", "{seconds}"]
timeout_seconds = 1
risk = "MEDIUM"
"#;
    let server = TestServer::start_configured(backend, &[], toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "HostDown", "service": "edge", "severity": "critical",
                "description": format!("host {SECRET_IP} stopped answering")}),
        )
        .await;

    // The Brain and people speak in labels; a person who types the raw value gets the label.
    let path = format!("{}/seen-[IP_1]", dir.display());
    let proposed = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "shell:record", "target": SECRET_IP, "params": {"path": path}}),
    )
    .await;
    assert_eq!(proposed["action"]["target"], "[IP_1]", "{proposed}");
    assert_eq!(proposed["effectiveRisk"], "MEDIUM");
    assert_eq!(proposed["dryRun"]["passed"], true, "{proposed}");
    assert_eq!(
        proposed["dryRun"]["checks"][0]["detail"],
        format!("runs /bin/sh -c touch \"$1\" && echo \"recorded $1\" sh {path}")
    );
    let id = proposed["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(&server, &alice, &id).await["errors"], Value::Null);
    let done = server.settled_approval(&sam, &id, SETTLED).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(done["execution"]["executor"], "shell");
    assert_eq!(done["execution"]["output"], format!("recorded {path}"));
    // The command itself got the real value.
    assert!(dir.join(format!("seen-{SECRET_IP}")).exists());
    assert!(!dir.join("seen-[IP_1]").exists());

    // A command that outlives its timeout is killed and the approval FAILED.
    let nap = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "shell:nap", "target": "edge", "params": {"seconds": 5}}),
    )
    .await;
    let nap_id = nap["id"].as_str().unwrap().to_owned();
    approve(&server, &alice, &nap_id).await;
    let failed = server.settled_approval(&sam, &nap_id, SETTLED).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["execution"]["output"], "timed out after 1 s; killed");

    // Not on the allow-list: the dry-run says so and nobody can approve it.
    let rm = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "shell:rm", "target": "edge", "params": {"path": "/"}}),
    )
    .await;
    assert_eq!(rm["dryRun"]["passed"], false);
    assert_eq!(
        rm["dryRun"]["checks"][1]["detail"],
        "shell:rm is not on the allow-list ([[actions.shell]])"
    );
    let refused = approve(&server, &alice, rm["id"].as_str().unwrap()).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "CONFLICT",
        "{refused}"
    );

    let stored = server.dump_text_columns().await;
    assert!(stored.contains("[IP_1]"));
    assert!(
        !stored.contains(SECRET_IP),
        "a raw value reached the database"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
