//! Silences and maintenance windows, on SQLite and PostgreSQL, against a real WebSocket
//! subscriber and a local webhook receiver: a silenced alert is stored and counted but opens
//! no incident and notifies nobody; the creator is warned before the end; after the end the
//! digest says what fired and what resolved meanwhile. Matchers that match everything need an
//! ADMIN; "silence alerts like this" holds back an incident's alert and its timeline says so.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Backend, TestServer, next_data};

on_both_backends!(
    a_silenced_alert_is_kept_opens_nothing_and_the_digest_follows_the_end,
    silences_are_checked_and_silencing_everything_takes_an_admin,
    silencing_an_incident_s_alert_shows_in_its_timeline,
);

/// A webhook receiver recording every body it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let record = record.clone();
        async move {
            record
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn events(seen: &Arc<Mutex<Vec<Value>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for_event(seen: &Arc<Mutex<Vec<Value>>>, event: &str) -> Value {
    for _ in 0..300 {
        if let Some(found) = seen
            .lock()
            .unwrap()
            .iter()
            .find(|v| v["event"] == event)
            .cloned()
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {event} reached the receiver; got {:?}", events(seen));
}

async fn post(server: &TestServer, token: &str, alert: Value) -> Value {
    server.post_alerts(token, alert).await
}

const CREATE: &str = "mutation($m: String!, $c: String!, $d: Int) {
    createSilence(matchers: $m, comment: $c, durationMinutes: $d) { id matchers holding } }";

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

async fn a_silenced_alert_is_kept_opens_nothing_and_the_digest_follows_the_end(backend: Backend) {
    let (hook, seen) = receiver().await;
    let toml = format!(
        "[oncall]\ncheck_every_seconds = 1\n\
         [notifications.retry]\nbase_ms = 100\nmax_ms = 300\npoll_ms = 50\n\
         [[notifications.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}/hook\"\n"
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let mut updates = server
        .subscribe(&sam, "subscription { incidentUpdates { id title } }")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Silence the batch jobs' disk alerts for ten minutes (ended early below).
    let created = server
        .graphql(
            Some(&sam),
            CREATE,
            json!({"m": "{alertname=\"DiskFull\", service=~\"batch-.*\"}", "c": "resizing volumes on 10.1.2.3", "d": 10}),
        )
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");
    let silence = created["data"]["createSilence"].clone();
    assert_eq!(silence["holding"], true);
    let id = silence["id"].as_str().unwrap().to_owned();
    // The creator is warned before the end (it ends within the warning's reach).
    let warned = wait_for_event(&seen, "SILENCE_EXPIRING").await;
    assert_eq!(
        warned["payload"]["silence"]["created_by"], "sam",
        "{warned}"
    );

    // Two silenced alerts (one fires twice, one resolves meanwhile): stored, nothing opened.
    for (service, status) in [
        ("batch-a", "firing"),
        ("batch-a", "firing"),
        ("batch-b", "firing"),
        ("batch-b", "resolved"),
    ] {
        let answer = post(
            &server,
            &sam,
            json!({"name": "DiskFull", "service": service, "severity": "critical", "status": status}),
        )
        .await;
        assert_eq!(answer["silenced"], 1, "{answer}");
        assert_eq!(answer["incidents"], json!([]), "{answer}");
    }
    assert!(
        next_data(&mut updates, Duration::from_millis(1500))
            .await
            .is_none(),
        "a silenced alert reached the subscriber"
    );
    let listed = server
        .graphql(Some(&sam), "{ incidents { totalCount } }", json!({}))
        .await;
    assert_eq!(listed["data"]["incidents"]["totalCount"], 0);
    assert!(
        !events(&seen).contains(&"INCIDENT_OPENED".to_owned()),
        "{:?}",
        events(&seen)
    );
    let held = server
        .graphql(
            Some(&sam),
            "{ silences(holding: true) { id heldBack { name service firing count } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        held["data"]["silences"][0]["heldBack"],
        json!([
            {"name": "DiskFull", "service": "batch-a", "firing": true, "count": 2},
            {"name": "DiskFull", "service": "batch-b", "firing": false, "count": 1},
        ]),
        "{held}"
    );
    // Not matched, not silenced: opens an incident as always.
    let other = post(
        &server,
        &sam,
        json!({"name": "DiskFull", "service": "web", "severity": "critical"}),
    )
    .await;
    assert_eq!(other["silenced"], 0);
    assert_eq!(other["incidents"].as_array().unwrap().len(), 1);
    let live = next_data(&mut updates, Duration::from_secs(10))
        .await
        .expect("the unsilenced incident reached the subscriber");
    assert_eq!(live["incidentUpdates"]["id"], other["incidents"][0]);

    // Ended early: the digest says what fired and what resolved meanwhile.
    let ended = server
        .graphql(
            Some(&sam),
            "mutation($id: ID!) { expireSilence(id: $id) { holding expiredBy } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        ended["data"]["expireSilence"],
        json!({"holding": false, "expiredBy": "sam"})
    );
    let digest = wait_for_event(&seen, "SILENCE_ENDED").await;
    let facts = &digest["payload"]["silence"];
    assert_eq!(
        facts["fired"],
        json!(["DiskFull on batch-a ×2", "DiskFull on batch-b ×1"])
    );
    assert_eq!(facts["resolved"], json!(["DiskFull on batch-b ×1"]));
    assert_eq!(facts["still_firing"], json!(["DiskFull on batch-a ×2"]));
    assert!(!digest.to_string().contains("10.1.2.3"), "{digest}");
    // Once, however many worker rounds pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let digests = events(&seen)
        .iter()
        .filter(|e| *e == "SILENCE_ENDED")
        .count();
    assert_eq!(digests, 1);
    // After the end, the same alert opens an incident.
    let after = post(
        &server,
        &sam,
        json!({"name": "DiskFull", "service": "batch-c", "severity": "critical"}),
    )
    .await;
    assert_eq!(after["silenced"], 0);
    assert_eq!(after["incidents"].as_array().unwrap().len(), 1);
}

async fn silences_are_checked_and_silencing_everything_takes_an_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let root = server.signed_in("root", "admin").await;
    for (matchers, said) in [
        ("{alertname~\"x\"}", "matcher 1: expected one of = != =~ !~"),
        ("", "no matchers"),
        ("{team=~\"(\"}", "is not a regular expression"),
    ] {
        let answer = server
            .graphql(
                Some(&sam),
                CREATE,
                json!({"m": matchers, "c": "why", "d": 10}),
            )
            .await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(said),
            "{answer}"
        );
    }
    let too_many = server
        .graphql(Some(&sam), "{ silences(first: 0) { id } }", json!({}))
        .await;
    assert_eq!(code(&too_many), "BAD_USER_INPUT", "{too_many}");
    let everything = json!({"m": "{alertname=~\".*\"}", "c": "storm", "d": 10});
    let refused = server.graphql(Some(&sam), CREATE, everything.clone()).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("matches every alert; only an ADMIN")
    );
    let allowed = server.graphql(Some(&root), CREATE, everything).await;
    assert_eq!(allowed["errors"], Value::Null, "{allowed}");
    for (vars, said) in [
        (json!({"m": "a=\"b\"", "c": " ", "d": 10}), "say why"),
        (
            json!({"m": "a=\"b\"", "c": "x", "d": 50_000}),
            "at most 30 days",
        ),
        (
            json!({"m": "a=\"b\"", "c": "x"}),
            "exactly one of endsAt and durationMinutes",
        ),
    ] {
        let answer = server.graphql(Some(&sam), CREATE, vars).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(said),
            "{answer}"
        );
    }
    // A maintenance window: checked; one under way now holds.
    let window = "mutation($d: [String!]!, $s: String!, $z: String!) { createMaintenanceWindow(
        name: \"patching\", matchers: \"env=\\\"staging\\\"\", days: $d, start: $s, timeZone: $z,
        durationMinutes: 120, comment: \"kernel updates\") { kind holding recurrence { days start timeZone } nextStart } }";
    let bad = server
        .graphql(
            Some(&sam),
            window,
            json!({"d": ["MON"], "s": "01:00", "z": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let answer = server
        .graphql(
            Some(&sam),
            window,
            json!({"d": days, "s": now.format("%H:%M").to_string(), "z": "UTC"}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let created = &answer["data"]["createMaintenanceWindow"];
    assert_eq!(created["kind"], "MAINTENANCE");
    assert_eq!(created["holding"], true, "{created}");
    assert_eq!(created["recurrence"]["days"], json!(days));
    assert!(created["nextStart"].is_string());
    let held = server
        .post_json(
            "/api/v1/alerts/webhook",
            Some(&sam),
            &[],
            json!({"name": "NodeReboot", "service": "db", "severity": "warning", "labels": {"env": "staging"}})
                .to_string(),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(held["silenced"], 1, "{held}");
}

async fn silencing_an_incident_s_alert_shows_in_its_timeline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alert = json!({"name": "CertExpiring", "service": "edge", "severity": "warning",
        "labels": {"host": "10.8.8.8"}});
    let incident = server.incident_from_alert(&sam, alert.clone()).await;
    let view = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { alerts { id count } } }",
            json!({"i": incident}),
        )
        .await;
    let alert_id = view["data"]["incident"]["alerts"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = server
        .graphql(
            Some(&sam),
            "mutation($a: ID!) { silenceAlert(alertId: $a, durationMinutes: 120, comment: \"renewal ordered\") { matchers } }",
            json!({"a": alert_id}),
        )
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");
    let matchers = created["data"]["silenceAlert"]["matchers"]
        .as_str()
        .unwrap();
    assert!(
        matchers.contains("alertname=\"CertExpiring\"") && matchers.contains("host=\"[IP_"),
        "{matchers}"
    );
    assert!(!matchers.contains("10.8.8.8"));
    // Its repeats are held back: counted on the silence, not the incident.
    for _ in 0..3 {
        let answer = post(&server, &sam, alert.clone()).await;
        assert_eq!(answer["silenced"], 1, "{answer}");
    }
    let view = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { alerts { count }
               timeline(first: 100) { edges { node { kind text } } } } }",
            json!({"i": incident}),
        )
        .await;
    assert_eq!(view["data"]["incident"]["alerts"][0]["count"], 1);
    let silenced: Vec<String> = view["data"]["incident"]["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["kind"] == "SILENCED")
        .map(|e| e["node"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(silenced.len(), 1, "{view}");
    assert!(
        silenced[0].starts_with("CertExpiring held back by silence #")
            && silenced[0].contains(": 3 firing(s) until"),
        "{}",
        silenced[0]
    );
    // Its resolution still resolves the incident: nothing hangs on a silence.
    let resolved = post(
        &server,
        &sam,
        json!({"name": "CertExpiring", "service": "edge", "severity": "warning",
            "labels": {"host": "10.8.8.8"}, "status": "resolved"}),
    )
    .await;
    assert_eq!(resolved["incidents"], json!([incident]), "{resolved}");
}

/// `awoooi silence add|list|expire` against a running server, as the token's user; a bad
/// duration is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_adds_lists_and_expires_silences() {
    let server = TestServer::start(Backend::Sqlite).await;
    let token = server.signed_in("sam", "sre").await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_awoooi"))
            .args(args)
            .env("AWOOOI_URL", &server.base)
            .env("AWOOOI_TOKEN", &token)
            .output()
            .unwrap()
    };
    let added = run(&[
        "silence",
        "add",
        "alertname=\"DiskFull\", env=\"staging\"",
        "--for",
        "90m",
        "--comment",
        "resizing",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let line = String::from_utf8_lossy(&added.stdout).into_owned();
    assert!(
        line.starts_with("#")
            && line.contains("HOLDING")
            && line.contains("{alertname=\"DiskFull\", env=\"staging\"}"),
        "{line}"
    );
    let id = line[1..].split('\t').next().unwrap().to_owned();
    let listed = run(&["silence", "list", "--holding"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&format!("#{id}\tHOLDING")));
    let expired = run(&["silence", "expire", &id]);
    assert!(
        expired.status.success(),
        "{}",
        String::from_utf8_lossy(&expired.stderr)
    );
    let listed = run(&["silence", "list", "--holding"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "");
    let again = run(&["silence", "expire", &id]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("has ended already (CONFLICT)"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bad = run(&["silence", "add", "a=\"b\"", "--for", "2w", "--comment", "x"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--for `2w`: the unit must be m, h or d"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
