//! Two replicas on one PostgreSQL database, 200 HIGH approvals, each hammered at once by four
//! signers and three explicit execute calls (plus the executions the last signature starts)
//! spread over both replicas: every approval executes exactly once and keeps exactly the two
//! signatures its risk needs.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use engine::Role;
use engine::policy::{ActionRequest, Decision};
use entity::{approval, approval_signature, execution};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use server::services::approvals::{ApprovalError, Approvals, NewApproval};
use support::{Backend, TestServer};
use tokio::task::JoinSet;

const APPROVALS: usize = 200;
/// Approvals hammered at the same moment (all of their calls in flight together).
const WAVE: usize = 25;

fn topology_yaml() -> String {
    let mut yaml = String::from("services:\n");
    for i in 0..APPROVALS {
        yaml.push_str(&format!(
            "  - name: svc-{i:03}\n    kind: SERVICE\n    namespace: race\n"
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_execute_each_approval_exactly_once() {
    let path = std::env::temp_dir().join(format!("awoooi-race-{}.yaml", rand::random::<u64>()));
    std::fs::write(&path, topology_yaml()).unwrap();
    let a =
        TestServer::start_with(Backend::Postgres, &["--topology", path.to_str().unwrap()]).await;
    let b = a.second_replica().await;
    std::fs::remove_file(&path).unwrap();
    let replicas: [Approvals; 2] = [a.state.approvals.clone(), b.approvals.clone()];

    let token = a.signed_in("sam", "sre").await;
    let body = json!({"name": "Everything slow", "service": "elsewhere", "severity": "warning"});
    let response = a
        .post_json(
            "/api/v1/alerts/webhook",
            Some(&token),
            &[],
            body.to_string(),
        )
        .await;
    assert_eq!(response.status(), 202);
    let incident: i32 = response.json::<Value>().await.unwrap()["incidents"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut ids = Vec::new();
    for i in 0..APPROVALS {
        let proposed = replicas[i % 2]
            .propose(NewApproval {
                incident_id: incident,
                request: ActionRequest {
                    kind: "rollback_deployment".into(),
                    target: format!("svc-{i:03}"),
                    namespace: None,
                    params: json!({}),
                    labels: Default::default(),
                    requested_by: "sam".into(),
                },
                rationale: "race".into(),
                finops: None,
            })
            .await
            .unwrap();
        assert_eq!(proposed.row.effective_risk, engine::policy::RiskLevel::High);
        assert_eq!(proposed.row.status, engine::policy::ApprovalStatus::Pending);
        ids.push(proposed.row.id);
    }

    let signers = [
        ("alice", Role::Devops),
        ("bob", Role::Sre),
        ("root", Role::Admin),
        ("sre2", Role::Sre),
    ];
    let mut signed = 0;
    let mut refused = BTreeMap::<String, usize>::new();
    for wave in ids.chunks(WAVE) {
        let mut calls = JoinSet::new();
        for &id in wave {
            for (k, (name, role)) in signers.into_iter().enumerate() {
                let replica = replicas[(k + id as usize) % 2].clone();
                calls.spawn(async move {
                    let result = replica.sign(id, name, role, Decision::Approve, None).await;
                    (true, result.map(|_| ()))
                });
            }
            for k in 0..3 {
                let replica = replicas[k % 2].clone();
                calls.spawn(async move { (false, replica.execute(id).await.map(|_| ())) });
            }
        }
        while let Some(joined) = calls.join_next().await {
            match joined.unwrap() {
                (true, Ok(())) => signed += 1,
                (_, Ok(())) => {}
                (_, Err(ApprovalError::Conflict(why))) => {
                    let kind = why.split(" is ").next().unwrap_or(&why).to_owned();
                    *refused.entry(kind).or_default() += 1;
                }
                (_, Err(other)) => panic!("only conflicts may refuse a racing call: {other}"),
            }
        }
    }
    assert_eq!(signed, 2 * APPROVALS, "refusals: {refused:?}");

    // Executions the last signatures started may still be finishing.
    let db = &a.state.db;
    for _ in 0..600 {
        let busy = approval::Entity::find()
            .filter(approval::Column::Status.is_in(["APPROVED", "EXECUTING"]))
            .count(db)
            .await
            .unwrap();
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut applied = BTreeMap::<i64, usize>::new();
    for replica in &replicas {
        replica.simulated_cluster().unwrap().with(|cluster| {
            for done in cluster.applied() {
                *applied.entry(done.approval).or_default() += 1;
            }
        });
    }
    for &id in &ids {
        let row = approval::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.status,
            engine::policy::ApprovalStatus::Executed,
            "approval {id}: {row:?}"
        );
        let signatures = approval_signature::Entity::find()
            .filter(approval_signature::Column::ApprovalId.eq(id))
            .count(db)
            .await
            .unwrap();
        assert_eq!(signatures, 2, "approval {id} signatures");
        let executions = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(id))
            .count(db)
            .await
            .unwrap();
        assert_eq!(executions, 1, "approval {id} execution rows");
        assert_eq!(
            applied.get(&i64::from(id)),
            Some(&1),
            "approval {id} applied"
        );
    }
    assert_eq!(applied.values().sum::<usize>(), APPROVALS);
    let verified = server::base::audit::verify_all(db).await.unwrap();
    assert!(verified.valid, "{verified:?}");
    let executed = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("approval.executed"))
        .count(db)
        .await
        .unwrap();
    assert_eq!(executed as usize, APPROVALS);
}
