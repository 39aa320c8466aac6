//! Abuse and security limits over real HTTP: security headers, CSRF for cookie sessions, CORS,
//! body limits, GraphQL depth / alias / batch limits, introspection off, per-credential rate
//! limits, the failed sign-in lockout, and session revocation.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, PASSWORD, TestServer};

on_both_backends!(
    browsers_get_security_headers_and_cross_site_cookies_are_refused,
    graphql_documents_and_batches_are_bounded,
    callers_over_their_rate_get_429_and_others_do_not,
    five_wrong_passwords_lock_the_name_and_sessions_can_be_revoked,
    a_client_sending_its_headers_slowly_is_cut_off,
    a_cookie_websocket_from_another_origin_is_refused,
    two_replicas_share_the_sign_in_lockout_and_the_rate_limit_and_logouts_reach_both,
);

/// With the bus on Redis, two replicas count sign-in failures and requests together: five
/// wrong passwords spread over both lock the name on both, and a credential's burst spent
/// across both is spent (N replicas no longer allow N times the attempts).
async fn two_replicas_share_the_sign_in_lockout_and_the_rate_limit_and_logouts_reach_both(
    backend: Backend,
) {
    let redis =
        std::env::var("AWOOOI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let toml = format!(
        "[bus]\nbackend = \"redis\"\nchannel = \"awoooi:test:{:016x}\"\n\
         [graphql]\nrate_per_minute = 60\nrate_burst = 10\n",
        rand::random::<u64>()
    );
    let a = TestServer::start_configured(backend, &["--redis-url", &redis], &toml).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = support::Api::new(format!("http://{}", listener.local_addr().unwrap()));
    let replica = a.second_replica().await;
    tokio::spawn(server::edge::http::serve_on(
        listener,
        server::edge::http::router(replica),
        std::time::Duration::from_secs(10),
        std::future::pending(),
    ));

    a.add_user("dana", "devops", PASSWORD);
    let login =
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";
    let wrong = json!({"u": "dana", "p": "not her password"});
    for replica in [&a.api, &a.api, &a.api, &b, &b] {
        let answer = replica.graphql(None, login, wrong.clone()).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    for replica in [&a.api, &b] {
        let locked = replica
            .graphql(None, login, json!({"u": "dana", "p": PASSWORD}))
            .await;
        assert_eq!(
            locked["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "locked on every replica: {locked}"
        );
    }

    let busy = a.signed_in("busy", "sre").await;
    let query = json!({"query": "{ me { username } }"}).to_string();
    // The burst (ten) spread over both replicas…
    for replica in std::iter::repeat_n([&a.api, &b], 5).flatten() {
        let ok = replica
            .post_json("/graphql", Some(&busy), &[], query.clone())
            .await;
        assert_eq!(ok.status(), 200);
    }
    // …is spent on both.
    for replica in [&a.api, &b] {
        let limited = replica
            .post_json("/graphql", Some(&busy), &[], query.clone())
            .await;
        assert_eq!(limited.status(), 429);
    }

    // Each replica trusts a resolved session for `[auth] credential_cache_seconds` (2 s by
    // default): a logout on A is in force on A at once, and on B once that time has passed.
    let roaming = a.signed_in("roaming", "sre").await;
    let me = "{ me { username } }";
    let seen = b.graphql(Some(&roaming), me, json!({})).await;
    assert_eq!(seen["data"]["me"]["username"], "roaming", "{seen}");
    let out = a
        .graphql(Some(&roaming), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let on_a = a.graphql(Some(&roaming), me, json!({})).await;
    assert_eq!(on_a["data"]["me"], Value::Null, "{on_a}");
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let on_b = b.graphql(Some(&roaming), me, json!({})).await;
    assert_eq!(on_b["data"]["me"], Value::Null, "{on_b}");
}

/// A browser on another origin (or the same host under another scheme or port) cannot open a
/// subscription with the console's session cookie; the console's own origin can.
async fn a_cookie_websocket_from_another_origin_is_refused(backend: Backend) {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
    let server = TestServer::start(backend).await;
    let session = server.signed_in("wendy", "viewer").await;
    let host = server.base.trim_start_matches("http://").to_owned();
    let upgrade = |origin: String| {
        let mut request = server.ws_url().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        headers.insert(
            "cookie",
            format!("awoooi_session={session}").parse().unwrap(),
        );
        headers.insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    let port: u16 = host.rsplit_once(':').unwrap().1.parse().unwrap();
    for origin in [
        "https://evil.example".to_owned(),
        format!("https://{host}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        match upgrade(origin.clone()).await {
            Err(Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}");
            }
            Err(other) => panic!("{origin}: unexpected error {other}"),
            Ok(_) => panic!("{origin}: a cross-origin cookie upgrade was accepted"),
        }
    }
    let (socket, response) = upgrade(format!("http://{host}")).await.unwrap();
    assert_eq!(response.status(), 101);
    drop(socket);
}

/// A client that never finishes its request headers is disconnected after
/// `header_read_timeout_seconds`; a prompt client on another connection is served meanwhile.
async fn a_client_sending_its_headers_slowly_is_cut_off(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server =
        TestServer::start_configured(backend, &[], "[http]\nheader_read_timeout_seconds = 1\n")
            .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // One more header line every 300 ms, never the blank line that ends them.
    let mut buffer = [0u8; 512];
    let closed = loop {
        tokio::select! {
            read = slow.read(&mut buffer) => break matches!(read, Ok(0) | Err(_))
                || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {
                if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    break true;
                }
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(8) {
            break false;
        }
    };
    assert!(closed, "the slow client was still connected after 8 s");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "cut off before its timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/healthz", None).await.status(), 200);
}

async fn browsers_get_security_headers_and_cross_site_cookies_are_refused(backend: Backend) {
    let server = TestServer::start_configured(
        backend,
        &[],
        "[http]\ncors_origins = [\"https://console.example.com\"]\n",
    )
    .await;
    // Headers on an HTML page and on the API.
    let page = server.get("/login", None).await;
    let headers = page.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    let health = server.get("/healthz", None).await;
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert!(health.headers().get("content-security-policy").is_none());
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "HSTS only when cookies are Secure (HTTPS)"
    );

    // A session cookie from a form login: HttpOnly, SameSite.
    server.add_user("carol", "cto", PASSWORD);
    let login = server.form_login("carol", PASSWORD).await;
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let client = reqwest::Client::new();
    let me = |origin: Option<&'static str>| {
        let mut request = client
            .post(format!("{}/graphql", server.base))
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .body(json!({"query": "{ me { username } }"}).to_string());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let host = server.base.trim_start_matches("http://").to_owned();
    let same: &'static str = Box::leak(format!("http://{host}").into_boxed_str());
    let allowed = me(Some(same)).await.unwrap();
    assert_eq!(allowed.status(), 200);
    let allowed: Value = allowed.json().await.unwrap();
    assert_eq!(allowed["data"]["me"]["username"], "carol", "{allowed}");
    assert_eq!(
        me(None).await.unwrap().status(),
        200,
        "non-browser clients send no Origin"
    );
    let refused = me(Some("https://evil.example")).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("cross-site"));
    let sign_out = client
        .post(format!("{}/auth/logout", server.base))
        .header("cookie", &cookie)
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sign_out.status(),
        403,
        "a cross-site sign-out is refused too"
    );
    let cross_login = client
        .post(format!("{}/auth/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body("username=carol&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_login.status(), 403, "login CSRF");

    // Bearer tokens are not ambient: another origin may use one, and CORS names only the
    // configured origin.
    let token = server.login("carol", PASSWORD).await;
    let bearer = client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&token)
        .header("origin", "https://console.example.com")
        .json(&json!({"query": "{ me { username } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    assert_eq!(
        bearer.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://console.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "never credentials mode"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Bodies over the limit are refused before they are read: the request announces 2 MiB
    // and sends none of it, and the answer still comes. (Sending the body would race the
    // server closing the connection after its answer: the client saw a broken pipe.)
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), raw.read(&mut answer))
        .await
        .expect("an answer before the body was sent")
        .unwrap();
    let status_line = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
}

async fn graphql_documents_and_batches_are_bounded(backend: Backend) {
    let server = TestServer::start_configured(
        backend,
        &[],
        "[graphql]\nmax_depth = 5\nmax_aliases = 3\nmax_batch = 2\nintrospection = false\n",
    )
    .await;
    let token = server.signed_in("sam", "sre").await;
    let error = |answer: &Value| {
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    let shallow = server
        .graphql(
            Some(&token),
            "{ incidents { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(shallow["errors"], Value::Null, "{shallow}");
    let deep = server
        .graphql(
            Some(&token),
            "{ incidents { edges { node { approvals { signatures { signer } action { kind } } } } } }",
            json!({}),
        )
        .await;
    assert!(error(&deep).contains("nested too deep"), "{deep}");

    // Refused every time the same text comes back; a document within the limit runs both
    // times (the second time from the parse kept after its first answer).
    for attempt in 0..2 {
        let aliases = server
            .graphql(
                Some(&token),
                "{ a: serverInfo { version } b: serverInfo { version } c: serverInfo { version } d: serverInfo { version } }",
                json!({}),
            )
            .await;
        assert!(
            error(&aliases).contains("4 aliases; at most 3"),
            "attempt {attempt}: {aliases}"
        );
        assert_eq!(aliases["data"], Value::Null, "nothing ran");
        let three = server
            .graphql(
                Some(&token),
                "{ a: serverInfo { version } b: serverInfo { version } c: serverInfo { version } }",
                json!({}),
            )
            .await;
        assert!(
            three["data"]["c"]["version"].is_string(),
            "attempt {attempt}: {three}"
        );
    }
    // The same limit on a subscription over the WebSocket.
    {
        use futures_util::StreamExt;
        let mut ws = server
            .subscribe(
                &token,
                "subscription { incidentUpdates { a: id b: id c: id d: id } }",
            )
            .await;
        let refusal = loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .expect("an answer to the subscription")
                .unwrap()
                .unwrap();
            let text = message.into_text().unwrap().to_string();
            if text.contains("\"connection_ack\"") {
                continue;
            }
            break text;
        };
        assert!(refusal.contains("4 aliases; at most 3"), "{refusal}");
    }

    let introspection = server
        .graphql(Some(&token), "{ __schema { types { name } } }", json!({}))
        .await;
    assert!(
        introspection["data"]["__schema"].is_null(),
        "introspection off: the schema is not served ({introspection})"
    );

    let batch = |n: usize| {
        let ops: Vec<Value> = (0..n)
            .map(|_| json!({"query": "{ me { username } }"}))
            .collect();
        Value::Array(ops).to_string()
    };
    let two = server
        .post_json("/graphql", Some(&token), &[], batch(2))
        .await;
    assert_eq!(two.status(), 200);
    let answers: Value = two.json().await.unwrap();
    assert_eq!(answers.as_array().unwrap().len(), 2);
    assert_eq!(answers[1]["data"]["me"]["username"], "sam");
    let three = server
        .post_json("/graphql", Some(&token), &[], batch(3))
        .await;
    assert_eq!(three.status(), 400);
    let refused: Value = three.json().await.unwrap();
    assert!(
        error(&refused).contains("1 to 2 operations; this one has 3"),
        "{refused}"
    );
}

async fn callers_over_their_rate_get_429_and_others_do_not(backend: Backend) {
    let server = TestServer::start_configured(
        backend,
        &[],
        "[graphql]\nrate_per_minute = 60\nrate_burst = 5\n",
    )
    .await;
    let busy = server.signed_in("busy", "sre").await;
    let calm = server.signed_in("calm", "sre").await;
    let query = json!({"query": "{ me { username } }"}).to_string();
    for _ in 0..5 {
        let ok = server
            .post_json("/graphql", Some(&busy), &[], query.clone())
            .await;
        assert_eq!(ok.status(), 200);
    }
    let limited = server
        .post_json("/graphql", Some(&busy), &[], query.clone())
        .await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&retry),
        "one request per second refills: {retry}"
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    let other = server.post_json("/graphql", Some(&calm), &[], query).await;
    assert_eq!(other.status(), 200, "each credential has its own bucket");
    // MCP shares the limit: a credential over it gets 429 there too, before MCP reads it.
    let agent = server.signed_in("agent", "sre").await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "rate-test", "version": "1"}}})
    .to_string();
    let accept = [("accept", "application/json, text/event-stream")];
    for _ in 0..5 {
        let answered = server
            .post_json("/mcp", Some(&agent), &accept, initialize.clone())
            .await;
        assert_ne!(answered.status(), 429);
    }
    let limited = server
        .post_json("/mcp", Some(&agent), &accept, initialize)
        .await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Ingest is not behind the per-caller limit (an alert storm must get in).
    for n in 0..10 {
        let alert = json!({"name": format!("a{n}"), "service": "svc", "severity": "warning"});
        let response = server
            .post_json(
                "/api/v1/alerts/webhook",
                Some(&busy),
                &[],
                alert.to_string(),
            )
            .await;
        assert_eq!(response.status(), 202);
    }
}

async fn five_wrong_passwords_lock_the_name_and_sessions_can_be_revoked(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.add_user("dana", "devops", PASSWORD);
    server.add_user("root", "admin", PASSWORD);
    let login =
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";
    let try_login = |user: &'static str, password: &'static str| {
        server.graphql(None, login, json!({"u": user, "p": password}))
    };
    for _ in 0..5 {
        let wrong = try_login("dana", "not her password").await;
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let locked = try_login("dana", PASSWORD).await;
    assert_eq!(
        locked["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{locked}"
    );
    assert!(
        locked["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("try again in 15 minute")
    );
    let form = server.form_login("dana", PASSWORD).await;
    assert_eq!(form.headers()["location"], "/login?error=locked");
    // Other names are not affected; unknown names lock the same way (no enumeration).
    let root = server.login("root", PASSWORD).await;
    for _ in 0..5 {
        try_login("nobody", "x").await;
    }
    let unknown = try_login("nobody", "x").await;
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Revocation: every session of a user ends at once.
    server.add_user("eve", "viewer", PASSWORD);
    let first = server.login("eve", PASSWORD).await;
    let second = server.login("eve", PASSWORD).await;
    for token in [&first, &second] {
        let me = server
            .graphql(Some(token), "{ me { username } }", json!({}))
            .await;
        assert_eq!(me["data"]["me"]["username"], "eve", "{me}");
    }
    let revoke = "mutation($u: String!) { revokeSessions(username: $u) }";
    let by_viewer = server
        .graphql(Some(&first), revoke, json!({"u": "eve"}))
        .await;
    assert_eq!(by_viewer["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let revoked = server
        .graphql(Some(&root), revoke, json!({"u": "eve"}))
        .await;
    assert_eq!(revoked["data"]["revokeSessions"], 2, "{revoked}");
    for token in [&first, &second] {
        let me = server
            .graphql(Some(token), "{ me { username } }", json!({}))
            .await;
        assert_eq!(me["data"]["me"], Value::Null, "{me}");
    }
    let missing = server
        .graphql(Some(&root), revoke, json!({"u": "ghost"}))
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    // The CLI does the same.
    let again = server.login("eve", PASSWORD).await;
    let out = server.cli(&["user", "revoke-sessions", "eve"], None);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 session(s) of eve ended"),
        "{}",
        out.stderr
    );
    let me = server
        .graphql(Some(&again), "{ me { username } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"], Value::Null);
}
