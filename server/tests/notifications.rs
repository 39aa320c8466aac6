//! Notifications end to end, on SQLite and PostgreSQL: an approval reaches Slack (Block Kit with
//! buttons), Discord, a signed webhook and a real SMTP server (aiosmtpd, STARTTLS + AUTH); Slack
//! clicks arrive as signed requests and go through the approval policy; receivers that are down
//! get their messages late or as dead letters; a killed server's successor delivers each key
//! once.
//!
//! The Slack, Discord and webhook receivers are a local HTTP server that records what it is
//! sent (no real Slack or Discord can be reached from here); the bodies are checked against
//! the shapes their documentation gives.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use support::{Backend, PASSWORD, ScratchDb, TestServer};

on_both_backends!(
    an_approval_reaches_every_channel_and_slack_buttons_sign_it,
    the_slack_acknowledge_button_acknowledges_as_the_mapped_user,
    receivers_down_are_retried_then_dead_lettered_and_redriven,
    a_killed_server_s_successor_delivers_each_key_once,
    a_delivery_whose_answer_was_lost_is_sent_again_with_its_key,
);

const SIGNING_SECRET: &str = "slack-signing-secret-for-tests";
const HOOK_SECRET: &str = "outbound-webhook-secret";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A local HTTP receiver: records every request while up, answers 503 while down.
#[derive(Clone)]
struct Receiver {
    base: String,
    calls: Arc<Mutex<Vec<Call>>>,
    up: Arc<AtomicBool>,
    /// A process to kill (SIGKILL) when the next call arrives, before answering it.
    kill_on_call: Arc<Mutex<Option<u32>>>,
}

async fn record(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    if !r.up.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "receiver down for the test".into(),
        );
    }
    let path = uri.path().to_owned();
    r.calls.lock().unwrap().push(Call {
        path: path.clone(),
        headers,
        body: body.to_vec(),
    });
    // The message is received; its sender dies before it can record the answer.
    let victim = r.kill_on_call.lock().unwrap().take();
    if let Some(pid) = victim {
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -9 {pid}");
    }
    // Slack's Web API answers 200 either way, with `ok` saying whether it worked.
    let answer = match path.as_str() {
        p if p.ends_with("/refuse/chat.postMessage") => {
            json!({"ok": false, "error": "channel_not_found"}).to_string()
        }
        p if p.ends_with("/chat.postMessage") => {
            json!({"ok": true, "channel": "C0OPS", "ts": "1700000000.000100"}).to_string()
        }
        _ => "ok".into(),
    };
    (StatusCode::OK, answer)
}

impl Receiver {
    async fn start(up: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            calls: Arc::default(),
            up: Arc::new(AtomicBool::new(up)),
            kill_on_call: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(record)
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    fn calls(&self, path: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.path == path).cloned().collect()
    }

    /// Waits for a call to `path` that `pick` accepts.
    async fn wait_for(&self, path: &str, what: &str, pick: impl Fn(&Call) -> bool) -> Call {
        for _ in 0..600 {
            if let Some(c) = self.calls(path).into_iter().find(|c| pick(c)) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{what}: nothing arrived at {path}; got {:#?}",
            self.calls(path).iter().map(Call::text).collect::<Vec<_>>()
        );
    }
}

/// aiosmtpd with STARTTLS (a certificate made for the test) and AUTH; prints each message.
struct Smtp {
    port: u16,
    ca: std::path::PathBuf,
    child: Child,
    messages: Arc<Mutex<Vec<Value>>>,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtp {
    fn start() -> Smtp {
        let dir = std::env::temp_dir().join(format!("awoooi-smtp-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        // A CA of the test's own, and the server's certificate signed by it.
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        for args in [
            vec![
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=AWOOOI test CA",
                "-keyout",
                &file("ca.key"),
                "-out",
                &file("ca.pem"),
            ],
            vec![
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &file("key.pem"),
                "-out",
                &file("leaf.csr"),
            ],
            vec![
                "x509",
                "-req",
                "-in",
                &file("leaf.csr"),
                "-CA",
                &file("ca.pem"),
                "-CAkey",
                &file("ca.key"),
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &file("leaf.ext"),
                "-out",
                &file("cert.pem"),
            ],
        ] {
            let made = Command::new("openssl")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl makes the test certificates");
            assert!(made.success(), "openssl {args:?}");
        }
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let port = free_port();
        let mut child = Command::new(support::venv("python"))
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py"))
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .args(["mailer", "mail-password"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        assert_eq!(ready, format!("READY {port}"));
        let messages: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = messages.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        Smtp {
            port,
            ca: dir.join("ca.pem"),
            child,
            messages,
            _dir: tempdir::Dir(dir),
        }
    }

    async fn wait_for(&self, needle: &str) -> Value {
        for _ in 0..600 {
            if let Some(m) = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .find(|m| m["data"].as_str().unwrap_or_default().contains(needle))
            {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail containing {needle}");
    }
}

fn hmac_hex(secret: &str, data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// A Slack `block_actions` request as Slack sends it: form-encoded `payload`, signed.
fn slack_click(user: &str, action: &str, approval: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "team": {"id": "T0TEST", "domain": "awoooi-test"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0OPS"},
        "trigger_id": "1234.5678.abcd",
        "response_url": response_url,
        "actions": [{
            "type": "button", "action_id": action, "block_id": format!("awoooi_approval_{approval}"),
            "value": approval, "action_ts": "1700000001.000200",
            "text": {"type": "plain_text", "text": "Approve"},
        }],
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

async fn post_click(server: &TestServer, body: &str, timestamp: i64, secret: &str) -> (u16, Value) {
    let ts = timestamp.to_string();
    let signature = format!(
        "v0={}",
        hmac_hex(secret, format!("v0:{ts}:{body}").as_bytes())
    );
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/slack/interactions", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn approval(server: &TestServer, token: &str, id: &str) -> Value {
    let answer = server
        .graphql(
            Some(token),
            "query($id: ID!) { approval(id: $id) { status signatures { signer role decision } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["approval"].clone()
}

/// An open incident's Slack message carries an Acknowledge button; a click, signed by Slack
/// and mapped to a user, acknowledges it as that user (a VIEWER is refused), and the message
/// is replaced with one that names who acknowledged it and has no button.
async fn the_slack_acknowledge_button_acknowledges_as_the_mapped_user(backend: Backend) {
    let hooks = Receiver::start(true).await;
    let base = &hooks.base;
    let toml = format!(
        r##"
[notifications.retry]
base_ms = 100
max_ms = 500
poll_ms = 50
[[notifications.channels]]
name = "ops-slack"
kind = "slack"
url = "{base}/slack"
[[notifications.routes]]
events = ["INCIDENT_OPENED"]
channels = ["ops-slack"]
[notifications.slack]
signing_secret = "{SIGNING_SECRET}"
response_url_prefix = "{base}/slack-response/"
users = {{ U0BOB = "bob", U0ERIN = "erin" }}
"##
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let _bob = server.signed_in("bob", "sre").await;
    let _erin = server.signed_in("erin", "viewer").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "QueueBacklog", "service": "jobs", "severity": "critical"}),
        )
        .await;
    let message = hooks
        .wait_for("/slack", "incident message", |c| {
            c.text().contains("Incident opened")
        })
        .await
        .json();
    let button = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("an Acknowledge button")["elements"][0]
        .clone();
    assert_eq!(button["action_id"], "awoooi_acknowledge");
    assert_eq!(button["value"], incident.as_str());

    let response_url = format!("{base}/slack-response/T0TEST/2/ack");
    let now = chrono::Utc::now().timestamp();
    let click = |user: &str| slack_click(user, "awoooi_acknowledge", &incident, &response_url);
    let (status, body) = post_click(&server, &click("U0ERIN"), now, SIGNING_SECRET).await;
    assert_eq!((status, &body["ok"]), (200, &json!(false)), "{body}");
    assert!(body["text"].as_str().unwrap().contains("VIEWER"), "{body}");
    let (status, body) = post_click(&server, &click("U0BOB"), now, SIGNING_SECRET).await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    assert_eq!(
        body["text"],
        format!("incident {incident} acknowledged by bob")
    );
    let seen = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { acknowledgedBy } }",
            json!({"i": incident}),
        )
        .await;
    assert_eq!(seen["data"]["incident"]["acknowledgedBy"], "bob");
    let update = hooks
        .wait_for("/slack-response/T0TEST/2/ack", "message update", |c| {
            c.json()["replace_original"] == true
        })
        .await;
    assert!(
        update.text().contains("*Acknowledged by:* bob"),
        "{}",
        update.text()
    );
    assert!(
        !update.text().contains("awoooi_acknowledge"),
        "no button once acknowledged: {}",
        update.text()
    );
}

async fn an_approval_reaches_every_channel_and_slack_buttons_sign_it(backend: Backend) {
    let hooks = Receiver::start(true).await;
    let smtp = Smtp::start();
    let base = &hooks.base;
    let toml = format!(
        r##"
[notifications]
public_url = "https://awoooi.example.test"
[notifications.retry]
base_ms = 100
max_ms = 500
poll_ms = 50
[[notifications.channels]]
name = "ops-slack"
kind = "slack"
url = "{base}/slack"
[[notifications.channels]]
name = "ops-slack-bot"
kind = "slack"
token = "xoxb-test-token"
channel = "#ops"
api_url = "{base}/slack-api"
[[notifications.channels]]
name = "ops-discord"
kind = "discord"
url = "{base}/discord"
[[notifications.channels]]
name = "ops-hook"
kind = "webhook"
url = "{base}/hook"
secret = "{HOOK_SECRET}"
[[notifications.channels]]
name = "oncall-mail"
kind = "email"
email = {{ host = "127.0.0.1", port = {port}, tls = "starttls", ca_file = "{ca}", username = "mailer", password = "mail-password", from = "AWOOOI <awoooi@example.test>", to = ["oncall@example.test"] }}
[[notifications.routes]]
events = ["APPROVAL_PENDING", "APPROVAL_SIGNED", "APPROVAL_APPROVED", "APPROVAL_EXECUTED"]
channels = ["ops-slack", "ops-slack-bot", "ops-discord", "ops-hook", "oncall-mail"]
[[notifications.routes]]
events = ["INCIDENT_OPENED"]
severities = ["CRITICAL"]
channels = ["ops-hook"]
[notifications.slack]
signing_secret = "{SIGNING_SECRET}"
response_url_prefix = "{base}/slack-response/"
users = {{ U0BOB = "bob", U0ALICE = "alice", U0ERIN = "erin", U0GHOST = "ghost" }}
"##,
        port = smtp.port,
        ca = smtp.ca.display(),
    );
    let server = TestServer::start_configured(backend, &["--demo"], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let _bob = server.signed_in("bob", "sre").await;
    let _alice = server.signed_in("alice", "devops").await;
    let _erin = server.signed_in("erin", "viewer").await;

    // An alert carrying a raw IP and email: only their labels may leave.
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "DBConnectionsExhausted", "service": "postgres-db", "severity": "critical",
                   "annotations": {"summary": "pool exhausted on 10.20.30.40, paged dba@example.com"}}),
        )
        .await;
    let opened = hooks
        .wait_for("/hook", "incident opened", |c| {
            c.json()["event"] == "INCIDENT_OPENED"
        })
        .await;
    let proposed = server
        .graphql(
            Some(&sam),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id status requiredSignatures } }",
            json!({"i": incident, "a": {"kind": "restart_deployment", "target": "postgres-db",
                   "rationale": "connections stuck"}}),
        )
        .await;
    assert_eq!(proposed["errors"], Value::Null, "{proposed}");
    let id = proposed["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(proposed["data"]["proposeAction"]["requiredSignatures"], 2);
    let is_pending = |c: &Call| c.text().contains(&format!("\"value\":\"{id}\""));

    // Slack: Block Kit with the card and both buttons carrying the approval id.
    let slack = hooks.wait_for("/slack", "pending card", is_pending).await;
    let message = slack.json();
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .starts_with("Approval needed: restart_deployment postgres-db (HIGH)"),
        "{message}"
    );
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("*Needs:* 2 signature(s) from ADMIN, DEVOPS, SRE"),
        "{section}"
    );
    assert!(section.contains("*Dry-run:* passed"), "{section}");
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("buttons");
    let buttons: Vec<(&str, &str)> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["action_id"].as_str().unwrap(),
                b["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("awoooi_approve", id.as_str()),
            ("awoooi_reject", id.as_str())
        ]
    );
    assert!(
        slack
            .text()
            .contains(&format!("https://awoooi.example.test/approvals/{id}")),
        "{message}"
    );

    // The same card through chat.postMessage, with the bot token and the channel.
    let posted = hooks
        .wait_for(
            "/slack-api/chat.postMessage",
            "chat.postMessage",
            is_pending,
        )
        .await;
    assert_eq!(posted.headers["authorization"], "Bearer xoxb-test-token");
    assert_eq!(posted.json()["channel"], "#ops");
    // The same blocks; only the context line's idempotency key is the channel's own.
    let bot_blocks = posted.json()["blocks"].as_array().unwrap().clone();
    assert_eq!(bot_blocks[..3], blocks[..3]);
    assert!(bot_blocks[3].to_string().contains("-ops-slack-bot"));

    // Discord: an embed; the webhook: signed JSON with its idempotency key.
    let discord = hooks
        .wait_for("/discord", "discord embed", |c| {
            c.json()["embeds"][0]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/approvals/{id}")))
        })
        .await;
    let embed = &discord.json()["embeds"][0];
    assert!(
        embed["title"]
            .as_str()
            .unwrap()
            .starts_with("Approval needed"),
        "{embed}"
    );
    assert!(
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Risk" && f["value"] == "HIGH")
    );
    let hook = hooks
        .wait_for("/hook", "signed webhook", |c| {
            c.json()["event"] == "APPROVAL_PENDING"
                && c.json()["payload"]["approval"]["id"] == id.parse::<i64>().unwrap()
        })
        .await;
    assert_eq!(
        hook.headers["x-awoooi-signature"].to_str().unwrap(),
        format!("sha256={}", hmac_hex(HOOK_SECRET, &hook.body))
    );
    let key = hook.headers["x-awoooi-idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(hook.json()["id"], key);
    assert!(
        key.starts_with("awoooi-") && key.ends_with("-ops-hook"),
        "{key}"
    );

    // Email over STARTTLS with AUTH: plain text and HTML, Message-ID from the key.
    let mail = smtp.wait_for(&format!("/approvals/{id}")).await;
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["user"], "mailer");
    assert_eq!(mail["to"], json!(["oncall@example.test"]));
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [AWOOOI] Approval needed: restart_deployment postgres-db"),
        "{data}"
    );
    assert!(
        data.contains("multipart/alternative")
            && data.contains("text/plain")
            && data.contains("text/html"),
        "{data}"
    );
    assert!(data.contains("@awoooi>"), "{data}");

    // Nothing raw left AWOOOI: every captured body has the labels, none the values.
    let mut everything: Vec<String> = hooks.calls.lock().unwrap().iter().map(Call::text).collect();
    everything.extend(
        smtp.messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| m["data"].to_string()),
    );
    for text in &everything {
        assert!(
            !text.contains("10.20.30.40") && !text.contains("dba@example.com"),
            "{text}"
        );
    }
    assert!(
        opened.text().contains("[IP_1]") && opened.text().contains("[EMAIL_1]"),
        "{}",
        opened.text()
    );
    // Only the routes' events went out: no WARNING incidents, no incident events to Slack.
    assert!(
        hooks
            .calls("/slack")
            .iter()
            .all(|c| !c.text().contains("Incident opened"))
    );

    // Slack clicks. Refused before anything is read: a bad signature, an old timestamp.
    let response_url = format!("{base}/slack-response/T0TEST/1/abc");
    let now = chrono::Utc::now().timestamp();
    let click = slack_click("U0BOB", "awoooi_approve", &id, &response_url);
    let (status, body) = post_click(&server, &click, now, "not-the-secret-at-all").await;
    assert_eq!(
        (status, body["text"].as_str().unwrap()),
        (401, "the signature does not match the signing secret")
    );
    let (status, body) = post_click(&server, &click, now - 600, SIGNING_SECRET).await;
    assert_eq!(status, 401);
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("s from now (at most 300 s): a replay"),
        "{body}"
    );
    // Verified, but refused by who clicked: not mapped, mapped to nobody, a viewer.
    for (user, reason) in [
        (
            "U0NOBODY",
            "Slack user U0NOBODY is not mapped to an AWOOOI user",
        ),
        ("U0GHOST", "maps to `ghost`, who is not an AWOOOI user"),
        ("U0ERIN", "VIEWER"),
    ] {
        let click = slack_click(user, "awoooi_approve", &id, &response_url);
        let (status, body) = post_click(&server, &click, now, SIGNING_SECRET).await;
        assert_eq!(
            (status, &body["ok"]),
            (200, &json!(false)),
            "{user}: {body}"
        );
        assert!(
            body["text"].as_str().unwrap().contains(reason),
            "{user}: {body}"
        );
    }
    let ephemeral = hooks
        .wait_for("/slack-response/T0TEST/1/abc", "ephemeral refusal", |c| {
            c.json()["response_type"] == "ephemeral"
        })
        .await;
    assert!(
        ephemeral.json()["text"]
            .as_str()
            .unwrap()
            .starts_with("AWOOOI did not sign: ")
    );
    let unchanged = approval(&server, &sam, &id).await;
    assert_eq!(unchanged["status"], "PENDING");
    assert_eq!(unchanged["signatures"], json!([]));

    // Bob's signed click signs; the message is replaced with the card as it is now.
    let click = slack_click("U0BOB", "awoooi_approve", &id, &response_url);
    let (status, body) = post_click(&server, &click, now, SIGNING_SECRET).await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    let signed = approval(&server, &sam, &id).await;
    assert_eq!(signed["status"], "PENDING");
    assert_eq!(
        signed["signatures"],
        json!([{"signer": "bob", "role": "SRE", "decision": "APPROVE"}])
    );
    let update = hooks
        .wait_for("/slack-response/T0TEST/1/abc", "card update", |c| {
            c.json()["replace_original"] == true
        })
        .await;
    assert!(
        update.text().contains("bob (SRE) APPROVE"),
        "{}",
        update.text()
    );
    // Four-eyes holds in Slack too: bob again is refused; alice completes it.
    let (_, again) = post_click(&server, &click, now, SIGNING_SECRET).await;
    assert_eq!(again["ok"], false, "{again}");
    let click = slack_click("U0ALICE", "awoooi_approve", &id, &response_url);
    let (_, body) = post_click(&server, &click, now, SIGNING_SECRET).await;
    assert_eq!(body["ok"], true, "{body}");
    let done = server.settled_approval(&sam, &id, "status").await;
    assert_eq!(done["status"], "EXECUTED");
    hooks
        .wait_for("/slack", "executed", |c| {
            c.text()
                .contains("Executed: restart_deployment postgres-db")
        })
        .await;
}

/// Sends a test notification to `channel` as `admin`; returns the delivery id.
async fn send_test(server: &TestServer, admin: &str, channel: &str) -> String {
    let sent = server
        .graphql(
            Some(admin),
            "mutation($c: String!) { sendTestNotification(channel: $c) { id status idempotencyKey } }",
            json!({"c": channel}),
        )
        .await;
    assert_eq!(sent["errors"], Value::Null, "{sent}");
    assert_eq!(sent["data"]["sendTestNotification"]["status"], "PENDING");
    sent["data"]["sendTestNotification"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn delivery(server: &TestServer, admin: &str, id: &str) -> Value {
    let answer = server
        .graphql(
            Some(admin),
            "{ notificationDeliveries(first: 100) { id channel status attempts lastError idempotencyKey event } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["notificationDeliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("delivery {id} not listed: {answer}"))
}

async fn until(
    server: &TestServer,
    admin: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        let d = delivery(server, admin, id).await;
        if done(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "delivery {id}: never {what}: {}",
        delivery(server, admin, id).await
    );
}

async fn receivers_down_are_retried_then_dead_lettered_and_redriven(backend: Backend) {
    let hooks = Receiver::start(false).await;
    let base = &hooks.base;
    let toml = format!(
        r##"
[notifications.retry]
attempts = 6
base_ms = 100
max_ms = 200
poll_ms = 50
[[notifications.channels]]
name = "flaky"
kind = "webhook"
url = "{base}/flaky"
[[notifications.channels]]
name = "gone"
kind = "discord"
url = "http://127.0.0.1:{port}/nobody-listens"
[[notifications.channels]]
name = "wrong-slack-channel"
kind = "slack"
token = "xoxb-test-token"
channel = "#nowhere"
api_url = "{base}/refuse"
[[notifications.routes]]
events = ["TEST"]
channels = ["flaky"]
"##,
        port = free_port(),
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let admin = server.signed_in("root", "admin").await;
    let viewer = server.signed_in("vera", "viewer").await;

    // Settings: channels without their secrets, the rules as configured.
    let settings = server
        .graphql(
            Some(&admin),
            "{ notificationChannels { name kind target } notificationRoutes { events channels } }",
            json!({}),
        )
        .await;
    assert_eq!(settings["errors"], Value::Null, "{settings}");
    assert_eq!(
        settings["data"]["notificationChannels"][0]["kind"],
        "WEBHOOK"
    );
    assert_eq!(
        settings["data"]["notificationChannels"][1]["target"],
        "Discord webhook on 127.0.0.1"
    );
    assert!(!settings.to_string().contains("nobody-listens"));
    assert_eq!(
        settings["data"]["notificationRoutes"],
        json!([{"events": ["TEST"], "channels": ["flaky"]}])
    );
    let refused = server
        .graphql(
            Some(&viewer),
            "{ notificationChannels { name } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let unknown = server
        .graphql(
            Some(&admin),
            "mutation { sendTestNotification(channel: \"nope\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        unknown["errors"][0]["message"],
        "no channel is named `nope`"
    );

    // Down for a while: retried with back-off, delivered once it is back.
    let id = send_test(&server, &admin, "flaky").await;
    let retried = until(&server, &admin, &id, "retried", |d| {
        d["attempts"].as_i64() >= Some(2)
    })
    .await;
    assert_eq!(retried["status"], "PENDING");
    assert!(
        retried["lastError"].as_str().unwrap().contains("503"),
        "{retried}"
    );
    hooks.set_up(true);
    let delivered = until(&server, &admin, &id, "delivered", |d| {
        d["status"] == "DELIVERED"
    })
    .await;
    let got = hooks.calls("/flaky");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].headers["x-awoooi-idempotency-key"],
        delivered["idempotencyKey"].as_str().unwrap()
    );
    assert_eq!(got[0].json()["event"], "TEST");
    assert!(
        got[0].headers.get("x-awoooi-signature").is_none(),
        "no secret, no signature"
    );

    // Down for good: dead-lettered after the last attempt, listed, re-driven when it is back.
    hooks.set_up(false);
    let id = send_test(&server, &admin, "flaky").await;
    let dead = until(&server, &admin, &id, "dead", |d| d["status"] == "DEAD").await;
    assert_eq!(dead["attempts"], 6);
    let gone = send_test(&server, &admin, "gone").await;
    let gone = until(&server, &admin, &gone, "dead", |d| d["status"] == "DEAD").await;
    assert!(
        gone["lastError"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach the receiver"),
        "{gone}"
    );
    assert!(
        !gone["lastError"]
            .as_str()
            .unwrap()
            .contains("nobody-listens"),
        "no URL in errors"
    );
    hooks.set_up(true);
    let refused = send_test(&server, &admin, "wrong-slack-channel").await;
    let refused = until(&server, &admin, &refused, "dead", |d| d["status"] == "DEAD").await;
    assert_eq!(
        refused["lastError"],
        "chat.postMessage refused: channel_not_found"
    );
    hooks.set_up(false);
    let letters = server
        .graphql(Some(&admin), "{ notificationDeliveries(status: DEAD) { id channel } notificationCounts { dead delivered } }", json!({}))
        .await;
    assert_eq!(
        letters["data"]["notificationDeliveries"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{letters}"
    );
    assert_eq!(
        letters["data"]["notificationCounts"],
        json!({"dead": 3, "delivered": 1})
    );
    let redrive = "mutation($id: ID!) { redriveNotification(id: $id) { status attempts } }";
    let refused = server
        .graphql(Some(&viewer), redrive, json!({"id": id}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let not_dead = server
        .graphql(Some(&admin), redrive, json!({"id": delivered["id"]}))
        .await;
    assert_eq!(
        not_dead["errors"][0]["extensions"]["code"], "CONFLICT",
        "{not_dead}"
    );
    hooks.set_up(true);
    let again = server
        .graphql(Some(&admin), redrive, json!({"id": id}))
        .await;
    assert_eq!(
        again["data"]["redriveNotification"],
        json!({"status": "PENDING", "attempts": 0}),
        "{again}"
    );
    until(&server, &admin, &id, "delivered after re-drive", |d| {
        d["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(hooks.calls("/flaky").len(), 2);

    // Retention: events whose deliveries all arrived go; dead letters stay.
    let purged = server
        .state
        .notifier
        .purge(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, 2, "the two delivered test messages");
    let left = server
        .graphql(
            Some(&admin),
            "{ notificationCounts { pending delivered dead } }",
            json!({}),
        )
        .await;
    assert_eq!(
        left["data"]["notificationCounts"],
        json!({"pending": 0, "delivered": 0, "dead": 2}),
        "{left}"
    );
}

/// A real `awoooi serve` process on the scratch database.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(db: &ScratchDb, config: &std::path::Path, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_awoooi"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url, "--data-dir"])
        .arg(&db.dir)
        .arg("--config")
        .arg(config)
        .arg("--site-root")
        .arg(db.dir.join("site"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status() == 200
        {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("awoooi did not become ready on port {port}");
}

async fn gql(port: u16, token: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A real `awoooi serve` on `db` with one webhook channel to `hooks` (`attempts` tries, short
/// back-off and leases) and an ADMIN `root` signed in: (its config file, the process, its
/// port, root's token).
async fn hook_server(
    db: &ScratchDb,
    hooks: &Receiver,
    attempts: u32,
) -> (std::path::PathBuf, Process, u16, String) {
    let config = db.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[notifications.retry]
attempts = {attempts}
base_ms = 100
max_ms = 200
lease_seconds = 2
poll_ms = 50
[[notifications.channels]]
name = "hook"
kind = "webhook"
url = "{}/hook"
"#,
            hooks.base
        ),
    )
    .unwrap();
    let add = support::cli(
        &db.url,
        &["user", "add", "root", "--role", "admin"],
        Some(PASSWORD),
    );
    assert!(add.status.success(), "{}", add.stderr);
    let port = free_port();
    let server = serve(db, &config, port).await;
    let login = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .json(&json!({"query": format!("mutation {{ login(username: \"root\", password: \"{PASSWORD}\") {{ token }} }}")}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    (config, server, port, token)
}

async fn a_killed_server_s_successor_delivers_each_key_once(backend: Backend) {
    let hooks = Receiver::start(false).await;
    let db = ScratchDb::new(backend).await;
    let (config, first, port, token) = hook_server(&db, &hooks, 1000).await;
    // Events of two kinds: test messages, and incidents opened by alerts.
    for _ in 0..4 {
        let sent = gql(
            port,
            &token,
            "mutation { sendTestNotification(channel: \"hook\") { id } }",
        )
        .await;
        assert_eq!(sent["errors"], Value::Null, "{sent}");
    }
    for service in ["db-a", "db-b", "db-c"] {
        let posted = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/alerts/webhook"))
            .bearer_auth(&token)
            .json(&json!({"name": "Down", "service": service, "severity": "critical"}))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202);
    }
    // The receiver is down: everything is being retried when the server is killed.
    let counts = "{ notificationCounts { pending delivered dead } notificationDeliveries(first: 500) { idempotencyKey status attempts } }";
    for _ in 0..400 {
        let now = gql(port, &token, counts).await;
        let rows = now["data"]["notificationDeliveries"]
            .as_array()
            .unwrap()
            .clone();
        if rows.len() >= 7 && rows.iter().all(|d| d["attempts"].as_i64() >= Some(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first = first;
    first.0.kill().unwrap(); // SIGKILL: no shutdown of any kind
    first.0.wait().unwrap();
    drop(first);
    assert!(hooks.calls("/hook").is_empty());

    hooks.set_up(true);
    let port = free_port();
    let _second = serve(&db, &config, port).await;
    let mut last = Value::Null;
    for _ in 0..600 {
        last = gql(port, &token, counts).await;
        if last["data"]["notificationCounts"]["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["data"]["notificationCounts"]["pending"], 0, "{last}");
    assert_eq!(last["data"]["notificationCounts"]["dead"], 0, "{last}");
    let mut keys: Vec<String> = last["data"]["notificationDeliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["idempotencyKey"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    assert!(
        keys.len() >= 7,
        "4 tests and 3 incidents at least: {keys:?}"
    );
    let mut received: Vec<String> = hooks
        .calls("/hook")
        .iter()
        .map(|c| {
            c.headers["x-awoooi-idempotency-key"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    received.sort();
    assert_eq!(received, keys, "each key delivered exactly once");
    let events: Vec<Value> = hooks
        .calls("/hook")
        .iter()
        .map(|c| c.json()["event"].clone())
        .collect();
    assert_eq!(events.iter().filter(|e| *e == "TEST").count(), 4);
    assert_eq!(events.iter().filter(|e| *e == "INCIDENT_OPENED").count(), 3);
}

/// Delivery is at least once, as documented: a receiver that got the message (and answered
/// 200) while the server was killed before it could record the answer gets it again from the
/// next server, with the same idempotency key — so receivers deduplicate by that key.
async fn a_delivery_whose_answer_was_lost_is_sent_again_with_its_key(backend: Backend) {
    let hooks = Receiver::start(true).await;
    let db = ScratchDb::new(backend).await;
    let (config, mut first, port, token) = hook_server(&db, &hooks, 10).await;
    *hooks.kill_on_call.lock().unwrap() = Some(first.0.id());
    let sent = gql(
        port,
        &token,
        "mutation { sendTestNotification(channel: \"hook\") { id idempotencyKey } }",
    )
    .await;
    assert_eq!(sent["errors"], Value::Null, "{sent}");
    let key = sent["data"]["sendTestNotification"]["idempotencyKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // The receiver got it and killed the server before answering.
    let status = first.0.wait().unwrap();
    assert!(!status.success(), "killed, not stopped: {status}");
    assert_eq!(hooks.calls("/hook").len(), 1);

    let port = free_port();
    let _second = serve(&db, &config, port).await;
    let counts = "{ notificationCounts { pending delivered dead } notificationDeliveries(first: 10) { idempotencyKey status attempts } }";
    let mut last = Value::Null;
    for _ in 0..600 {
        last = gql(port, &token, counts).await;
        if last["data"]["notificationCounts"]["delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["data"]["notificationCounts"]["delivered"], 1, "{last}");
    let received: Vec<String> = hooks
        .calls("/hook")
        .iter()
        .map(|c| {
            c.headers["x-awoooi-idempotency-key"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        received.len() >= 2,
        "sent again after the lost answer: {received:?}"
    );
    assert!(
        received.iter().all(|k| *k == key),
        "every copy carries the same key {key}: {received:?}"
    );
}
