//! Alerts in, incidents out: webhooks, dedup, correlation, resolution, refusals, and the
//! Privacy Shield end to end — on SQLite and on PostgreSQL.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, Process, ScratchDb, TestServer, WEBHOOK_SECRET};

const ALERTMANAGER: &str = include_str!("../../engine/tests/fixtures/alertmanager-v4.json");
const GRAFANA: &str = include_str!("../../engine/tests/fixtures/grafana.json");

on_both_backends!(
    alertmanager_opens_dedups_and_resolves,
    alerts_of_one_service_correlate_and_take_the_worst_severity,
    refused_requests_store_nothing,
    generic_webhook_accepts_hmac_signatures,
    grafana_and_graphql_inputs,
    incident_updates_are_live,
    raw_values_never_reach_storage_or_the_api,
    raw_values_never_reach_the_logs,
    concurrent_batches_count_every_send_and_resolve_what_resolved,
    labels_a_comment_adds_between_two_requests_are_kept,
    a_label_map_stored_in_many_groups_keeps_every_label,
    a_label_map_missing_a_segment_is_refused,
    labels_stay_consistent_when_a_new_base_replaces_what_the_writer_read,
);

const INCIDENT: &str =
    "query($id: ID!) { incident(id: $id) { id title severity status service resolvedAt
    alerts { fingerprint status name service severity labels annotations count generatorUrl } } }";

async fn incident(server: &TestServer, token: &str, id: &str) -> Value {
    let answer = server
        .graphql(Some(token), INCIDENT, json!({"id": id}))
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["incident"].clone()
}

async fn post_alertmanager(server: &TestServer, token: &str, body: &str) -> Value {
    let response = server
        .post_json(
            "/api/v1/alerts/alertmanager",
            Some(token),
            &[],
            body.to_owned(),
        )
        .await;
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

async fn incident_count(server: &TestServer, token: &str) -> i64 {
    let answer = server
        .graphql(Some(token), "{ incidents { totalCount } }", json!({}))
        .await;
    answer["data"]["incidents"]["totalCount"].as_i64().unwrap()
}

fn hmac_hex(secret: &str, body: &str) -> String {
    server::edge::webhooks::signature(secret, body.as_bytes())
}

async fn alertmanager_opens_dedups_and_resolves(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;

    let first = post_alertmanager(&server, &token, ALERTMANAGER).await;
    assert_eq!(first["accepted"], 2);
    let ids = first["incidents"].as_array().unwrap().clone();
    assert_eq!(
        ids.len(),
        2,
        "frontend and postgres-db are two incidents: {first}"
    );
    let frontend = incident(&server, &token, ids[0].as_str().unwrap()).await;
    assert_eq!(frontend["title"], "frontend 5xx rate > 15%");
    // The analysis worker may already have claimed it.
    assert!(
        ["OPEN", "ANALYZING", "AWAITING_APPROVAL"].contains(&frontend["status"].as_str().unwrap()),
        "{frontend}"
    );
    assert_eq!(frontend["severity"], "CRITICAL");
    assert_eq!(frontend["service"], "frontend");
    let alert = &frontend["alerts"][0];
    assert_eq!(alert["fingerprint"], "4a2b7c3d9e1f0a5b");
    assert_eq!(alert["count"], 1);
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        description.starts_with("User [IP_") && description.contains("with email [EMAIL_1]"),
        "{description}"
    );

    // The same payload again: same incidents, counted, nothing new.
    let again = post_alertmanager(&server, &token, ALERTMANAGER).await;
    assert_eq!(again["incidents"], first["incidents"]);
    let frontend = incident(&server, &token, ids[0].as_str().unwrap()).await;
    assert_eq!(frontend["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(frontend["alerts"][0]["count"], 2);
    assert_eq!(incident_count(&server, &token).await, 2);

    // Resolved → RESOLVED.
    let resolved = ALERTMANAGER.replace("\"firing\"", "\"resolved\"");
    let done = post_alertmanager(&server, &token, &resolved).await;
    assert_eq!(done["incidents"], first["incidents"]);
    for id in &ids {
        let closed = incident(&server, &token, id.as_str().unwrap()).await;
        assert_eq!(closed["status"], "RESOLVED", "{closed}");
        assert!(closed["resolvedAt"].is_string());
        assert_eq!(closed["alerts"][0]["status"], "RESOLVED");
    }
    let open = server
        .graphql(
            Some(&token),
            "{ incidents(status: OPEN) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(open["data"]["incidents"]["totalCount"], 0);

    // Firing again within the correlation window is flapping: the same incidents, open again.
    let reopened = post_alertmanager(&server, &token, ALERTMANAGER).await;
    assert_eq!(reopened["incidents"], first["incidents"]);
    for id in &ids {
        let again = incident(&server, &token, id.as_str().unwrap()).await;
        assert_ne!(again["status"], "RESOLVED", "{again}");
        assert_eq!(again["alerts"][0]["status"], "FIRING");
    }
}

async fn alerts_of_one_service_correlate_and_take_the_worst_severity(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let send = |name: &'static str, severity: &'static str, service: &'static str| {
        let body = json!({"name": name, "severity": severity, "service": service}).to_string();
        let server = &server;
        let token = token.clone();
        async move {
            let response = server
                .post_json("/api/v1/alerts/webhook", Some(&token), &[], body)
                .await;
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.unwrap()["incidents"][0].clone()
        }
    };
    let a = send("SlowQueries", "warning", "postgres-db").await;
    let b = send("ConnectionsExhausted", "critical", "postgres-db").await;
    let c = send("CacheMisses", "info", "redis-cache").await;
    assert_eq!(a, b, "same service within the window joins one incident");
    assert_ne!(a, c);
    let joined = incident(&server, &token, a.as_str().unwrap()).await;
    assert_eq!(joined["severity"], "CRITICAL");
    assert_eq!(joined["alerts"].as_array().unwrap().len(), 2);
    let cache = incident(&server, &token, c.as_str().unwrap()).await;
    assert_eq!(cache["severity"], "INFO");

    let page = server
        .graphql(
            Some(&token),
            "{ incidents(first: 1) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let connection = &page["data"]["incidents"];
    assert_eq!(connection["totalCount"], 2);
    assert_eq!(connection["edges"][0]["node"]["id"], c, "newest first");
    assert_eq!(connection["pageInfo"]["hasNextPage"], true);
    let next = server
        .graphql(
            Some(&token),
            "query($after: String) { incidents(first: 5, after: $after) { totalCount edges { cursor node { id alertCount } } pageInfo { hasNextPage } } }",
            json!({"after": connection["pageInfo"]["endCursor"]}),
        )
        .await;
    let rest = &next["data"]["incidents"];
    assert_eq!(rest["edges"][0]["node"]["id"], a);
    assert_eq!(rest["edges"][0]["node"]["alertCount"], 2);
    assert_eq!(rest["totalCount"], 2, "the total counts every page");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    // Past the end the page is empty and the total still counts the whole list; a filter
    // that keeps nothing has no rows and a total of 0.
    let past = server
        .graphql(
            Some(&token),
            "query($after: String) { incidents(first: 5, after: $after) { totalCount edges { node { id } } } }",
            json!({"after": rest["edges"][0]["cursor"]}),
        )
        .await;
    assert_eq!(past["data"]["incidents"]["totalCount"], 2, "{past}");
    assert_eq!(past["data"]["incidents"]["edges"], json!([]));
    let none = server
        .graphql(
            Some(&token),
            "{ incidents(status: RESOLVED) { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(none["data"]["incidents"]["totalCount"], 0, "{none}");
    assert_eq!(none["data"]["incidents"]["edges"], json!([]));
    let bad = server
        .graphql(
            Some(&token),
            "{ incidents(first: 0) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

async fn refused_requests_store_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let path = "/api/v1/alerts/alertmanager";

    let malformed = server
        .post_json(
            path,
            Some(&token),
            &[],
            ALERTMANAGER.replace("\"firing\"", "\"sideways\""),
        )
        .await;
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["field"], "alerts[0].status", "{body}");

    let anonymous = server.post_json(path, None, &[], ALERTMANAGER).await;
    assert_eq!(anonymous.status(), 401);
    let forged = server
        .post_json(path, Some("awoooi_t_forged"), &[], ALERTMANAGER)
        .await;
    assert_eq!(forged.status(), 401);

    let huge = format!(
        r#"{{"version":"4","alerts":[{{"status":"firing","labels":{{"x":"{}"}}}}]}}"#,
        "a".repeat(70_000)
    );
    let too_large = server.post_json(path, Some(&token), &[], huge).await;
    assert_eq!(too_large.status(), 413);

    // A second alert with a bad field refuses the whole batch: nothing half-stored.
    let half =
        json!({"alerts": [{"name": "fine"}, {"name": "broken", "labels": "no"}]}).to_string();
    let response = server
        .post_json("/api/v1/alerts/webhook", Some(&token), &[], half)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(incident_count(&server, &token).await, 0);

    if backend == Backend::Postgres {
        // Storage down: signed requests (no database needed to authenticate) get 503.
        let body = json!({"name": "DiskFull", "service": "db"}).to_string();
        let signature = hmac_hex(WEBHOOK_SECRET, &body);
        server.drop_database_now().await;
        let down = server
            .post_json(
                "/api/v1/alerts/webhook",
                None,
                &[("x-awoooi-signature", &signature)],
                body,
            )
            .await;
        assert_eq!(down.status(), 503);
    }
}

async fn generic_webhook_accepts_hmac_signatures(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body =
        json!({"name": "QueueBacklog", "service": "queue", "severity": "critical"}).to_string();
    let path = "/api/v1/alerts/webhook";
    let signed = server
        .post_json(
            path,
            None,
            &[("x-awoooi-signature", &hmac_hex(WEBHOOK_SECRET, &body))],
            body.clone(),
        )
        .await;
    assert_eq!(signed.status(), 202);
    let wrong = server
        .post_json(
            path,
            None,
            &[("x-awoooi-signature", &hmac_hex("nope", &body))],
            body.clone(),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let unsigned = server.post_json(path, None, &[], body).await;
    assert_eq!(unsigned.status(), 401);
}

async fn grafana_and_graphql_inputs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let response = server
        .post_json("/api/v1/alerts/grafana", Some(&token), &[], GRAFANA)
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["incidents"][0].clone();
    let disk = incident(&server, &token, id.as_str().unwrap()).await;
    assert_eq!(disk["service"], "order-api");
    assert_eq!(disk["title"], "disk 95% on node [IP_1]");

    let mutation = "mutation($input: AlertInput!) { ingestAlert(input: $input) { id title service severity } }";
    let made = server
        .graphql(
            Some(&token),
            mutation,
            json!({"input": {"name": "OOMKilled", "service": "order-api", "severity": "critical",
                "labels": {"pod": "order-api-7d4b9c8f6d-x2k9q"}, "description": "killed at 10.9.8.7"}}),
        )
        .await;
    assert_eq!(made["data"]["ingestAlert"]["id"], id, "{made}");
    assert_eq!(made["data"]["ingestAlert"]["severity"], "CRITICAL");

    let viewer = server.signed_in("erin", "viewer").await;
    let denied = server
        .graphql(Some(&viewer), mutation, json!({"input": {"name": "x"}}))
        .await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let invalid = server
        .graphql(Some(&token), mutation, json!({"input": {"name": " "}}))
        .await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        invalid["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("input.name")
    );
}

async fn incident_updates_are_live(backend: Backend) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let mut socket = server
        .subscribe(
            &token,
            "subscription { incidentUpdates { id title status } }",
        )
        .await;
    // Let the subscription start before the alert arrives.
    let mut next = async || loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an update within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "connection_ack" {
                return value;
            }
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let posted = post_alertmanager(&server, &token, ALERTMANAGER).await;
    let update = next().await;
    assert_eq!(update["type"], "next", "{update}");
    assert_eq!(
        update["payload"]["data"]["incidentUpdates"]["id"],
        posted["incidents"][0]
    );
}

/// Values of every detector kind, and an Alertmanager body carrying all of them.
fn pii_corpus() -> (Vec<&'static str>, String) {
    let raw = [
        "192.168.1.100",
        "2001:db8::8a2e:370:7334",
        "admin@company.com",
        "3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU",
        "00:1A:2b:3C:4d:5E",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "xoxb-123456789012-abcdefghij",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk-ant-api03-abcdefghijklmnopqrstuvwx",
        "abcdef0123456789abcdef",
        "hunter22",
        "s3cr3tpass",
    ];
    let text = format!(
        "client {} / {} mailed {} req {} jwt {} mac {} card {} key {} \
         aws_secret_access_key={} gh {} slack {} stripe {} llm {} Authorization: Bearer {} \
         password={} dsn postgres://app:{}@db:5432/app",
        raw[0],
        raw[1],
        raw[2],
        raw[3],
        raw[4],
        raw[5],
        raw[6],
        raw[7],
        raw[8],
        raw[9],
        raw[10],
        raw[11],
        raw[12],
        raw[13],
        raw[14],
        raw[15]
    );
    let body = json!({"version": "4", "alerts": [
        {"status": "firing", "labels": {"alertname": format!("Leak {}", raw[0]), "service": "checkout",
            "instance": format!("{}:9100", raw[0]), "user": raw[2]},
         "annotations": {"description": text.clone(), "summary": format!("from {}", raw[1])},
         "generatorURL": format!("http://prom/graph?user={}&token={}", raw[2], raw[14])},
        {"status": "firing", "labels": {"alertname": "Second", "service": "checkout", "peer": raw[0]},
         "annotations": {"description": format!("again {} and {}", raw[0], raw[2])}}
    ]})
    .to_string();
    (raw.to_vec(), body)
}

/// A webhook receiver that records every request it gets, headers and body, as text.
async fn recording_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let record = record.clone();
            async move {
                let mut text = format!("{headers:?}\n");
                text.push_str(&String::from_utf8_lossy(&body));
                record.lock().unwrap().push(text);
                "ok"
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// Every detector kind pushed through ingestion and on through the whole loop (analysis,
/// notifications, resolution, postmortem, knowledge, the archive's queue, a FinOps scan): no
/// raw value in any column of any table, in any API answer, or in any request a notification
/// channel receives.
async fn raw_values_never_reach_storage_or_the_api(backend: Backend) {
    let (hook, received) = recording_receiver().await;
    // The archive points at a store that is not there: its objects wait in the database.
    let toml = format!(
        "[[notifications.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}/hook\"\n\
         [archive]\nupload_every_seconds = 60\n\
         [archive.s3]\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"leaks\"\n"
    );
    let server = TestServer::start_with_env(
        backend,
        &[],
        &toml,
        &[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")],
    )
    .await;
    let token = server.signed_in("alice", "devops").await;
    let (raw, body) = pii_corpus();
    let posted = post_alertmanager(&server, &token, &body).await;
    let id = posted["incidents"][0].as_str().unwrap().to_owned();
    assert_eq!(posted["incidents"].as_array().unwrap().len(), 1);
    // Resolve it: postmortem, path-A knowledge entry, archive object, notifications.
    let resolved = body.replace("\"status\":\"firing\"", "\"status\":\"resolved\"");
    assert_ne!(resolved, body);
    post_alertmanager(&server, &token, &resolved).await;
    let incident_id: i32 = id.parse().unwrap();
    let mut stored = false;
    for _ in 0..400 {
        use sea_orm::EntityTrait;
        if entity::postmortem::Entity::find_by_id(incident_id)
            .one(&server.state.db)
            .await
            .unwrap()
            .is_some()
        {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored, "the incident's postmortem was never written");
    let scan = server
        .graphql(
            Some(&token),
            "mutation { runFinopsScan { monthlyWaste } }",
            json!({}),
        )
        .await;
    assert_eq!(scan["errors"], Value::Null, "{scan}");
    for _ in 0..400 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let requests = received.lock().unwrap().join("\n");
    assert!(requests.contains("INCIDENT_OPENED"), "{requests}");
    for value in &raw {
        assert!(
            !requests.contains(value),
            "{value} reached a notification channel: {requests}"
        );
    }

    // The API answer.
    let answer = incident(&server, &token, &id).await.to_string();
    for value in &raw {
        assert!(
            !answer.contains(value),
            "{value} leaked into the API: {answer}"
        );
    }
    // Labels are consistent across the incident's alerts.
    let view = incident(&server, &token, &id).await;
    let ip_label = view["alerts"][1]["labels"]["peer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip_label.starts_with("[IP_"), "{ip_label}");
    assert!(
        view["alerts"][0]["labels"]["instance"]
            .as_str()
            .unwrap()
            .starts_with(&ip_label)
    );
    assert!(
        view["alerts"][1]["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains(&ip_label)
    );

    // Every text column of every table.
    let dump = server.dump_text_columns().await;
    for needle in ["# Postmortem:", "POSTMORTEM", "INCIDENT_OPENED"] {
        assert!(dump.contains(needle), "the scan saw no {needle}");
    }
    for value in &raw {
        assert!(!dump.contains(value), "{value} stored in clear");
    }
    // The SQLite file itself, WAL included.
    if backend == Backend::Sqlite {
        let bytes = server.sqlite_bytes();
        for value in &raw {
            let found = bytes.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!found, "{value} found in the database file");
        }
    }
}

/// The real binary at the most verbose log level, carrying the corpus through the loop —
/// ingest, analysis, a notification channel, resolution, postmortem and knowledge entry: what
/// it logs contains none of the raw values, nor the session token.
async fn raw_values_never_reach_the_logs(backend: Backend) {
    use sea_orm::EntityTrait;
    let scratch = ScratchDb::new(backend).await;
    let (hook, received) = recording_receiver().await;
    let config = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!(
            "[[notifications.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}/hook\"\n"
        ),
    )
    .unwrap();
    let dir = scratch.dir.to_str().unwrap();
    let log = scratch.dir.join("server.log");
    let server = Process::spawn(
        &[
            "--demo",
            "--database-url",
            &scratch.url,
            "--data-dir",
            dir,
            "--site-root",
            &format!("{dir}/site"),
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            ("RUST_LOG", "trace"),
            ("AWOOOI_DEMO_PASSWORD", "log-test-password"),
        ],
        log.clone(),
    )
    .await;
    let token = server.login("alice", "log-test-password").await;
    let (raw, body) = pii_corpus();
    let post =
        |body: String| server.post_json("/api/v1/alerts/alertmanager", Some(&token), &[], body);
    let response = post(body.clone()).await;
    assert_eq!(response.status(), 202);
    let id: i32 = response.json::<Value>().await.unwrap()["incidents"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let db = sea_orm::Database::connect(&scratch.url).await.unwrap();
    let mut analysed = false;
    for _ in 0..400 {
        let found = entity::analysis::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .any(|a| a.incident_id == id);
        if found {
            analysed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(analysed, "the incident was never analysed");
    let resolved = body.replace("\"status\":\"firing\"", "\"status\":\"resolved\"");
    assert_eq!(post(resolved).await.status(), 202);
    let mut stored = false;
    for _ in 0..400 {
        let postmortem = entity::postmortem::Entity::find_by_id(id)
            .one(&db)
            .await
            .unwrap();
        if postmortem.is_some() && received.lock().unwrap().len() >= 2 {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored, "no postmortem, or the channel heard nothing");
    // The knowledge entry is delivered from the outbox after the postmortem is stored: its
    // line is waited for before the server stops.
    let mut delivered = false;
    for _ in 0..400 {
        if std::fs::read_to_string(&log).is_ok_and(|logs| logs.contains("knowledge entry")) {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "no knowledge entry was logged");
    drop(server);
    let logs = std::fs::read_to_string(&log).unwrap();
    for needle in ["AWOOOI listening", "knowledge entry", "TRACE"] {
        assert!(logs.contains(needle), "the logs hold no {needle}");
    }
    for value in &raw {
        assert!(!logs.contains(value), "{value} appeared in the logs");
    }
    assert!(
        !logs.contains(&token),
        "a session token appeared in the logs"
    );
}

/// An Alertmanager body: `(alert, status)` pairs, alert `k` on service `svc-{k / 5}`.
fn numbered_alerts(alerts: &[(usize, &str)]) -> String {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|&(k, status)| {
            json!({"status": status,
                "labels": {"alertname": format!("Alert{}", k % 5), "service": format!("svc-{}", k / 5),
                    "severity": "warning"},
                "annotations": {"summary": "errors"},
                "startsAt": "2026-11-25T03:00:00Z",
                "fingerprint": format!("fp{k:04}")})
        })
        .collect();
    json!({"version": "4", "status": "firing", "alerts": alerts}).to_string()
}

/// Concurrent requests are committed together (group commit, one statement per kind of
/// change): every send of an alert is counted once, whatever request or group carried it and
/// however often one batch repeats it, and the resolved alerts and incidents are exactly those
/// that were resolved.
async fn concurrent_batches_count_every_send_and_resolve_what_resolved(backend: Backend) {
    const ALERTS: usize = 40; // 8 services × 5 alert names
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let all: Vec<(usize, &str)> = (0..ALERTS).map(|k| (k, "firing")).collect();
    post_alertmanager(&server, &token, &numbered_alerts(&all)).await;

    // 16 requests at once; request r sends alert k (r + k) % 3 times, so sends differ per
    // alert and a batch holds repeats of its own.
    let mut sent = [1usize; ALERTS];
    let bodies: Vec<String> = (0..16)
        .map(|r| {
            let mut batch = Vec::new();
            for (k, sends) in sent.iter_mut().enumerate() {
                for _ in 0..(r + k) % 3 {
                    batch.push((k, "firing"));
                    *sends += 1;
                }
            }
            numbered_alerts(&batch)
        })
        .collect();
    let posts = bodies
        .iter()
        .map(|body| post_alertmanager(&server, &token, body));
    futures_util::future::join_all(posts).await;

    // Then, at once: services 0–3 resolve every alert, services 4–7 fire theirs again.
    let bodies: Vec<String> = (0..8)
        .map(|service| {
            let status = if service < 4 { "resolved" } else { "firing" };
            let batch: Vec<(usize, &str)> = (service * 5..service * 5 + 5)
                .map(|k| (k, status))
                .collect();
            numbered_alerts(&batch)
        })
        .collect();
    for sends in &mut sent[20..] {
        *sends += 1;
    }
    let posts = bodies
        .iter()
        .map(|body| post_alertmanager(&server, &token, body));
    futures_util::future::join_all(posts).await;

    let answer = server
        .graphql(
            Some(&token),
            "{ incidents(first: 100) { edges { node { status service
               alerts { fingerprint status count } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let incidents = answer["data"]["incidents"]["edges"].as_array().unwrap();
    assert_eq!(incidents.len(), 8, "one incident per service: {answer}");
    let mut seen = 0;
    for edge in incidents {
        let node = &edge["node"];
        let service: usize = node["service"].as_str().unwrap()["svc-".len()..]
            .parse()
            .unwrap();
        let resolved = service < 4;
        assert_eq!(node["status"] == "RESOLVED", resolved, "{node}");
        for alert in node["alerts"].as_array().unwrap() {
            let k: usize = alert["fingerprint"].as_str().unwrap()[2..].parse().unwrap();
            assert_eq!(
                k / 5,
                service,
                "{alert} is in the incident of svc-{service}"
            );
            assert_eq!(alert["count"], sent[k], "sends of alert {k}: {alert}");
            let status = if resolved { "RESOLVED" } else { "FIRING" };
            assert_eq!(alert["status"], status, "{alert}");
            seen += 1;
        }
    }
    assert_eq!(seen, ALERTS);
}

/// The writer keeps label maps open between groups; a comment that adds labels to the
/// incident's map in between must be seen by the next request: the address the comment named
/// keeps the comment's label, and the comment's labels are not lost.
async fn labels_a_comment_adds_between_two_requests_are_kept(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let alert = |name: &str, description: &str| {
        json!({"version": "4", "status": "firing", "alerts": [{"status": "firing",
            "labels": {"alertname": name, "service": "gateway", "severity": "warning"},
            "annotations": {"description": description},
            "startsAt": "2026-11-25T03:00:00Z"}]})
        .to_string()
    };
    let first = post_alertmanager(&server, &token, &alert("Down", "10.0.0.1 unreachable")).await;
    let id = first["incidents"][0].as_str().unwrap().to_owned();
    assert_eq!(
        comment(
            &server,
            &token,
            &id,
            "10.0.0.8 and 10.0.0.9 are the gateways"
        )
        .await,
        "[IP_2] and [IP_3] are the gateways"
    );
    let second = post_alertmanager(&server, &token, &alert("Lost", "10.0.0.9 lost")).await;
    assert_eq!(second["incidents"][0], id.as_str());
    let found = incident(&server, &token, &id).await;
    let lost = found["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Lost")
        .unwrap();
    assert_eq!(lost["annotations"]["description"], "[IP_3] lost", "{found}");
    // And the comment's labels are still in the map: a later comment reuses them.
    assert_eq!(
        comment(&server, &token, &id, "10.0.0.8 again").await,
        "[IP_2] again"
    );
}

/// Comments on incident `id`; returns the body as stored.
async fn comment(server: &TestServer, token: &str, id: &str, body: &str) -> Value {
    let answer = server
        .graphql(
            Some(token),
            "mutation($i: ID!, $b: String!) { commentOnIncident(incidentId: $i, body: $b) { body } }",
            json!({"i": id, "b": body}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["commentOnIncident"]["body"].clone()
}

/// One firing alert on `gateway` named `name` whose description is `description`.
fn gateway_alert(name: &str, description: &str) -> String {
    json!({"version": "4", "status": "firing", "alerts": [{"status": "firing",
        "labels": {"alertname": name, "service": "gateway", "severity": "warning"},
        "annotations": {"description": description},
        "startsAt": "2026-11-25T03:00:00Z"}]})
    .to_string()
}

/// The description of incident `id`'s alert named `name`.
async fn description_of(server: &TestServer, token: &str, id: &str, name: &str) -> String {
    let found = incident(server, token, id).await;
    found["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no alert {name}: {found}"))["annotations"]["description"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `(revision, base_revision)` of incident `id`'s label map and the revisions of its segments.
async fn vault_rows(server: &TestServer, id: &str) -> ((i64, i64), Vec<i64>) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &server.state.db;
    let backend = db.get_database_backend();
    let head = db
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT CAST(revision AS BIGINT) AS r, CAST(base_revision AS BIGINT) AS b \
                 FROM incident_vaults WHERE incident_id = {id}"
            ),
        ))
        .await
        .unwrap()
        .expect("the incident has a label map");
    let segments = db
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT CAST(revision AS BIGINT) AS r FROM incident_vault_segments \
                 WHERE incident_id = {id} ORDER BY revision"
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64>("", "r").unwrap())
        .collect();
    (
        (
            head.try_get::<i64>("", "r").unwrap(),
            head.try_get::<i64>("", "b").unwrap(),
        ),
        segments,
    )
}

/// Forty requests one after another, each adding an address to one incident's label map: the
/// map is stored as segments and, past `SEGMENTS_PER_BASE` of them, a new base. Every address
/// keeps its first label, as the writer (its open map) and a comment (the map read from the
/// vault) both show, and the segments left are exactly the stores after the base.
async fn a_label_map_stored_in_many_groups_keeps_every_label(backend: Backend) {
    const REQUESTS: usize = 40;
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let mut id = String::new();
    for i in 0..REQUESTS {
        let posted = post_alertmanager(
            &server,
            &token,
            &gateway_alert(&format!("Down{i}"), &format!("10.1.0.{i} unreachable")),
        )
        .await;
        id = posted["incidents"][0].as_str().unwrap().to_owned();
    }
    for i in [0, 1, 31, 32, 33, REQUESTS - 1] {
        assert_eq!(
            description_of(&server, &token, &id, &format!("Down{i}")).await,
            format!("[IP_{}] unreachable", i + 1)
        );
    }
    let ((revision, base), segments) = vault_rows(&server, &id).await;
    assert!(
        revision >= REQUESTS as i64 - 1,
        "one store per request that added labels: revision {revision}"
    );
    assert!(base > 0, "no new base after {revision} stores");
    assert_eq!(segments, ((base + 1)..=revision).collect::<Vec<_>>());
    assert!(segments.len() < server::base::vault::SEGMENTS_PER_BASE as usize);
    // Read from the vault: base and segments give every label, and numbering goes on.
    assert_eq!(
        comment(
            &server,
            &token,
            &id,
            "10.1.0.0, 10.1.0.32, 10.1.0.39 and 10.1.0.99"
        )
        .await,
        format!("[IP_1], [IP_33], [IP_{REQUESTS}] and [IP_{}]", REQUESTS + 1)
    );
    // And the writer, reading the comment's segment, gives that address the same label.
    post_alertmanager(&server, &token, &gateway_alert("Late", "10.1.0.99 late")).await;
    assert_eq!(
        description_of(&server, &token, &id, "Late").await,
        format!("[IP_{}] late", REQUESTS + 1)
    );
}

/// A label map whose segment is gone does not open as a smaller map (which would give known
/// addresses new labels): the comment that needs it fails and is not stored.
async fn a_label_map_missing_a_segment_is_refused(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let mut id = String::new();
    for i in 0..3 {
        let posted = post_alertmanager(
            &server,
            &token,
            &gateway_alert(&format!("Down{i}"), &format!("10.2.0.{i} unreachable")),
        )
        .await;
        id = posted["incidents"][0].as_str().unwrap().to_owned();
    }
    let (_, segments) = vault_rows(&server, &id).await;
    assert_eq!(segments, vec![1, 2]);
    let db = &server.state.db;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        format!("DELETE FROM incident_vault_segments WHERE incident_id = {id} AND revision = 1"),
    ))
    .await
    .unwrap();
    let answer = server
        .graphql(
            Some(&token),
            "mutation($i: ID!, $b: String!) { commentOnIncident(incidentId: $i, body: $b) { body } }",
            json!({"i": id, "b": "10.2.0.1 again"}),
        )
        .await;
    assert_ne!(answer["errors"], Value::Null, "{answer}");
    let stored = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM incident_comments WHERE incident_id = {id}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(stored, 0);
}

/// The writer keeps a map open at the revision it stored; comments then store more than
/// `SEGMENTS_PER_BASE` times, so a new base takes in the segments the writer would have read.
/// The next request reads the whole map again: the addresses the comments named keep their
/// labels.
async fn labels_stay_consistent_when_a_new_base_replaces_what_the_writer_read(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let first = post_alertmanager(&server, &token, &gateway_alert("Down", "10.3.0.1 down")).await;
    let id = first["incidents"][0].as_str().unwrap().to_owned();
    let comments = server::base::vault::SEGMENTS_PER_BASE + 2;
    for i in 0..comments {
        assert_eq!(
            comment(&server, &token, &id, &format!("10.3.1.{i} checked")).await,
            format!("[IP_{}] checked", i + 2)
        );
    }
    let ((revision, base), _) = vault_rows(&server, &id).await;
    assert!(base > 0, "no new base after {revision} stores");
    post_alertmanager(
        &server,
        &token,
        &gateway_alert(
            "Lost",
            &format!("10.3.1.{} and 10.3.0.1 lost", comments - 1),
        ),
    )
    .await;
    assert_eq!(
        description_of(&server, &token, &id, "Lost").await,
        format!("[IP_{}] and [IP_1] lost", comments + 1)
    );
}
