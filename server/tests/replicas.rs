//! Two `awoooi serve` processes on one PostgreSQL database and one Redis, the event bus on
//! Redis pub/sub: an alert posted to replica A opens an incident that replica B's subscribers
//! see, B's thinking subscription receives the lines A's Brain writes, and approvals signed on A
//! and B at the same moment execute exactly once.

use crate::support;

use std::time::Duration;

use entity::{approval, audit_event, execution};
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use support::{Backend, PASSWORD, Process, ScratchDb, cli, next_data};

const APPROVALS: usize = 12;

fn redis_url() -> String {
    std::env::var("AWOOOI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The next `next` payload on `ws`, or `None` after `wait` of silence.
async fn replica(scratch: &ScratchDb, name: &str, config: &str, key: &str) -> Process {
    let dir = scratch.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.to_str().unwrap().to_owned();
    Process::spawn(
        &[
            "--database-url",
            &scratch.url,
            "--data-dir",
            &dir,
            "--site-root",
            &format!("{dir}/site"),
            "--config",
            config,
        ],
        &[("AWOOOI_VAULT_KEY", key)],
        scratch.dir.join(format!("{name}.log")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_events_and_execute_each_approval_once() {
    let scratch = ScratchDb::new(Backend::Postgres).await;
    let mut topology = String::from("services:\n");
    for i in 0..APPROVALS {
        topology.push_str(&format!(
            "  - name: svc-{i:03}\n    kind: SERVICE\n    namespace: race\n"
        ));
    }
    let topology_file = scratch.dir.join("topology.yaml");
    std::fs::write(&topology_file, topology).unwrap();
    let config = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!(
            "redis_url = \"{}\"\ntopology = \"{}\"\n[bus]\nbackend = \"redis\"\nchannel = \"awoooi:test:{:016x}\"\n",
            redis_url(),
            topology_file.display(),
            rand::random::<u64>(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let key = hex::encode(rand::random::<[u8; 32]>());
    // Started together on an empty database: they take turns to migrate it.
    let (a, b) = tokio::join!(
        replica(&scratch, "a", config, &key),
        replica(&scratch, "b", config, &key)
    );

    for (name, role) in [("sam", "sre"), ("alice", "devops"), ("bob", "sre")] {
        let out = cli(
            &scratch.url,
            &["user", "add", name, "--role", role],
            Some(PASSWORD),
        );
        assert!(out.status.success(), "user add: {}", out.stderr);
    }
    let sam = a.login("sam", PASSWORD).await;
    let alice = a.login("alice", PASSWORD).await;
    let bob = b.login("bob", PASSWORD).await;

    // B listens; A takes the alert.
    let mut incidents = b
        .subscribe(&bob, "subscription { incidentUpdates { id } }")
        .await;
    let mut approvals = b
        .subscribe(&bob, "subscription { approvalUpdates { id status } }")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // both subscriptions registered
    let incident = a
        .incident_from_alert(
            &sam,
            json!({"name": "Latency high", "service": "svc-000", "severity": "warning"}),
        )
        .await;
    let seen = next_data(&mut incidents, Duration::from_secs(20))
        .await
        .expect("replica B heard nothing of the incident opened on A");
    assert_eq!(seen["incidentUpdates"]["id"], incident.as_str());

    // Wait for A's automatic analysis, then subscribe to the thinking stream on B: it replays
    // what was said, and a re-analysis on A must reach it live.
    let mut status = String::new();
    for _ in 0..400 {
        let answer = a
            .graphql(
                Some(&sam),
                "query($id: ID!) { incident(id: $id) { status } }",
                json!({"id": incident}),
            )
            .await;
        status = answer["data"]["incident"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "AWAITING_APPROVAL" || status == "OPEN" && analysed(&a, &sam, &incident).await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        status == "AWAITING_APPROVAL" || status == "OPEN",
        "analysis did not finish: {status}"
    );
    let mut thinking = b
        .subscribe(
            &bob,
            &format!("subscription {{ thinking(incidentId: \"{incident}\") {{ seq kind }} }}"),
        )
        .await;
    let mut last = 0;
    while let Some(data) = next_data(&mut thinking, Duration::from_millis(1500)).await {
        let seq = data["thinking"]["seq"].as_i64().unwrap();
        assert_eq!(seq, last + 1, "replayed in order, without gaps");
        last = seq;
    }
    assert!(last > 0, "the first analysis said nothing");
    let rerun = a
        .graphql(
            Some(&sam),
            "mutation($id: ID!) { analyzeIncident(id: $id) { id } }",
            json!({"id": incident}),
        )
        .await;
    assert_eq!(rerun["errors"], Value::Null, "{rerun}");
    let live = next_data(&mut thinking, Duration::from_secs(20))
        .await
        .expect("replica B's thinking subscription heard nothing of A's re-analysis");
    assert_eq!(live["thinking"]["seq"].as_i64().unwrap(), last + 1);

    // Approvals proposed on A; each signed by alice on A and bob on B at the same moment.
    let mut ids = Vec::new();
    for i in 0..APPROVALS {
        let proposed = a
            .graphql(
                Some(&sam),
                "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id status requiredSignatures } }",
                json!({"i": incident, "a": {"kind": "rollback_deployment", "target": format!("svc-{i:03}")}}),
            )
            .await;
        assert_eq!(proposed["errors"], Value::Null, "{proposed}");
        let approval = &proposed["data"]["proposeAction"];
        assert_eq!(approval["status"], "PENDING", "{approval}");
        assert_eq!(approval["requiredSignatures"], 2, "{approval}");
        ids.push(approval["id"].as_str().unwrap().to_owned());
    }
    let sign = "mutation($id: ID!) { approve(approvalId: $id) { status } }";
    let calls = ids.iter().flat_map(|id| {
        [
            a.graphql(Some(&alice), sign, json!({"id": id})),
            b.graphql(Some(&bob), sign, json!({"id": id})),
        ]
    });
    for answer in futures_util::future::join_all(calls).await {
        assert_eq!(answer["errors"], Value::Null, "{answer}");
    }

    // B's subscribers heard of every approval A proposed, and of its end.
    let mut executed_seen = std::collections::BTreeSet::new();
    let mut proposed_seen = std::collections::BTreeSet::new();
    while executed_seen.len() < APPROVALS {
        let Some(data) = next_data(&mut approvals, Duration::from_secs(30)).await else {
            panic!("replica B heard of {executed_seen:?} executed only");
        };
        let id = data["approvalUpdates"]["id"].as_str().unwrap().to_owned();
        if !ids.contains(&id) {
            continue; // the Brain's own proposals
        }
        proposed_seen.insert(id.clone());
        match data["approvalUpdates"]["status"].as_str() {
            Some("EXECUTED") => {
                executed_seen.insert(id);
            }
            Some("FAILED" | "VOIDED" | "REJECTED") => {
                panic!("approval {id} did not execute: {data}")
            }
            _ => {}
        }
    }
    assert!(ids.iter().all(|id| proposed_seen.contains(id)));

    let db = Database::connect(&scratch.url).await.unwrap();
    for id in &ids {
        let id: i32 = id.parse().unwrap();
        let row = approval::Entity::find_by_id(id)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.status,
            engine::policy::ApprovalStatus::Executed,
            "approval {id}"
        );
        let executions = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(id))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(executions, 1, "approval {id} execution rows");
        let executed = audit_event::Entity::find()
            .filter(audit_event::Column::Action.eq("approval.executed"))
            .filter(audit_event::Column::Subject.eq(format!("approval:{id}")))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(executed, 1, "approval {id} audited executions");
    }
    let verified = server::base::audit::verify_all(&db).await.unwrap();
    assert!(verified.valid, "{verified:?}");
}

async fn analysed(server: &Process, token: &str, incident: &str) -> bool {
    let answer = server
        .graphql(
            Some(token),
            "query($id: ID!) { incident(id: $id) { analysis { summary } } }",
            json!({"id": incident}),
        )
        .await;
    answer["data"]["incident"]["analysis"].is_object()
}

/// Two replicas on one PostgreSQL database: the scheduled FinOps scan each runs at start-up
/// and on its timer is claimed in the database, so one report is written per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_claim_the_scheduled_finops_scan_once_per_interval() {
    use entity::finops_report;
    use sea_orm::ModelTrait;
    let a = support::TestServer::start(Backend::Postgres).await;
    let b = a.second_replica().await;
    let finops = [&a.state, &b].map(|s| {
        server::services::finops::Finops::new(
            s.db.clone(),
            s.approvals.clone(),
            s.config.finops.clone(),
        )
    });
    let db = &a.state.db;
    let every = chrono::Duration::minutes(60);
    let count = || async {
        finops_report::Entity::find()
            .filter(finops_report::Column::Trigger.eq("SCHEDULE"))
            .count(db)
            .await
            .unwrap()
    };
    // Both replicas' start-up scans (and six more attempts) make one report.
    let attempts = (0..6).map(|k| finops[k % 2].scheduled_scan(every));
    let scanned: Vec<bool> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for _ in 0..100 {
        if count().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count().await, 1, "attempts: {scanned:?}");

    // The interval over (the report removed): racing replicas scan once between them.
    for report in finops_report::Entity::find().all(db).await.unwrap() {
        report.delete(db).await.unwrap();
    }
    let attempts = (0..6).map(|k| finops[k % 2].scheduled_scan(every));
    let scanned: Vec<bool> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(scanned.iter().filter(|s| **s).count(), 1, "{scanned:?}");
    assert_eq!(count().await, 1);
}

/// Two replicas taking alerts for the same services at the same moment: each service still
/// has one open incident (ingest flushes take turns on PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ingesting_one_service_at_once_open_one_incident() {
    use entity::incident;
    let a = support::TestServer::start(Backend::Postgres).await;
    let b = a.second_replica().await;
    let replicas = [a.state.ingest.clone(), b.ingest.clone()];
    let mut calls = Vec::new();
    for round in 0..10 {
        for service in 0..8 {
            let ingest = replicas[(round + service) % 2].clone();
            let labels = [
                ("alertname".to_owned(), format!("Errors {round}")),
                ("service".to_owned(), format!("race-{service}")),
            ]
            .into_iter()
            .collect();
            let event = engine::alert::AlertEvent::from_labels(
                engine::alert::AlertSource::Webhook,
                engine::alert::AlertStatus::Firing,
                labels,
                Default::default(),
                None,
            );
            calls.push(async move { ingest.submit(vec![event]).await.unwrap() });
        }
    }
    futures_util::future::join_all(calls).await;
    let open = incident::Entity::find()
        .filter(incident::Column::Status.ne("RESOLVED"))
        .all(&a.state.db)
        .await
        .unwrap();
    let mut per_service = std::collections::BTreeMap::<String, usize>::new();
    for row in &open {
        *per_service.entry(row.correlation_key.clone()).or_default() += 1;
    }
    assert_eq!(per_service.len(), 8, "{per_service:?}");
    assert!(
        per_service.values().all(|n| *n == 1),
        "one open incident per service: {per_service:?}"
    );
}

/// Two processes on one PostgreSQL database with the bus on Redis, each keeping list answers
/// for ten minutes: a change made on A (a new incident, an acknowledgement) reaches B's next
/// answers through the bus, without waiting for B's kept answer to age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_answer_kept_on_one_replica_gives_way_to_a_change_on_the_other() {
    let scratch = ScratchDb::new(Backend::Postgres).await;
    let config = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!(
            "redis_url = \"{}\"\n[bus]\nbackend = \"redis\"\nchannel = \"awoooi:test:{:016x}\"\n\
             [graphql]\nread_cache_ms = 600000\n",
            redis_url(),
            rand::random::<u64>(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let key = hex::encode(rand::random::<[u8; 32]>());
    let a = replica(&scratch, "a", config, &key).await;
    let b = replica(&scratch, "b", config, &key).await;
    let out = cli(
        &scratch.url,
        &["user", "add", "sam", "--role", "sre"],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "user add: {}", out.stderr);
    let on_a = a.login("sam", PASSWORD).await;
    let on_b = b.login("sam", PASSWORD).await;
    let list = "{ incidents(first: 20) { totalCount edges { node { id acknowledgedBy } } } }";
    // B's answer is kept as of "no incident", and read again until A's change has arrived.
    let until = |want: fn(&Value) -> bool| {
        let b = &b;
        let on_b = on_b.clone();
        async move {
            let mut last = Value::Null;
            for _ in 0..200 {
                last = b.graphql(Some(&on_b), list, json!({})).await;
                if want(&last["data"]["incidents"]) {
                    return last;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("replica B never showed A's change: {last}");
        }
    };
    let empty = b.graphql(Some(&on_b), list, json!({})).await;
    assert_eq!(empty["data"]["incidents"]["totalCount"], 0, "{empty}");

    let incident = a
        .incident_from_alert(
            &on_a,
            json!({"name": "Latency high", "service": "svc-000", "severity": "warning"}),
        )
        .await;
    let opened = until(|list| list["totalCount"] == 1).await;
    assert_eq!(
        opened["data"]["incidents"]["edges"][0]["node"]["id"],
        incident.as_str()
    );

    let acked = a
        .graphql(
            Some(&on_a),
            "mutation($id: ID!) { acknowledgeIncident(incidentId: $id) { id } }",
            json!({"id": incident}),
        )
        .await;
    assert_eq!(acked["errors"], Value::Null, "{acked}");
    until(|list| list["edges"][0]["node"]["acknowledgedBy"] == "sam").await;
}
