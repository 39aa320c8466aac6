//! Analysis that settles, whatever order the alerts arrive in: a symptom analysed alone is
//! analysed again when its root cause's alert joins, the stale proposal ends SUPERSEDED (seen
//! live by a subscriber, audited, notified), repeats change nothing, runs are bounded, and an
//! interrupted analysis runs again after a restart.

use crate::support;

use std::time::Duration;

use entity::{audit_event, notification_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use support::{Backend, DemoTopology, TestServer, next_data};

on_both_backends!(
    a_subscriber_watches_the_symptoms_proposal_superseded_by_the_root_causes,
    repeats_and_flaps_do_not_start_another_analysis,
    automatic_runs_stop_at_the_limit_and_say_so_once,
    an_interrupted_analysis_runs_again_when_a_replica_starts
);

const APPROVALS: &str = "subscription { approvalUpdates { id status action { kind target }
    supersededBy { id action { kind target } } } }";

async fn alert(server: &TestServer, token: &str, name: &str, service: &str, text: &str) -> String {
    server
        .incident_from_alert(
            token,
            json!({"name": name, "service": service, "severity": "critical", "description": text}),
        )
        .await
}

/// The incident's thinking lines.
async fn thinking(server: &TestServer, token: &str, id: &str) -> Vec<String> {
    let answer = server
        .graphql(
            Some(token),
            "query($id: ID!) { incident(id: $id) { thinking { text } } }",
            json!({"id": id}),
        )
        .await;
    answer["data"]["incident"]["thinking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the incident's thinking holds a line containing `start`.
async fn said(server: &TestServer, token: &str, id: &str, start: &str) -> Vec<String> {
    for _ in 0..400 {
        let lines = thinking(server, token, id).await;
        if lines.iter().any(|l| l.contains(start)) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "incident {id} never said {start:?}: {:#?}",
        thinking(server, token, id).await
    );
}

/// Waits until the incident is AWAITING_APPROVAL (its analysis over).
async fn awaits_approval(server: &TestServer, token: &str, id: &str) {
    for _ in 0..400 {
        let answer = server
            .graphql(
                Some(token),
                "query($id: ID!) { incident(id: $id) { status } }",
                json!({"id": id}),
            )
            .await;
        if answer["data"]["incident"]["status"] == "AWAITING_APPROVAL" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("incident {id} never came to AWAITING_APPROVAL");
}

async fn a_subscriber_watches_the_symptoms_proposal_superseded_by_the_root_causes(
    backend: Backend,
) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("sam", "sre").await;
    let mut updates = server.subscribe(&token, APPROVALS).await;
    // The symptom first, analysed alone: its own playbook (MEDIUM: it waits for a person).
    let id = alert(
        &server,
        &token,
        "FrontendOOMKilled",
        "frontend",
        "container OOMKilled",
    )
    .await;
    let first = loop {
        let data = next_data(&mut updates, Duration::from_secs(20))
            .await
            .expect("the symptom's proposal is published");
        let approval = &data["approvalUpdates"];
        if approval["status"] == "PENDING" {
            break approval.clone();
        }
    };
    assert_eq!(
        first["action"],
        json!({"kind": "scale_deployment", "target": "frontend"})
    );
    // The root cause's alert joins: the analysis runs again on it.
    let joined = alert(
        &server,
        &token,
        "ConnectionsExhausted",
        "postgres-db",
        "FATAL: sorry, too many clients already",
    )
    .await;
    assert_eq!(joined, id);
    let (mut replacement, mut superseded) = (None, None);
    while replacement.is_none() || superseded.is_none() {
        let data = next_data(&mut updates, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no supersede seen: {replacement:?} {superseded:?}"));
        let approval = data["approvalUpdates"].clone();
        match approval["status"].as_str() {
            Some("PENDING") if approval["id"] != first["id"] => {
                assert!(superseded.is_none(), "the replacement is proposed first");
                replacement = Some(approval);
            }
            Some("SUPERSEDED") => superseded = Some(approval),
            _ => {}
        }
    }
    let (replacement, superseded) = (replacement.unwrap(), superseded.unwrap());
    assert_eq!(
        replacement["action"],
        json!({"kind": "restart_deployment", "target": "postgres-db"})
    );
    assert_eq!(superseded["id"], first["id"]);
    assert_eq!(superseded["supersededBy"]["id"], replacement["id"]);

    // Terminal: nobody can sign it any more.
    let signed = server
        .graphql(
            Some(&token),
            "mutation($id: ID!) { approve(approvalId: $id) { status } }",
            json!({"id": first["id"]}),
        )
        .await;
    assert_eq!(
        signed["errors"][0]["extensions"]["code"], "CONFLICT",
        "{signed}"
    );
    // Once the run is over: one pending proposal, aimed at the root cause; the analysis,
    // the incident and the summary agree on it.
    awaits_approval(&server, &token, &id).await;
    let incident = server
        .graphql(
            Some(&token),
            "query($id: ID!) { incident(id: $id) { service status approvals { id status }
               analysis { summary rootCauses { service } proposal { rootCause } } } }",
            json!({"id": id}),
        )
        .await["data"]["incident"]
        .clone();
    assert_eq!(incident["service"], "postgres-db");
    assert_eq!(
        incident["analysis"]["rootCauses"][0]["service"],
        "postgres-db"
    );
    assert_eq!(incident["analysis"]["proposal"]["rootCause"], "postgres-db");
    assert!(
        incident["analysis"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("postgres-db is the likeliest root cause"),
        "{incident}"
    );
    let pending: Vec<&Value> = incident["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "PENDING")
        .collect();
    assert_eq!(pending.len(), 1, "{incident}");
    assert_eq!(pending[0]["id"], replacement["id"]);
    let lines = said(&server, &token, &id, "Superseded the earlier proposal").await;
    assert!(
        lines.iter().any(|l| l
            .starts_with("Analysing again: the root cause changed from frontend to postgres-db")),
        "{lines:#?}"
    );

    // Audited and told to the channels, naming the replacement.
    let old: i32 = first["id"].as_str().unwrap().parse().unwrap();
    let audited = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("approval.superseded"))
        .filter(audit_event::Column::Subject.eq(format!("approval:{old}")))
        .one(&server.state.db)
        .await
        .unwrap()
        .expect("the supersede is audited");
    let details: Value = serde_json::from_str(&audited.details).unwrap();
    assert_eq!(
        details["superseded_by"].to_string(),
        replacement["id"].as_str().unwrap()
    );
    let told = notification_event::Entity::find()
        .filter(notification_event::Column::Kind.eq("APPROVAL_SUPERSEDED"))
        .filter(notification_event::Column::ApprovalId.eq(old))
        .one(&server.state.db)
        .await
        .unwrap()
        .expect("the supersede is notified");
    let payload: Value = serde_json::from_str(&told.payload).unwrap();
    assert_eq!(
        payload["approval"]["superseded_by"].to_string(),
        replacement["id"].as_str().unwrap()
    );
}

async fn repeats_and_flaps_do_not_start_another_analysis(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("sam", "sre").await;
    let id = alert(
        &server,
        &token,
        "FrontendOOMKilled",
        "frontend",
        "OOMKilled",
    )
    .await;
    let before = said(&server, &token, &id, "First analysis").await;
    said(&server, &token, &id, "Proposed: scale_deployment frontend").await;
    // The same alert again, twice; resolved and firing again (a flap).
    for status in ["firing", "firing", "resolved", "firing"] {
        let body = json!({"name": "FrontendOOMKilled", "service": "frontend",
            "severity": "critical", "description": "OOMKilled", "status": status});
        assert_eq!(server.incident_from_alert(&token, body).await, id);
    }
    // Well past the quiet period (0.2 s here).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = thinking(&server, &token, &id).await;
    let runs = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.starts_with("First analysis") || l.starts_with("Analysing again"))
            .count()
    };
    assert_eq!(runs(&before), 1);
    assert_eq!(runs(&after), 1, "{after:#?}");
}

async fn automatic_runs_stop_at_the_limit_and_say_so_once(backend: Backend) {
    let topology = DemoTopology::new();
    let server =
        TestServer::start_configured(backend, &topology.args(), "[brain]\nmax_runs = 2\n").await;
    let token = server.signed_in("sam", "sre").await;
    // Down a chain of dependencies, each alert a new root cause of the same incident,
    // each after the quiet period.
    let id = alert(&server, &token, "HighErrorRate", "frontend", "5xx").await;
    for service in ["order-api", "postgres-db"] {
        said(&server, &token, &id, "Proposed").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            alert(&server, &token, "HighErrorRate", service, "5xx").await,
            id
        );
    }
    let limit = "The incident changed again, but it was analysed 2 times automatically";
    said(&server, &token, &id, limit).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let lines = thinking(&server, &token, &id).await;
    assert_eq!(
        lines.iter().filter(|l| l.starts_with(limit)).count(),
        1,
        "{lines:#?}"
    );
    // A person may still ask.
    let asked = server
        .graphql(
            Some(&token),
            "mutation($id: ID!) { analyzeIncident(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(asked["errors"], Value::Null, "{asked}");
    said(&server, &token, &id, "Analysis requested by sam.").await;
}

async fn an_interrupted_analysis_runs_again_when_a_replica_starts(backend: Backend) {
    use entity::incident;
    use sea_orm::{ActiveModelTrait, Set};
    // The second replica reads the same topology file: it stays until the end.
    let topology = DemoTopology::new();
    let server = TestServer::start_with(backend, &topology.args()).await;
    let token = server.signed_in("sam", "sre").await;
    let id = alert(
        &server,
        &token,
        "FrontendOOMKilled",
        "frontend",
        "OOMKilled",
    )
    .await;
    said(&server, &token, &id, "Proposed: scale_deployment frontend").await;
    awaits_approval(&server, &token, &id).await;
    // A replica died mid-analysis an hour ago: the incident is still claimed.
    let row = incident::Entity::find_by_id(id.parse::<i32>().unwrap())
        .one(&server.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut stuck: incident::ActiveModel = row.into();
    stuck.status = Set(engine::incident::IncidentStatus::Analyzing);
    stuck.updated_at = Set(chrono::Utc::now() - chrono::Duration::hours(1));
    stuck.update(&server.state.db).await.unwrap();
    let _second = server.second_replica().await;
    said(
        &server,
        &token,
        &id,
        "Analysing again: the last analysis was interrupted.",
    )
    .await;
    awaits_approval(&server, &token, &id).await;
}
