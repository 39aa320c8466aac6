//! End-to-end tests of the HTTP/GraphQL surface against a real server on a real socket,
//! each run on SQLite and on PostgreSQL (a fresh database per test, dropped afterwards).
//!
//! PostgreSQL is reached at `AWOOOI_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), which must allow CREATE DATABASE.

use crate::support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Backend, TestServer};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use support::PASSWORD;

on_both_backends!(
    server_info_needs_a_token,
    cli_users_login_me_and_api_tokens,
    heartbeat_over_graphql_transport_ws,
    heartbeat_over_legacy_graphql_ws,
    health_readiness_and_metrics,
    pages_need_a_session_and_render_on_the_server,
    graphiql_and_sdl_are_for_signed_in_callers,
    malformed_requests_get_clear_errors,
);

fn code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

async fn server_info_needs_a_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anonymous = server
        .graphql(None, "{ serverInfo { version } }", json!({}))
        .await;
    assert_eq!(code(&anonymous), Some("UNAUTHENTICATED"), "{anonymous}");
    assert!(anonymous["data"].is_null(), "{anonymous}");

    let token = server.signed_in("alice", "devops").await;
    let info = server
        .graphql(
            Some(&token),
            "{ serverInfo { version database uptimeSeconds } }",
            json!({}),
        )
        .await;
    assert_eq!(info["errors"], Value::Null, "{info}");
    assert_eq!(
        info["data"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(info["data"]["serverInfo"]["database"], backend.name());
    assert!(
        info["data"]["serverInfo"]["uptimeSeconds"]
            .as_i64()
            .unwrap()
            >= 0
    );

    let forged = server
        .graphql(
            Some("awoooi_s_00000000"),
            "{ serverInfo { version } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&forged), Some("UNAUTHENTICATED"), "{forged}");
}

async fn cli_users_login_me_and_api_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.add_user("alice", "devops", PASSWORD);

    let duplicate = server.cli(&["user", "add", "alice", "--role", "sre"], Some(PASSWORD));
    assert!(!duplicate.status.success());
    assert!(
        duplicate.stderr.contains("user `alice` already exists"),
        "{}",
        duplicate.stderr
    );
    let short = server.cli(&["user", "add", "bob", "--role", "sre"], Some("short"));
    assert!(
        short.stderr.contains("password too short"),
        "{}",
        short.stderr
    );

    let login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username role kind } } }";
    let wrong_password = server
        .graphql(None, login, json!({"u": "alice", "p": "nope nope nope"}))
        .await;
    let unknown_user = server
        .graphql(None, login, json!({"u": "mallory", "p": PASSWORD}))
        .await;
    assert_eq!(code(&wrong_password), Some("UNAUTHENTICATED"));
    assert_eq!(
        wrong_password["errors"][0]["message"], "invalid username or password",
        "{wrong_password}"
    );
    assert_eq!(
        wrong_password["errors"][0]["message"], unknown_user["errors"][0]["message"],
        "unknown user and wrong password must answer alike"
    );

    let ok = server
        .graphql(None, login, json!({"u": "alice", "p": PASSWORD}))
        .await;
    assert_eq!(ok["data"]["login"]["user"]["role"], "DEVOPS", "{ok}");
    let token = ok["data"]["login"]["token"].as_str().unwrap().to_owned();
    let me = server
        .graphql(Some(&token), "{ me { username role kind } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({"username": "alice", "role": "DEVOPS", "kind": "USER"})
    );
    let nobody = server.graphql(None, "{ me { username } }", json!({})).await;
    assert_eq!(nobody["data"]["me"], Value::Null);

    // API tokens: created by the CLI, shown once, usable as bearer tokens, revocable.
    let created = server.cli(&["token", "create", "alertmanager", "--role", "sre"], None);
    assert!(created.status.success(), "{}", created.stderr);
    let api_token = created.stdout.trim().to_owned();
    assert!(api_token.starts_with("awoooi_t_"), "{api_token}");
    let me = server
        .graphql(Some(&api_token), "{ me { username role kind } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({"username": "alertmanager", "role": "SRE", "kind": "API_TOKEN"})
    );
    let listed = server.cli(&["token", "list"], None);
    assert!(listed.stdout.contains("alertmanager") && !listed.stdout.contains(&api_token));
    let revoked = server.cli(&["token", "revoke", "1"], None);
    assert!(revoked.status.success(), "{}", revoked.stderr);
    let after = server
        .graphql(Some(&api_token), "{ serverInfo { version } }", json!({}))
        .await;
    assert_eq!(code(&after), Some("UNAUTHENTICATED"), "{after}");
    let missing = server.cli(&["token", "revoke", "99"], None);
    assert!(
        missing.stderr.contains("no API token with id 99"),
        "{}",
        missing.stderr
    );

    // Only admins create tokens over GraphQL.
    let create = "mutation { createApiToken(name: \"ci\", role: VIEWER) { token } }";
    let denied = server.graphql(Some(&token), create, json!({})).await;
    assert_eq!(code(&denied), Some("FORBIDDEN"), "{denied}");
    server.add_user("root", "admin", PASSWORD);
    let admin = server.login("root", PASSWORD).await;
    let made = server.graphql(Some(&admin), create, json!({})).await;
    assert!(
        made["data"]["createApiToken"]["token"]
            .as_str()
            .unwrap()
            .starts_with("awoooi_t_")
    );

    // Logout ends exactly that session.
    let out = server
        .graphql(Some(&token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true);
    let gone = server
        .graphql(Some(&token), "{ me { username } }", json!({}))
        .await;
    assert_eq!(gone["data"]["me"], Value::Null);
}

async fn ws_connect(server: &TestServer, protocol: &str) -> support::Ws {
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "server must pick the protocol the client asked for"
    );
    socket
}

/// Connects with `protocol`, sends `connection_init` with `payload`, expects the ack.
async fn ws_init(server: &TestServer, protocol: &str, payload: Value) -> support::Ws {
    let mut socket = ws_connect(server, protocol).await;
    send_json(
        &mut socket,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

async fn next_json(socket: &mut support::Ws) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn send_json(socket: &mut support::Ws, value: Value) {
    socket.send(Message::text(value.to_string())).await.unwrap();
}

async fn heartbeat_over_graphql_transport_ws(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;

    let mut socket = ws_init(
        &server,
        "graphql-transport-ws",
        json!({"Authorization": format!("Bearer {token}")}),
    )
    .await;
    send_json(
        &mut socket,
        json!({"id": "1", "type": "subscribe",
        "payload": {"query": "subscription { heartbeat(intervalMs: 100) { seq at } }"}}),
    )
    .await;
    for expected in 1..=3 {
        let message = next_json(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "1");
        assert_eq!(
            message["payload"]["data"]["heartbeat"]["seq"], expected,
            "{message}"
        );
    }
    send_json(&mut socket, json!({"id": "1", "type": "complete"})).await;

    // Without credentials the connection opens but the subscription is refused with a code.
    let mut anonymous = ws_init(&server, "graphql-transport-ws", json!({})).await;
    send_json(
        &mut anonymous,
        json!({"id": "a", "type": "subscribe",
        "payload": {"query": "subscription { heartbeat { seq } }"}}),
    )
    .await;
    let refused = next_json(&mut anonymous).await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        code(&refused["payload"]),
        Some("UNAUTHENTICATED"),
        "{refused}"
    );

    // The `{"token": …}` form works too; a bad token is refused at connection time.
    let _acknowledged = ws_init(&server, "graphql-transport-ws", json!({"token": token})).await;
    let mut forged = ws_connect(&server, "graphql-transport-ws").await;
    send_json(
        &mut forged,
        json!({"type": "connection_init", "payload": {"token": "awoooi_s_bad"}}),
    )
    .await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), forged.next())
        .await
        .unwrap();
    assert!(
        matches!(closed, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "forged token must close the socket: {closed:?}"
    );
}

async fn heartbeat_over_legacy_graphql_ws(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let mut socket = ws_init(&server, "graphql-ws", json!({"token": token})).await;
    send_json(
        &mut socket,
        json!({"id": "7", "type": "start",
        "payload": {"query": "subscription { heartbeat(intervalMs: 100) { seq } }"}}),
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = next_json(&mut socket).await;
        if message["type"] == "data" {
            seen.push(
                message["payload"]["data"]["heartbeat"]["seq"]
                    .as_i64()
                    .unwrap(),
            );
        }
    }
    assert_eq!(seen, [1, 2]);
}

async fn health_readiness_and_metrics(backend: Backend) {
    let server = TestServer::start(backend).await;
    let health = server.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    let ready = server.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "database": "ok", "migrations": "applied"})
    );
    // Operations are counted by the name the client sends (as graphql_client and Apollo do).
    let named = server
        .post_raw(
            "/graphql",
            "application/json",
            r#"{"query": "query Probe { me { username } }", "operationName": "Probe"}"#,
        )
        .await;
    assert_eq!(named.status(), 200);
    let metrics = server.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/readyz",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"graphql_operations_total{operation="Probe",via="http"}"#),
        "{metrics}"
    );

    if backend == Backend::Postgres {
        // Take the database away under the running server: readiness must fail, liveness not.
        server.drop_database_now().await;
        let unready = server.get("/readyz", None).await;
        assert_eq!(unready.status(), 503);
        let body = unready.json::<Value>().await.unwrap();
        assert_eq!(body["database"], "unreachable", "{body}");
        assert_eq!(server.get("/healthz", None).await.status(), 200);
    }
}

async fn pages_need_a_session_and_render_on_the_server(backend: Backend) {
    let server = TestServer::start(backend).await;
    let home = server.get("/", None).await;
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/login");
    let incidents = server.get("/incidents", None).await;
    assert_eq!(incidents.headers()["location"], "/login");

    let login_page = server.get("/login", None).await;
    assert_eq!(login_page.status(), 200);
    assert_eq!(login_page.headers()["cache-control"], "no-store");
    let html = login_page.text().await.unwrap();
    assert!(html.contains("<form") && html.contains("Sign in"), "{html}");
    // No build hash in the test's site root: the unhashed names.
    assert!(
        html.contains("/pkg/awoooi.js") && html.contains(r#"href="/pkg/awoooi.css""#),
        "hydration script or stylesheet missing: {html}"
    );

    server.add_user("alice", "devops", PASSWORD);
    let bad = server.form_login("alice", "wrong password").await;
    assert_eq!(bad.headers()["location"], "/login?error=1");
    assert!(bad.headers().get("set-cookie").is_none());
    let good = server.form_login("alice", PASSWORD).await;
    assert_eq!(good.headers()["location"], "/");
    let cookie = good.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let dashboard = server.get("/", Some(&cookie)).await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    // Rendered on the server through the in-process GraphQL transport, as alice.
    assert!(html.contains(env!("CARGO_PKG_VERSION")), "{html}");
    assert!(html.contains("alice (DEVOPS)"), "{html}");
    assert!(html.contains(backend.name()), "{html}");
    for (page, text) in [
        ("/finops", "Monthly waste detected: "),
        ("/knowledge", "Type what you are looking for."),
        ("/approvals", "Nothing waits for a signature."),
        ("/trust", "No pattern has been decided yet."),
        ("/audit", "user.added"),
        ("/silences", "Holding now (0)"),
    ] {
        let response = server.get(page, Some(&cookie)).await;
        assert_eq!(response.status(), 200, "{page}");
        let html = response.text().await.unwrap();
        assert!(html.contains(text), "{page}: {html}");
    }
    let topology = server
        .get("/topology", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(topology.contains("No topology loaded"), "{topology}");
    // The incident list is rendered on the server, through the same GraphQL operations.
    let incidents = server
        .get("/incidents", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        incidents.contains("No incidents. A quiet night."),
        "{incidents}"
    );

    let out = server.post_form("/auth/logout", "", Some(&cookie)).await;
    assert_eq!(out.headers()["location"], "/login");
    assert_eq!(server.get("/", Some(&cookie)).await.status(), 303);
}

async fn graphiql_and_sdl_are_for_signed_in_callers(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(server.get("/graphql", None).await.status(), 303);
    assert_eq!(
        server.get("/graphql/schema.graphql", None).await.status(),
        401
    );
    let token = server.signed_in("erin", "viewer").await;
    let auth = format!("Bearer {token}");
    let playground = server.get_with("/graphql", "authorization", &auth).await;
    assert_eq!(playground.status(), 200);
    assert!(
        playground
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
    let sdl = server
        .get_with("/graphql/schema.graphql", "authorization", &auth)
        .await;
    assert_eq!(sdl.status(), 200);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).unwrap();
    assert_eq!(sdl.text().await.unwrap(), committed);
}

async fn malformed_requests_get_clear_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .post_raw("/graphql", "application/json", "{not json")
        .await;
    assert_eq!(response.status(), 400);
    let response = server.graphql(None, "{ nosuchfield }", json!({})).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchfield"),
        "{response}"
    );
    let token = server.signed_in("bob", "sre").await;
    let mut socket = ws_init(&server, "graphql-transport-ws", json!({"token": token})).await;
    send_json(
        &mut socket,
        json!({"id": "x", "type": "subscribe",
        "payload": {"query": "subscription { heartbeat(intervalMs: 5) { seq } }"}}),
    )
    .await;
    let refused = next_json(&mut socket).await;
    assert_eq!(
        code(&refused["payload"]),
        Some("BAD_USER_INPUT"),
        "{refused}"
    );
    assert_eq!(server.get("/no/such/page.txt", None).await.status(), 404);
}

/// Production PostgreSQL is usually reached over TLS: `sslmode=require` must work.
#[tokio::test]
async fn postgres_over_tls() {
    let admin = std::env::var("AWOOOI_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let separator = if admin.contains('?') { '&' } else { '?' };
    let db = server::base::db::connect(&format!("{admin}{separator}sslmode=require"))
        .await
        .expect("TLS connection to PostgreSQL");
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.try_get::<bool>("", "ssl").unwrap(),
        "the session is encrypted"
    );
}
