//! Crashes around execution, on the real binary and both databases:
//! - `kill -9` while an execution runs: after a restart it is never run again, it ends FAILED
//!   once its lease runs out, and its knowledge entry exists;
//! - the process killed right after the execution's transaction commits (a crash point, the
//!   process sends itself SIGKILL there), with knowledge writes awaited and fire-and-forget:
//!   after a restart the execution's knowledge entry exists, written once, from the outbox.

use crate::support;

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use support::{Backend, PASSWORD, Process, ScratchDb, WEBHOOK_SECRET, cli};

on_both_backends!(
    an_execution_killed_mid_run_ends_failed_after_its_lease_once_with_its_entry,
    a_crash_right_after_the_outcome_commits_keeps_the_knowledge_entry,
);

/// `awoooi serve` on the scratch database with `toml` added to the test configuration.
async fn server(scratch: &ScratchDb, toml: &str, envs: &[(&str, &str)]) -> Process {
    let config = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!("[ingest]\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n{toml}\n"),
    )
    .unwrap();
    let dir = scratch.dir.to_str().unwrap();
    Process::spawn(
        &[
            "--database-url",
            &scratch.url,
            "--data-dir",
            dir,
            "--site-root",
            &format!("{dir}/site"),
            "--config",
            config.to_str().unwrap(),
        ],
        envs,
        scratch.dir.join("server.log"),
    )
    .await
}

/// Sam (who proposes) and Alice (who signs), signed in.
async fn people(scratch: &ScratchDb, server: &Process) -> (String, String) {
    for (name, role) in [("sam", "sre"), ("alice", "devops")] {
        let out = cli(
            &scratch.url,
            &["user", "add", name, "--role", role],
            Some(PASSWORD),
        );
        assert!(out.status.success(), "user add: {}", out.stderr);
    }
    (
        server.login("sam", PASSWORD).await,
        server.login("alice", PASSWORD).await,
    )
}

/// An incident, and a proposal of shell action `kind` writing to `marker`: its id.
async fn proposed(server: &Process, sam: &str, kind: &str, marker: &str) -> String {
    let incident = server
        .incident_from_alert(
            sam,
            json!({"name": "JobStuck", "service": "batch", "severity": "warning"}),
        )
        .await;
    let answer = server
        .graphql(
            Some(sam),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id status } }",
            json!({"i": incident, "a": {"kind": kind, "target": "batch", "params": {"path": marker}}}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["proposeAction"]["status"], "PENDING");
    answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Alice's signature; the answer is not awaited for sure (the process may die meanwhile).
async fn sign(server: &Process, alice: &str, id: &str) {
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        server.graphql(
            Some(alice),
            "mutation($id: ID!) { approve(approvalId: $id) { status } }",
            json!({"id": id}),
        ),
    )
    .await;
}

async fn approval(server: &Process, token: &str, id: &str) -> Value {
    let answer = server
        .graphql(
            Some(token),
            "query($id: ID!) { approval(id: $id) { status execution { status output } } }",
            json!({"id": id}),
        )
        .await;
    answer["data"]["approval"].clone()
}

/// The number of lines `marker` holds equal to `line`.
fn lines(marker: &std::path::Path, line: &str) -> usize {
    std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == line)
        .count()
}

/// One number from `sql`.
async fn number(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|_| i64::from(row.try_get_by_index::<i32>(0).unwrap()))
}

/// The knowledge entries written for approval `id`, as (path, outcome).
async fn entries(db: &DatabaseConnection, id: &str) -> Vec<(String, Option<String>)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT path_type, outcome FROM knowledge_entries WHERE related_approval_id = {id} \
             AND path_type <> 'A'"
        ),
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "path_type").unwrap(),
            r.try_get::<Option<String>>("", "outcome").unwrap(),
        )
    })
    .collect()
}

/// [`entries`] once there are any, or empty after 10 s.
async fn entries_within_ten_seconds(
    db: &DatabaseConnection,
    id: &str,
) -> Vec<(String, Option<String>)> {
    for _ in 0..100 {
        let written = entries(db, id).await;
        if !written.is_empty() {
            return written;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Vec::new()
}

async fn an_execution_killed_mid_run_ends_failed_after_its_lease_once_with_its_entry(
    backend: Backend,
) {
    let scratch = ScratchDb::new(backend).await;
    let marker = scratch.dir.join("runs.txt");
    let toml = r#"
[approvals]
execution_lease_seconds = 2
[knowledge]
replay_every_seconds = 1
[[actions.shell]]
name = "slow"
argv = ["/bin/sh", "-c", 'echo started >> "$1"; sleep 8; echo finished >> "$1"', "sh", "{path}"]
timeout_seconds = 60
risk = "MEDIUM"
"#;
    let mut server = server(&scratch, toml, &[]).await;
    let (sam, alice) = people(&scratch, &server).await;
    let id = proposed(&server, &sam, "shell:slow", marker.to_str().unwrap()).await;
    sign(&server, &alice, &id).await;
    for _ in 0..200 {
        if lines(&marker, "started") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines(&marker, "started"), 1, "the action never started");
    assert_eq!(approval(&server, &sam, &id).await["status"], "EXECUTING");
    server.kill9();
    server.restart().await;

    // Its lease (2 s, no longer renewed) runs out; the worker closes it.
    let mut seen = Value::Null;
    for _ in 0..300 {
        seen = approval(&server, &sam, &id).await;
        if seen["status"] != "EXECUTING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen["status"], "FAILED", "{seen}");
    assert_eq!(seen["execution"]["status"], "FAILED", "{seen}");
    assert!(
        seen["execution"]["output"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{seen}"
    );
    let db = Database::connect(&scratch.url).await.unwrap();
    let written = entries_within_ten_seconds(&db, &id).await;
    assert_eq!(
        written,
        [("B_MANUAL".to_owned(), Some("FAILED".to_owned()))],
        "the interrupted execution's knowledge entry"
    );
    // Several worker rounds later it still ran once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lines(&marker, "started"), 1, "the action ran again");
    assert_eq!(
        number(
            &db,
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE subject = 'approval:{id}' \
                 AND action IN ('approval.executing', 'approval.failed')"
            ),
        )
        .await,
        2,
        "one executing and one failed event"
    );
    assert_eq!(
        number(&db, "SELECT COUNT(*) FROM knowledge_outbox").await,
        0
    );
}

async fn a_crash_right_after_the_outcome_commits_keeps_the_knowledge_entry(backend: Backend) {
    for awaited in ["true", "false"] {
        let scratch = ScratchDb::new(backend).await;
        let marker = scratch.dir.join("runs.txt");
        let toml = r#"
[knowledge]
replay_every_seconds = 1
[[actions.shell]]
name = "quick"
argv = ["/bin/sh", "-c", 'echo ran >> "$1"', "sh", "{path}"]
risk = "MEDIUM"
"#;
        let envs = [
            ("AWOOOI_CRASH_AT", "execution.committed"),
            ("AWOOOI_KM_WRITE_AWAIT", awaited),
        ];
        let mut server = server(&scratch, toml, &envs).await;
        let (sam, alice) = people(&scratch, &server).await;
        let id = proposed(&server, &sam, "shell:quick", marker.to_str().unwrap()).await;
        sign(&server, &alice, &id).await;
        assert!(
            server.wait_exit(Duration::from_secs(30)).await,
            "the crash point was never reached"
        );
        assert_eq!(lines(&marker, "ran"), 1);
        let db = Database::connect(&scratch.url).await.unwrap();
        // Killed after the commit, before anything wrote the entry: it waits in the outbox.
        assert!(
            entries(&db, &id).await.is_empty(),
            "written before the crash point"
        );
        assert_eq!(
            number(&db, "SELECT COUNT(*) FROM knowledge_outbox").await,
            1
        );

        server.set_env("AWOOOI_CRASH_AT", None);
        server.restart().await;
        let written = entries_within_ten_seconds(&db, &id).await;
        assert_eq!(
            written,
            [("B_MANUAL".to_owned(), Some("WORKED".to_owned()))],
            "write_await = {awaited}"
        );
        let seen = approval(&server, &sam, &id).await;
        assert_eq!(seen["status"], "EXECUTED", "{seen}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(lines(&marker, "ran"), 1, "the action ran again");
        assert_eq!(entries(&db, &id).await.len(), 1);
        assert_eq!(
            number(&db, "SELECT COUNT(*) FROM knowledge_outbox").await,
            0
        );
    }
}
