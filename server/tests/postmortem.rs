//! Timelines, postmortems and the S3 archive: an incident driven from alert to resolution gets
//! its postmortem (the same from GraphQL, the download and the CLI, with no raw PII); the
//! archive copies postmortems, audit segments and knowledge snapshots to a real S3-compatible
//! server (`s3s-fs`, installed by `scripts/setup.sh --e2e`), holds them while the server is
//! down, and anchors the audit chain against rewrites and a cut tail. On both databases.

use crate::support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use server::services::archive::{S3Config, S3Credentials, S3Store};
use support::{Backend, TestServer};

const RAW_IP: &str = "10.20.30.40";
const RAW_EMAIL: &str = "dba.oncall@example.com";

/// Fires a database alert carrying an IP address and an e-mail address, waits for its
/// analysis, has the analysis's proposal (or a restart proposed by hand) signed until
/// approved and executed, resolves the alert; returns the incident.
async fn drive_to_resolution(server: &TestServer, fingerprint: &str) -> String {
    let sam = server.signed_in(&format!("sam-{fingerprint}"), "sre").await;
    let alice = server
        .signed_in(&format!("alice-{fingerprint}"), "devops")
        .await;
    let bob = server
        .signed_in(&format!("bob-{fingerprint}"), "admin")
        .await;
    let alert = json!({"name": "PostgresDown", "service": "postgres-db", "severity": "critical",
        "fingerprint": fingerprint,
        "description": format!("postgres-db at {RAW_IP} stopped answering; paged {RAW_EMAIL}")});
    let incident = server.incident_from_alert(&sam, alert.clone()).await;
    // The analysis has concluded before anyone acts.
    let mut analysed = false;
    for _ in 0..400 {
        let answer = server
            .graphql(
                Some(&sam),
                "query($id: ID!) { incident(id: $id) { analysis { brain } } }",
                json!({"id": incident}),
            )
            .await;
        if answer["data"]["incident"]["analysis"]["brain"].is_string() {
            analysed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(analysed, "incident {incident} was never analysed");
    // The analysis's own proposal (it follows the analysis row), else one made by hand.
    let mut pending = None;
    for _ in 0..80 {
        let listed = server
            .graphql(
                Some(&sam),
                "query($id: ID!) { incident(id: $id) { approvals { id status } } }",
                json!({"id": incident}),
            )
            .await;
        pending = listed["data"]["incident"]["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["status"] == "PENDING")
            .map(|a| a["id"].as_str().unwrap().to_owned());
        if pending.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let approval = match pending {
        Some(id) => id,
        None => {
            let answer = server
                .graphql(
                    Some(&sam),
                    "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id } }",
                    json!({"i": incident, "a": {"kind": "restart_deployment", "target": "postgres-db", "namespace": "prod"}}),
                )
                .await;
            assert_eq!(answer["errors"], Value::Null, "{answer}");
            answer["data"]["proposeAction"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // Signatures until the quorum is reached.
    for signer in [&alice, &bob] {
        let now = server
            .graphql(
                Some(&sam),
                "query($id: ID!) { approval(id: $id) { status } }",
                json!({"id": approval}),
            )
            .await;
        if now["data"]["approval"]["status"] != "PENDING" {
            break;
        }
        server.approve(signer, &approval).await;
    }
    let done = server.settled_approval(&sam, &approval, "status").await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    let mut resolved = alert;
    resolved["status"] = json!("resolved");
    server.incident_from_alert(&sam, resolved).await;
    incident
}

/// The stored postmortem of `incident`, once the resolution watcher wrote it.
async fn stored_postmortem(server: &TestServer, incident: &str) -> String {
    let id: i32 = incident.parse().unwrap();
    for _ in 0..400 {
        if let Some(row) = entity::postmortem::Entity::find_by_id(id)
            .one(&server.state.db)
            .await
            .unwrap()
        {
            return row.markdown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("incident {incident} never got its postmortem");
}

async fn a_resolved_incident_gets_one_postmortem_everywhere(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let incident = drive_to_resolution(&server, "pg-down").await;
    let stored = stored_postmortem(&server, &incident).await;

    // Every section, filled from this incident's data.
    for needle in [
        "# Postmortem: ",
        "## Summary",
        "Executed: `",
        "It resolved ",
        "## Impact",
        "- Severity: CRITICAL",
        "- Workloads acted on: `",
        "## Detection and key times",
        "| First alert | 20",
        "| First proposal | 20",
        "| First approval | 20",
        "| Mitigated | 20",
        "| Resolved | 20",
        "## Timeline",
        "| PROPOSED |",
        "| APPROVED |",
        "| EXECUTED | system |",
        "## Root cause and evidence",
        "- Brain: rules",
        "## What was done, and by whom",
        "approve by alice-pg-down (DEVOPS)",
        "execution succeeded",
        "## What the knowledge base already knew",
        "## Follow-ups",
    ] {
        assert!(stored.contains(needle), "no `{needle}` in:\n{stored}");
    }
    assert!(
        !stored.contains(RAW_IP) && !stored.contains(RAW_EMAIL),
        "raw PII in:\n{stored}"
    );

    // The same Markdown from GraphQL, the download and the CLI.
    let viewer = server.signed_in("vera", "viewer").await;
    let answer = server
        .graphql(
            Some(&viewer),
            "query($id: ID!) { incident(id: $id) { postmortem } }",
            json!({"id": incident}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["incident"]["postmortem"], stored.as_str());
    let path = format!("/api/v1/incidents/{incident}/postmortem.md");
    let download = server
        .get_with(&path, "authorization", &format!("Bearer {viewer}"))
        .await;
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert_eq!(download.text().await.unwrap(), stored);
    let cli = server.cli(&["postmortem", &incident], None);
    assert!(cli.status.success(), "{}", cli.stderr);
    assert_eq!(cli.stdout, stored);

    // The download needs a credential and a real incident.
    assert_eq!(server.get(&path, None).await.status(), 401);
    let bearer = format!("Bearer {viewer}");
    let missing = server
        .get_with(
            "/api/v1/incidents/999999/postmortem.md",
            "authorization",
            &bearer,
        )
        .await;
    assert_eq!(missing.status(), 404);
    let bad = server
        .get_with(
            "/api/v1/incidents/x1/postmortem.md",
            "authorization",
            &bearer,
        )
        .await;
    assert_eq!(bad.status(), 400);
    let cli = server.cli(&["postmortem", "999999"], None);
    assert!(!cli.status.success());
    assert!(cli.stderr.contains("no incident 999999"), "{}", cli.stderr);

    // It is the body of the incident's path-A knowledge entry.
    let id: i32 = incident.parse().unwrap();
    let mut body = None;
    for _ in 0..200 {
        body = entity::knowledge_entry::Entity::find()
            .filter(entity::knowledge_entry::Column::IncidentId.eq(id))
            .filter(entity::knowledge_entry::Column::PathType.eq("A"))
            .one(&server.state.db)
            .await
            .unwrap()
            .map(|e| e.body);
        if body.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body.as_deref(), Some(stored.as_str()));

    // Key times: the histograms on /metrics, the medians for the dashboard.
    let metrics = server.get("/metrics", None).await.text().await.unwrap();
    for name in [
        "awoooi_incident_time_to_propose_seconds_bucket",
        "awoooi_incident_time_to_approve_seconds_bucket",
        "awoooi_incident_time_to_mitigate_seconds_bucket",
        "awoooi_incident_time_to_resolve_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "no {name} on /metrics");
    }
    let answer = server
        .graphql(
            Some(&viewer),
            "{ keyTimes(days: 30) { days incidents timeToDetect timeToPropose timeToApprove timeToMitigate timeToResolve } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let times = &answer["data"]["keyTimes"];
    assert_eq!(times["incidents"], 1, "{times}");
    for field in [
        "timeToPropose",
        "timeToApprove",
        "timeToMitigate",
        "timeToResolve",
    ] {
        assert!(times[field].is_i64(), "{field} missing: {times}");
    }
    assert!(
        times["timeToPropose"].as_i64() <= times["timeToResolve"].as_i64(),
        "{times}"
    );
    let bad_days = server
        .graphql(Some(&viewer), "{ keyTimes(days: 0) { days } }", json!({}))
        .await;
    assert_eq!(
        bad_days["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}

const TIMELINE: &str = "query($id: ID!, $after: String) { incident(id: $id) {
    timeline(first: 4, after: $after) { totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { at kind actor text } } } } }";

async fn the_timeline_is_ordered_complete_and_paginated(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let incident = drive_to_resolution(&server, "pg-timeline").await;
    stored_postmortem(&server, &incident).await;
    let viewer = server.signed_in("vera", "viewer").await;
    let mut after = Value::Null;
    let mut events: Vec<Value> = Vec::new();
    let mut total = None;
    loop {
        let answer = server
            .graphql(
                Some(&viewer),
                TIMELINE,
                json!({"id": incident, "after": after}),
            )
            .await;
        assert_eq!(answer["errors"], Value::Null, "{answer}");
        let page = &answer["data"]["incident"]["timeline"];
        total.get_or_insert(page["totalCount"].as_u64().unwrap());
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= 4);
        events.extend(edges.iter().map(|e| e["node"].clone()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        events.len() as u64,
        total.unwrap(),
        "pages cover the list once"
    );
    let at: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = at.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(at, sorted, "oldest first");
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "ALERT_FIRED",
        "OPENED",
        "ANALYSED",
        "PROPOSED",
        "APPROVED",
        "EXECUTING",
        "EXECUTED",
        "ALERT_RESOLVED",
        "RESOLVED",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let signed = events
        .iter()
        .find(|e| matches!(e["kind"].as_str(), Some("SIGNED" | "APPROVED")))
        .unwrap();
    assert_eq!(signed["actor"], "alice-pg-timeline", "the first signer");
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(RAW_IP) && !text.contains(RAW_EMAIL),
        "{text}"
    );
    let bad = server
        .graphql(
            Some(&viewer),
            "query($id: ID!) { incident(id: $id) { timeline(first: 0) { totalCount } } }",
            json!({"id": incident}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

/// A real S3-compatible server (`s3s-fs`) on a fixed port and data directory, restartable.
struct S3Server {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
}

const S3_KEY: &str = "awoooi-test-key";
const S3_SECRET: &str = "awoooi-test-secret-0123456789";
const BUCKET: &str = "awoooi-archive";

/// `s3s-fs` where `scripts/setup.sh --e2e` installs it, or `AWOOOI_S3S_FS`.
fn s3s_fs() -> PathBuf {
    support::installed_tool("s3s-fs", "AWOOOI_S3S_FS")
}

impl S3Server {
    async fn start(root: PathBuf) -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = S3Server {
            child: None,
            port,
            root,
        };
        server.up().await;
        server
    }

    async fn up(&mut self) {
        std::fs::create_dir_all(&self.root).unwrap();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("s3s-fs did not start on port {}", self.port);
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn toml(&self) -> String {
        format!(
            "[archive]\naudit_segment_every_seconds = 1\nupload_every_seconds = 0.2\n\
             retry_max_seconds = 1\nknowledge_snapshot_every_seconds = 1\n[archive.s3]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\n",
            self.endpoint()
        )
    }

    fn store(&self) -> S3Store {
        S3Store::connect(&S3Config {
            endpoint: self.endpoint(),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            path_style: true,
            prefix: String::new(),
            credentials: Some(S3Credentials {
                key: S3_KEY.into(),
                secret: S3_SECRET.into(),
                token: None,
            }),
        })
        .unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.down();
    }
}

const S3_ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", S3_KEY),
    ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
];

/// Waits until the store holds a key starting with `prefix`; returns the keys.
async fn keys_appear(store: &S3Store, prefix: &str) -> Vec<String> {
    for _ in 0..300 {
        if let Ok(keys) = store.list(prefix).await
            && !keys.is_empty()
        {
            return keys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing under {prefix} ever reached the archive");
}

async fn postmortems_segments_and_snapshots_reach_the_archive_and_survive_its_outage(
    backend: Backend,
) {
    let dir = tempdir();
    let mut s3 = S3Server::start(dir.join("s3")).await;
    let topology = support::DemoTopology::new();
    let server = TestServer::start_with_env(backend, &topology.args(), &s3.toml(), &S3_ENV).await;
    let store = s3.store();

    let first = drive_to_resolution(&server, "pg-archived").await;
    let markdown = stored_postmortem(&server, &first).await;
    let keys = keys_appear(&store, &format!("postmortems/incident-{first}/")).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        store.get(&keys[0]).await.unwrap().as_deref(),
        Some(markdown.as_str())
    );
    keys_appear(&store, "audit/").await;
    let snapshots = keys_appear(&store, "knowledge/snapshot-").await;
    let snapshot = store.get(&snapshots[0]).await.unwrap().unwrap();
    assert!(
        snapshot
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "JSON lines"
    );

    // The store goes away: the next postmortem waits, retried, and arrives once it is back.
    s3.down();
    let second = drive_to_resolution(&server, "pg-while-down").await;
    let markdown = stored_postmortem(&server, &second).await;
    let queued = || async {
        entity::archive_object::Entity::find()
            .filter(entity::archive_object::Column::Kind.eq("POSTMORTEM"))
            .filter(
                entity::archive_object::Column::Key
                    .starts_with(format!("postmortems/incident-{second}/")),
            )
            .one(&server.state.db)
            .await
            .unwrap()
    };
    let mut failed = false;
    for _ in 0..300 {
        if let Some(row) = queued().await
            && row.attempts >= 1
        {
            assert_eq!(row.status.as_str(), "PENDING");
            let error = row.last_error.unwrap_or_default();
            assert!(error.contains("cannot connect"), "{error}");
            assert!(
                !error.contains(S3_SECRET) && !error.contains("Signature"),
                "{error}"
            );
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failed,
        "the upload was never tried while the store was down"
    );
    s3.up().await;
    let keys = keys_appear(&store, &format!("postmortems/incident-{second}/")).await;
    assert_eq!(
        store.get(&keys[0]).await.unwrap().as_deref(),
        Some(markdown.as_str())
    );
    let row = queued().await.unwrap();
    assert_eq!(row.status.as_str(), "UPLOADED");
    assert!(row.attempts >= 2, "retried: {}", row.attempts);
    // Nothing in the archive holds raw PII.
    for key in store.list("").await.unwrap() {
        let body = store.get(&key).await.unwrap().unwrap_or_default();
        assert!(
            !body.contains(RAW_IP) && !body.contains(RAW_EMAIL),
            "raw PII in {key}"
        );
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "awoooi-archive-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// `awoooi audit verify --against-archive` with this archive's configuration.
fn verify_against_archive(
    server: &TestServer,
    s3: &S3Server,
    dir: &std::path::Path,
) -> support::CliOutput {
    let config = dir.join("verify.toml");
    std::fs::write(
        &config,
        format!(
            "[archive.s3]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\n",
            s3.endpoint()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_awoooi"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "audit",
            "verify",
            "--against-archive",
        ])
        .env("AWOOOI_DATABASE_URL", &server.database_url)
        .envs(S3_ENV)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    support::CliOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Waits until every audit event is in an uploaded segment.
async fn archived_up_to_date(server: &TestServer) -> i64 {
    for _ in 0..300 {
        let last: Option<i64> = entity::audit_event::Entity::find()
            .order_by_desc(entity::audit_event::Column::Id)
            .one(&server.state.db)
            .await
            .unwrap()
            .map(|e| e.id);
        let covered = entity::archive_object::Entity::find()
            .filter(entity::archive_object::Column::Kind.eq("AUDIT_SEGMENT"))
            .filter(entity::archive_object::Column::Status.eq("UPLOADED"))
            .order_by_desc(entity::archive_object::Column::SegmentLast)
            .one(&server.state.db)
            .await
            .unwrap()
            .and_then(|o| o.segment_last);
        if let (Some(last), Some(covered)) = (last, covered)
            && covered == last
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the audit trail never caught up in the archive");
}

async fn the_archive_catches_a_rehashed_rewrite_and_a_cut_tail(backend: Backend) {
    let dir = tempdir();
    let s3 = S3Server::start(dir.join("s3")).await;
    let topology = support::DemoTopology::new();
    let server = TestServer::start_with_env(backend, &topology.args(), &s3.toml(), &S3_ENV).await;
    drive_to_resolution(&server, "pg-anchored").await;
    let last = archived_up_to_date(&server).await;
    assert!(last >= 6, "a trail worth checking: {last} events");
    let ok = verify_against_archive(&server, &s3, &dir);
    assert!(ok.status.success(), "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("matches the archive"), "{}", ok.stdout);
    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();

    // Cut the tail: the database's own check still passes, the archive's does not.
    let cut = last - 1;
    db.execute_unprepared(&format!("DELETE FROM audit_events WHERE id >= {cut}"))
        .await
        .unwrap();
    let alone = server.cli(&["audit", "verify"], None);
    assert!(
        alone.status.success(),
        "the cut trail verifies alone: {}",
        alone.stderr
    );
    let caught = verify_against_archive(&server, &s3, &dir);
    assert!(!caught.status.success());
    assert!(
        caught.stderr.contains(&format!(
            "event {cut} is in the archive but not in the database"
        )),
        "{}",
        caught.stderr
    );

    // Rewrite event 2 and re-hash every event after it: again the database alone is fooled.
    let rows = entity::audit_event::Entity::find()
        .order_by_asc(entity::audit_event::Column::Id)
        .all(&db)
        .await
        .unwrap();
    let mut prev = rows[0].hash.clone();
    for row in rows.iter().skip(1) {
        let details: Value = if row.id == 2 {
            json!({"forged": true})
        } else {
            serde_json::from_str(&row.details).unwrap()
        };
        let event = engine::audit::AuditEvent::next(
            &prev,
            row.id,
            row.at,
            &row.actor,
            &row.action,
            &row.subject,
            details.clone(),
        );
        let mut active: entity::audit_event::ActiveModel = row.clone().into();
        active.details = sea_orm::Set(details.to_string());
        active.prev_hash = sea_orm::Set(event.prev_hash.clone());
        active.hash = sea_orm::Set(event.hash.clone());
        sea_orm::ActiveModelTrait::update(active, &db)
            .await
            .unwrap();
        prev = event.hash;
    }
    let alone = server.cli(&["audit", "verify"], None);
    assert!(
        alone.status.success(),
        "the forged trail verifies alone: {}",
        alone.stderr
    );
    let caught = verify_against_archive(&server, &s3, &dir);
    assert!(!caught.status.success());
    assert!(
        caught.stderr.contains("event 2 differs from the archive"),
        "{}",
        caught.stderr
    );
}

on_both_backends!(
    a_resolved_incident_gets_one_postmortem_everywhere,
    the_timeline_is_ordered_complete_and_paginated,
    postmortems_segments_and_snapshots_reach_the_archive_and_survive_its_outage,
    the_archive_catches_a_rehashed_rewrite_and_a_cut_tail,
);
