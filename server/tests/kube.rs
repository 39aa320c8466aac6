//! The Kubernetes backend against a local API server speaking Kubernetes' JSON
//! (`kube_api/`, objects from `fixtures/kube/cluster.json`): server-side dry-run, RBAC through
//! SelfSubjectAccessReview, budgets, drain through the Eviction API, and every action — then
//! once end to end through approvals, on SQLite and PostgreSQL.

use crate::kube_api;
use crate::support;

use std::time::Duration;

use engine::dryrun::{CheckName, DryRunReport};
use engine::policy::ActionRequest;
use kube_api::{FakeKube, Tls};
use serde_json::{Value, json};
use server::executors::kube::{KubeCluster, KubeConfig};
use server::services::approvals::{Blast, ExecError, Executor};
use support::{Backend, TestServer};

const WEB: &str = "/apis/apps/v1/namespaces/prod/deployments/web";

/// The bearer token the stand-in requires when a test asks it to.
const TOKEN: &str = "standin-token-7f3a9c";

/// A fresh directory for certificates and kubeconfigs.
fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("awoooi-kube-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn connect_with(kubeconfig: std::path::PathBuf, drain_timeout: u64) -> KubeCluster {
    connect_as(
        KubeConfig {
            kubeconfig: Some(kubeconfig),
            ..KubeConfig::default()
        },
        drain_timeout,
    )
    .await
}

fn blast(radius: usize, limit: usize) -> Blast {
    Blast { radius, limit }
}

async fn cluster(fake: &FakeKube) -> KubeCluster {
    let url = fake.serve().await;
    connect(&url, 1).await
}

async fn connect(url: &str, drain_timeout: u64) -> KubeCluster {
    connect_as(
        KubeConfig {
            url: Some(url.to_owned()),
            ..KubeConfig::default()
        },
        drain_timeout,
    )
    .await
}

/// `config` with the tests' timeouts: 5 s per call, drains retried every 200 ms.
async fn connect_as(config: KubeConfig, drain_timeout: u64) -> KubeCluster {
    KubeCluster::connect(&KubeConfig {
        drain_timeout_seconds: drain_timeout,
        request_timeout_seconds: 5,
        ..config
    })
    .await
    .unwrap()
    .with_retry_every(Duration::from_millis(200))
}

fn request(kind: &str, target: &str, params: Value) -> ActionRequest {
    ActionRequest {
        kind: kind.into(),
        target: target.into(),
        namespace: Some("prod".into()),
        params,
        labels: Default::default(),
        requested_by: "sam".into(),
    }
}

/// The executor's real run after its re-check, as the approvals service does it.
async fn run(
    kube: &KubeCluster,
    approval: i64,
    request: &ActionRequest,
) -> Result<String, ExecError> {
    let seen = kube.dry_run(request, blast(0, 10)).await;
    kube.execute(approval, request, &seen).await
}

fn check(report: &DryRunReport, name: CheckName) -> (bool, String) {
    let c = report.checks.iter().find(|c| c.name == name).unwrap();
    (c.passed, c.detail.clone())
}

/// Requests that would have changed something (not dry-runs, not reads).
fn writes(fake: &FakeKube) -> Vec<kube_api::Recorded> {
    fake.recorded()
        .into_iter()
        .filter(|r| {
            r.method != "GET" && !r.dry_run() && !r.path.ends_with("selfsubjectaccessreviews")
        })
        .collect()
}

#[tokio::test]
async fn a_restart_is_dry_run_on_the_api_server_then_applied() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let restart = request("restart_deployment", "web", json!({}));
    let report = kube.dry_run(&restart.clone(), blast(1, 10)).await;
    assert!(report.passed, "{report:?}");
    let (_, syntax) = check(&report, CheckName::Syntax);
    assert!(
        syntax.contains("the API server's dry-run accepted it: deployments/web restarted"),
        "{syntax}"
    );
    let (_, exists) = check(&report, CheckName::ResourceExists);
    assert_eq!(exists, "deployments/web exists (version 1001)");
    let (_, pdb) = check(&report, CheckName::Pdb);
    assert_eq!(pdb, "removes no ready replica");
    // The dry-run sent the patch with dryRun=All and changed nothing.
    let patch = fake
        .recorded()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path == WEB)
        .unwrap();
    assert!(patch.dry_run(), "{patch:?}");
    assert!(writes(&fake).is_empty());
    assert_eq!(
        fake.object(WEB).unwrap()["metadata"]["resourceVersion"],
        "1001"
    );
    // The access review asked for exactly this verb on this object.
    let review = fake
        .recorded()
        .into_iter()
        .find(|r| r.path.ends_with("selfsubjectaccessreviews"))
        .unwrap();
    assert_eq!(
        review.body["spec"]["resourceAttributes"],
        json!({"namespace": "prod", "verb": "patch", "group": "apps",
               "resource": "deployments", "name": "web"})
    );

    let said = run(&kube, 1, &restart).await.unwrap();
    assert!(
        said.starts_with("deployments/web restarted (rollout restart at 20"),
        "{said}"
    );
    let web = fake.object(WEB).unwrap();
    assert!(
        web["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{web}"
    );
    assert_ne!(web["metadata"]["resourceVersion"], "1001");
}

#[tokio::test]
async fn rbac_denied_by_the_access_review_fails_the_check_and_nothing_is_deleted() {
    let fake = FakeKube::from_fixture();
    fake.deny("delete", "persistentvolumeclaims");
    let kube = cluster(&fake).await;
    let report = kube
        .dry_run(
            &request("delete_pvc", "data-old-backup", json!({})),
            blast(0, 10),
        )
        .await;
    assert!(!report.passed);
    assert_eq!(
        check(&report, CheckName::Rbac),
        (
            false,
            "system:serviceaccount:awoooi:executor may not delete persistentvolumeclaims in prod"
                .to_owned()
        )
    );
    assert!(check(&report, CheckName::ResourceExists).0);
    assert!(writes(&fake).is_empty());
    assert!(
        fake.object("/api/v1/namespaces/prod/persistentvolumeclaims/data-old-backup")
            .is_some()
    );
    // Allowed, the same request passes and deletes for real when executed.
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let delete = request("delete_pvc", "data-old-backup", json!({}));
    assert!(kube.dry_run(&delete.clone(), blast(0, 10)).await.passed);
    assert_eq!(
        run(&kube, 2, &delete).await.unwrap(),
        "persistentvolumeclaims/data-old-backup deleted"
    );
    assert!(
        fake.object("/api/v1/namespaces/prod/persistentvolumeclaims/data-old-backup")
            .is_none()
    );
}

#[tokio::test]
async fn a_drain_goes_through_the_eviction_api_and_disruption_budgets_hold() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;

    // node-b runs the only db pod, whose budget allows no disruption.
    let report = kube
        .dry_run(&request("drain_node", "node-b", json!({})), blast(0, 10))
        .await;
    assert_eq!(
        check(&report, CheckName::Pdb),
        (
            false,
            "evicting 1 pod(s) covered by prod/db-pdb exceeds the 0 disruption(s) it allows (1 healthy, needs 1)"
                .to_owned()
        )
    );

    // node-a: one web pod (its budget allows one) and a DaemonSet pod, which drains skip.
    let drain_a = request("drain_node", "node-a", json!({}));
    let report = kube.dry_run(&drain_a.clone(), blast(0, 10)).await;
    assert!(report.passed, "{report:?}");
    assert!(
        check(&report, CheckName::Syntax)
            .1
            .contains("nodes/node-a cordoned")
    );
    let said = run(&kube, 3, &drain_a).await.unwrap();
    assert_eq!(
        said,
        "nodes/node-a cordoned and drained through the Eviction API: 1 pod(s) evicted (pods/web-6d4cf56db6-a1b2c)"
    );
    let node = fake.object("/api/v1/nodes/node-a").unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    let evictions: Vec<_> = writes(&fake)
        .into_iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .collect();
    assert_eq!(evictions.len(), 1);
    assert_eq!(
        evictions[0].path,
        "/api/v1/namespaces/prod/pods/web-6d4cf56db6-a1b2c/eviction"
    );
    assert_eq!(
        evictions[0].body["metadata"]["name"],
        "web-6d4cf56db6-a1b2c"
    );
    assert!(
        !writes(&fake).iter().any(|r| r.method == "DELETE"),
        "pods leave by eviction, never by DELETE"
    );
    assert!(
        fake.object("/api/v1/namespaces/prod/pods/node-exporter-9qz7p")
            .is_some()
    );
    let budget = fake
        .object("/apis/policy/v1/namespaces/prod/poddisruptionbudgets/web-pdb")
        .unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 0);

    // The budget is spent now: the dry-run of node-c says so, and an execution that goes
    // ahead anyway (approved before) is refused by the Eviction API, retried, and stops.
    let drain_c = request("drain_node", "node-c", json!({}));
    let report = kube.dry_run(&drain_c.clone(), blast(0, 10)).await;
    assert!(!check(&report, CheckName::Pdb).0, "{report:?}");
    let refused = run(&kube, 4, &drain_c).await.unwrap_err();
    assert!(
        refused.to_string().starts_with(
            "nodes/node-c cordoned; eviction of pods/web-6d4cf56db6-g5h6i in prod refused by its disruption budget for 1 s: Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "{refused}"
    );
    assert!(
        fake.object("/api/v1/namespaces/prod/pods/web-6d4cf56db6-g5h6i")
            .is_some()
    );
    let attempts = fake
        .recorded()
        .iter()
        .filter(|r| r.path.ends_with("web-6d4cf56db6-g5h6i/eviction"))
        .count();
    assert!(
        attempts >= 2,
        "a refused eviction is retried ({attempts} attempt(s))"
    );
}

#[tokio::test]
async fn an_admission_refusal_of_the_dry_run_fails_the_syntax_check() {
    let fake = FakeKube::from_fixture();
    fake.refuse_patches_of(WEB, "replicas above 2 need a capacity review");
    let kube = cluster(&fake).await;
    let report = kube
        .dry_run(
            &request("scale_deployment", "web", json!({"replicas": 5})),
            blast(0, 10),
        )
        .await;
    assert!(!report.passed);
    assert_eq!(
        check(&report, CheckName::Syntax),
        (
            false,
            "the API server's dry-run refused it: admission webhook \"policy.example.com\" denied the request: replicas above 2 need a capacity review (400)".to_owned()
        )
    );
}

#[tokio::test]
async fn scale_rollback_and_budget_checks_read_the_real_objects() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    // web: 3 ready behind a budget needing 2.
    let shrink_one = request("scale_deployment", "web", json!({"replicas_delta": -1}));
    let report = kube.dry_run(&shrink_one.clone(), blast(0, 10)).await;
    assert_eq!(
        check(&report, CheckName::Pdb),
        (true, "leaves 2 ready; the budget needs 2".to_owned())
    );
    let report = kube
        .dry_run(
            &request("scale_deployment", "web", json!({"replicas": 1})),
            blast(0, 10),
        )
        .await;
    assert_eq!(
        check(&report, CheckName::Pdb),
        (
            false,
            "would leave 1 ready, below the budget's minimum of 2".to_owned()
        )
    );
    assert_eq!(
        run(&kube, 5, &shrink_one).await.unwrap(),
        "deployments/web scaled from 3 to 2 replicas"
    );
    assert_eq!(fake.object(WEB).unwrap()["spec"]["replicas"], 2);
    let scale = writes(&fake)
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(scale.path, format!("{WEB}/scale"));

    // Rollback: the template of the ReplicaSet one revision back, without its hash label.
    let said = run(&kube, 6, &request("rollback_deployment", "web", json!({})))
        .await
        .unwrap();
    assert_eq!(
        said,
        "deployments/web rolled back to revision 2 (replicaset web-5f7b9c8d44)"
    );
    let template = &fake.object(WEB).unwrap()["spec"]["template"];
    assert_eq!(
        template["spec"]["containers"][0]["image"],
        "registry.example.com/web:1.2"
    );
    assert_eq!(template["metadata"]["labels"], json!({"app": "web"}));
    // db has a single revision: nothing to roll back to, said by the dry-run.
    let report = kube
        .dry_run(
            &request("rollback_deployment", "db", json!({})),
            blast(0, 10),
        )
        .await;
    assert_eq!(
        check(&report, CheckName::Syntax),
        (
            false,
            "the API server's dry-run refused it: deployments/db has no earlier revision"
                .to_owned()
        )
    );
    // A pod whose budget allows no disruption.
    let report = kube
        .dry_run(
            &request("delete_pod", "db-7c9d8f6b5-xk2lm", json!({})),
            blast(0, 10),
        )
        .await;
    assert_eq!(
        check(&report, CheckName::Pdb),
        (
            false,
            "would leave 0 ready, below the budget's minimum of 1".to_owned()
        )
    );
    // Diagnostics read the deployment: their dry-run passes, whatever the blast radius.
    let diagnose = request("run_diagnostics", "web", json!({}));
    let report = kube.dry_run(&diagnose, blast(50, 10)).await;
    assert!(report.passed, "{report:?}");
    let said = run(&kube, 7, &request("run_diagnostics", "web", json!({})))
        .await
        .unwrap();
    assert!(said.starts_with("web: 3 pod(s)\n"), "{said}");
    assert!(
        said.contains("pods/web-6d4cf56db6-d3e4f Running ready=true restarts=2"),
        "{said}"
    );
    // The events about the deployment and its pods, oldest first; none about other objects.
    let events: Vec<&str> = said.lines().filter(|l| l.starts_with("event ")).collect();
    assert_eq!(
        events,
        [
            "event Normal deployment/web: ScalingReplicaSet Scaled up replica set web-6d4cf56db6 to 3",
            "event Warning pod/web-6d4cf56db6-d3e4f: BackOff Back-off restarting failed container main in pod web-6d4cf56db6-d3e4f",
        ],
        "{said}"
    );
    // The last 20 log lines of the pod that restarted, and of no other.
    assert!(
        said.contains("logs of pods/web-6d4cf56db6-d3e4f (last 20 lines):"),
        "{said}"
    );
    assert!(
        said.contains("  2026-12-05T02:57:59Z FATAL: sorry, too many clients already (postgres)")
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("  2026-")).count(),
        20,
        "{said}"
    );
    assert!(
        !said.contains("logs of pods/web-6d4cf56db6-a1b2c"),
        "{said}"
    );
}

#[tokio::test]
async fn a_change_on_the_cluster_changes_the_fingerprint_and_a_missing_one_is_named() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let scale = request("scale_deployment", "web", json!({"replicas": 4}));
    let before = kube.dry_run(&scale.clone(), blast(0, 10)).await;
    assert_eq!(
        before.state_fingerprint,
        kube.dry_run(&scale.clone(), blast(0, 10))
            .await
            .state_fingerprint,
        "the same cluster gives the same fingerprint"
    );
    fake.edit(WEB, json!({"spec": {"replicas": 5}}));
    let after = kube.dry_run(&scale, blast(0, 10)).await;
    assert_ne!(before.state_fingerprint, after.state_fingerprint);
    assert!(engine::dryrun::recheck(&before, &after).is_err());

    let report = kube
        .dry_run(
            &request("restart_deployment", "no-such-app", json!({})),
            blast(0, 10),
        )
        .await;
    assert_eq!(
        check(&report, CheckName::ResourceExists),
        (false, "deployments/no-such-app not found".to_owned())
    );
}

#[tokio::test]
async fn an_unreachable_api_server_fails_the_dry_run_saying_so() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let kube = connect(&format!("http://127.0.0.1:{port}"), 1).await;
    let report = kube
        .dry_run(
            &request("restart_deployment", "web", json!({})),
            blast(0, 10),
        )
        .await;
    assert!(!report.passed);
    let (passed, detail) = check(&report, CheckName::Rbac);
    assert!(!passed);
    assert!(
        detail.starts_with("cannot reach the API server"),
        "{detail}"
    );
    assert!(!check(&report, CheckName::ResourceExists).0);
    let failed = run(&kube, 8, &request("restart_deployment", "web", json!({})))
        .await
        .unwrap_err();
    assert!(
        failed
            .to_string()
            .starts_with("cannot reach the API server"),
        "{failed}"
    );
}

/// Over HTTPS with the kubeconfig's CA and token: the dry-run and the write go through, each
/// request carrying the token. A kubeconfig with another token is refused by the API server
/// (401, named in the report); one with another CA never gets past the TLS handshake. Neither
/// writes anything.
#[tokio::test]
async fn the_kubeconfig_gives_the_ca_and_the_token_and_nothing_else_gets_in() {
    let fake = FakeKube::from_fixture();
    let dir = scratch_dir();
    let tls = Tls::make(&dir.join("tls"));
    fake.require_token(TOKEN);
    let url = fake.serve_tls(&tls).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let restart = request("restart_deployment", "web", json!({}));

    let kube = connect_with(FakeKube::kubeconfig(&dir, &url, &tls.ca_pem, TOKEN), 1).await;
    let report = kube.dry_run(&restart, blast(0, 10)).await;
    assert!(report.passed, "{report:?}");
    let said = run(&kube, 1, &restart).await.unwrap();
    assert!(said.starts_with("deployments/web restarted"), "{said}");
    let sent = fake.recorded();
    assert!(sent.iter().any(|r| r.method == "PATCH" && !r.dry_run()));
    for r in &sent {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            r.method,
            r.path
        );
    }
    let version = fake.object(WEB).unwrap()["metadata"]["resourceVersion"].clone();

    let wrong_token =
        connect_with(FakeKube::kubeconfig(&dir, &url, &tls.ca_pem, "stolen"), 1).await;
    let report = wrong_token.dry_run(&restart, blast(0, 10)).await;
    assert!(!report.passed);
    let (_, rbac) = check(&report, CheckName::Rbac);
    assert!(
        rbac.contains("401") || rbac.contains("Unauthorized"),
        "{rbac}"
    );
    assert!(run(&wrong_token, 2, &restart).await.is_err());

    let before = fake.recorded().len();
    let other_ca = Tls::make(&dir.join("other"));
    let untrusted =
        connect_with(FakeKube::kubeconfig(&dir, &url, &other_ca.ca_pem, TOKEN), 1).await;
    let report = untrusted.dry_run(&restart, blast(0, 10)).await;
    assert!(!report.passed);
    assert!(run(&untrusted, 3, &restart).await.is_err());
    assert_eq!(
        fake.recorded().len(),
        before,
        "a client not trusting the server's certificate sent nothing"
    );
    assert_eq!(
        fake.object(WEB).unwrap()["metadata"]["resourceVersion"],
        version,
        "neither wrote anything"
    );
}

/// With a ReplicaSet controller that takes 600 ms to replace an evicted pod, a drain whose
/// budget is spent by the previous drain waits (the Eviction API answers 429) until the
/// replacement is up and counted healthy, then evicts — within its deadline, never past the
/// budget. The replacements land on the one node left schedulable.
#[tokio::test]
async fn a_drain_waits_for_the_controller_to_replace_what_the_last_one_evicted() {
    let fake = FakeKube::from_fixture().with_controller_delay(Duration::from_millis(600));
    let url = fake.serve().await;
    let kube = connect(&url, 10).await;
    let said = run(&kube, 1, &request("drain_node", "node-a", json!({})))
        .await
        .unwrap();
    assert!(said.contains("1 pod(s) evicted"), "{said}");
    // At once: the budget is spent until the controller's replacement is healthy.
    let said = run(&kube, 2, &request("drain_node", "node-c", json!({})))
        .await
        .unwrap();
    assert_eq!(
        said,
        "nodes/node-c cordoned and drained through the Eviction API: 1 pod(s) evicted (pods/web-6d4cf56db6-g5h6i)"
    );
    let attempts: Vec<_> = fake
        .recorded()
        .into_iter()
        .filter(|r| r.path.ends_with("web-6d4cf56db6-g5h6i/eviction") && !r.dry_run())
        .collect();
    assert!(
        attempts.len() >= 2,
        "refused while the budget was spent, then let through ({} attempt(s))",
        attempts.len()
    );
    // Both replacements are up (the second one's delay too), on node-b.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let pods = fake.list("/api/v1/namespaces/prod/pods");
    let web: Vec<_> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .collect();
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(
        web.iter().all(|p| p["spec"]["nodeName"] == "node-b"),
        "{web:?}"
    );
    let budget = fake
        .object("/apis/policy/v1/namespaces/prod/poddisruptionbudgets/web-pdb")
        .unwrap();
    assert_eq!(budget["status"]["currentHealthy"], 3);
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
}

/// A rollback undoes the bad revision whole: the sidecar container and the env var it added
/// are gone afterwards, on a stand-in that merges strategic patches' lists by name as the API
/// server does (so a patch that only merged the old template would have kept them).
#[tokio::test]
async fn a_rollback_removes_the_sidecar_and_env_var_the_bad_revision_added() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let before = fake.object(WEB).unwrap()["spec"]["template"]["spec"]["containers"].clone();
    let mut bad = before.clone();
    bad[0]["env"] = json!([{"name": "DEBUG_DUMP_REQUESTS", "value": "1"}]);
    bad.as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "registry.example.com/proxy:9"}));
    fake.edit(
        WEB,
        json!({"spec": {"template": {"spec": {"containers": bad}}}}),
    );
    let said = run(&kube, 9, &request("rollback_deployment", "web", json!({})))
        .await
        .unwrap();
    assert!(said.starts_with("deployments/web rolled back"), "{said}");
    let containers = fake.object(WEB).unwrap()["spec"]["template"]["spec"]["containers"].clone();
    let names: Vec<&str> = containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main"], "the sidecar is gone: {containers}");
    assert!(
        containers[0]["env"].is_null()
            || !containers[0]["env"]
                .to_string()
                .contains("DEBUG_DUMP_REQUESTS"),
        "the env var is gone: {containers}"
    );
    assert_eq!(containers[0]["image"], "registry.example.com/web:1.2");
    let stored = fake.object(WEB).unwrap().to_string();
    assert!(!stored.contains("$patch"), "directives are not stored");
}

/// TOCTOU to the last moment: another actor changes the target right after the re-check's
/// dry-run. The write names the version the re-check read, the API server refuses it (409),
/// and nothing of ours is written — for a patch and for a delete.
#[tokio::test]
async fn a_target_changed_after_the_recheck_is_not_written() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let restart = request("restart_deployment", "web", json!({}));
    fake.edit_after_next_dry_run(
        WEB,
        json!({"metadata": {"annotations": {"edited-by": "someone"}}}),
    );
    let seen = kube.dry_run(&restart, blast(0, 10)).await;
    assert!(seen.passed, "{seen:?}");
    match kube.execute(1, &restart, &seen).await {
        Err(ExecError::Moved(reason)) => assert!(
            reason.contains("changed between the re-check and the apply") && reason.contains("409"),
            "{reason}"
        ),
        other => panic!("written over a moved target: {other:?}"),
    }
    let web = fake.object(WEB).unwrap();
    assert_eq!(web["metadata"]["annotations"]["edited-by"], "someone");
    assert!(
        web["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "our restart was not applied: {web}"
    );
    // A write decided on the current version goes through.
    let said = run(&kube, 2, &restart).await.unwrap();
    assert!(said.starts_with("deployments/web restarted"), "{said}");

    let pod = "/api/v1/namespaces/prod/pods/web-6d4cf56db6-a1b2c";
    let delete = request("delete_pod", "web-6d4cf56db6-a1b2c", json!({}));
    fake.edit_after_next_dry_run(pod, json!({"metadata": {"labels": {"edited": "yes"}}}));
    let seen = kube.dry_run(&delete, blast(0, 10)).await;
    assert!(
        matches!(
            kube.execute(3, &delete, &seen).await,
            Err(ExecError::Moved(_))
        ),
        "a delete with a stale precondition is refused"
    );
    assert!(fake.object(pod).is_some(), "the pod is still there");
}

on_both_backends!(
    an_approved_restart_goes_to_the_api_server,
    a_change_after_the_recheck_voids_the_approval_at_the_apply,
);

/// The same race through the whole approval: the re-check passes, the target changes, the
/// conditional write is refused — the approval ends VOIDED with the reason, never EXECUTED.
async fn a_change_after_the_recheck_voids_the_approval_at_the_apply(backend: Backend) {
    let fake = FakeKube::from_fixture();
    let url = fake.serve().await;
    let toml =
        format!("[cluster]\nbackend = \"kubernetes\"\n[cluster.kubernetes]\nurl = \"{url}\"\n");
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "admin").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "HighErrorRate", "service": "web", "severity": "critical"}),
        )
        .await;
    let answer = server
        .graphql(
            Some(&sam),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id status } }",
            json!({"i": incident, "a": {"kind": "restart_deployment", "target": "web", "namespace": "prod"}}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let id = answer["data"]["proposeAction"]["id"].as_str().unwrap();
    // Armed after the proposal's own dry-run: it fires after the re-check's.
    fake.edit_after_next_dry_run(
        WEB,
        json!({"metadata": {"annotations": {"edited-by": "someone"}}}),
    );
    for signer in [&alice, &bob] {
        server.approve(signer, id).await;
    }
    let done = server
        .settled_approval(&sam, id, "status voidReason execution { status output }")
        .await;
    assert_eq!(done["status"], "VOIDED", "{done}");
    assert!(
        done["voidReason"]
            .as_str()
            .unwrap()
            .contains("changed between the re-check and the apply"),
        "{done}"
    );
    assert_eq!(done["execution"]["status"], "FAILED", "{done}");
    let web = fake.object(WEB).unwrap();
    assert!(
        web["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "nothing of ours was written: {web}"
    );
    let audit = server
        .graphql(
            Some(&sam),
            "{ auditEvents(first: 50) { edges { node { action details } } } }",
            json!({}),
        )
        .await;
    let text = audit.to_string();
    assert!(text.contains("approval.voided"), "{text}");
}

/// The whole loop against an API server reached as a real one is: HTTPS with its own CA and a
/// bearer token, both from a kubeconfig file.
async fn an_approved_restart_goes_to_the_api_server(backend: Backend) {
    let fake = FakeKube::from_fixture();
    let dir = scratch_dir();
    let tls = Tls::make(&dir.join("tls"));
    fake.require_token(TOKEN);
    let url = fake.serve_tls(&tls).await;
    let kubeconfig = FakeKube::kubeconfig(&dir, &url, &tls.ca_pem, TOKEN);
    let toml = format!(
        "[cluster]\nbackend = \"kubernetes\"\n[cluster.kubernetes]\nkubeconfig = \"{}\"\n",
        kubeconfig.display()
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "admin").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "HighErrorRate", "service": "web", "severity": "critical"}),
        )
        .await;
    let answer = server
        .graphql(
            Some(&sam),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a)
               { id status effectiveRisk dryRun { passed checks { name passed detail } } } }",
            json!({"i": incident, "a": {"kind": "restart_deployment", "target": "web", "namespace": "prod"}}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let proposed = &answer["data"]["proposeAction"];
    assert_eq!(proposed["status"], "PENDING", "{proposed}");
    assert_eq!(proposed["dryRun"]["passed"], true, "{proposed}");
    assert!(
        writes(&fake).is_empty(),
        "a proposal changes nothing on the cluster"
    );
    // A restart is MEDIUM; in `prod` it is raised to HIGH: two signatures.
    assert_eq!(proposed["effectiveRisk"], "HIGH", "{proposed}");
    let id = proposed["id"].as_str().unwrap();
    for signer in [&alice, &bob] {
        server.approve(signer, id).await;
    }
    let done = server
        .settled_approval(&sam, id, "status execution { executor status output }")
        .await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(done["execution"]["executor"], "kubernetes");
    assert!(
        done["execution"]["output"]
            .as_str()
            .unwrap()
            .starts_with("deployments/web restarted"),
        "{done}"
    );
    let patches: Vec<_> = writes(&fake)
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == WEB)
        .collect();
    assert_eq!(patches.len(), 1, "executed exactly once");
    let sent = fake.recorded();
    assert!(
        sent.iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "every request carries the kubeconfig's token"
    );
    // The simulated cluster's chaos hook is refused on a real cluster.
    let chaos = server
        .graphql(Some(&sam), "{ cluster { name } }", json!({}))
        .await;
    assert_eq!(
        chaos["errors"][0]["extensions"]["code"], "CONFLICT",
        "{chaos}"
    );
}

/// What the Brain reads of the cluster: readiness, revisions (an earlier one to roll back to;
/// whether the current one rolled out lately, from its ReplicaSet's creation), restarts; none
/// for a deployment that does not exist. Reads only.
#[tokio::test]
async fn the_brain_reads_workloads_from_the_api_server() {
    let fake = FakeKube::from_fixture();
    let kube = cluster(&fake).await;
    let prod = Some("prod".to_owned());
    let found = kube
        .workloads(&[
            (prod.clone(), "web".into()),
            (prod.clone(), "db".into()),
            (prod, "nope".into()),
        ])
        .await
        .expect("the API server answers");
    let web = found[0].clone().expect("web runs");
    assert_eq!((web.ready, web.replicas, web.revision), (3, 3, 3));
    // Revision 2's ReplicaSet is kept; revision 3 rolled out on 2026-11-20, not lately.
    assert!(web.can_roll_back && !web.recent_rollout);
    assert_eq!(web.restarts, 2);
    assert!(!web.crash_looping);
    let db = found[1].clone().expect("db runs");
    assert!(!db.can_roll_back, "{db:?}");
    assert_eq!(found[2], None);
    assert!(writes(&fake).is_empty());
}
