//! LLM brains against local fake providers that speak each provider's documented streaming
//! wire format (Ollama NDJSON, OpenAI SSE chat completions, Anthropic SSE messages) and record
//! every request, headers and body. Real providers are not reachable from CI; these fakes live
//! only here.

use crate::support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Backend, TestServer};

const REASONING: &str = "The frontend errors started with the database alert.\n\
    Connections are exhausted on postgres-db.\n";
const ANSWER: &str = r#"{"summary": "postgres-db ran out of connections", "root_cause": "postgres-db", "confidence": 0.9, "actions": [{"kind": "restart_deployment", "target": "postgres-db", "namespace": "prod", "params": {}, "rationale": "drop leaked connections"}]}"#;

#[derive(Clone, Debug)]
enum Step {
    Answer(String),
    Fail(u16),
    Hang,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<Value>>>,
    /// Each request's headers, one `name: value` per line.
    headers: Arc<Mutex<Vec<String>>>,
}

fn chunks(text: &str) -> Vec<String> {
    text.chars()
        .collect::<Vec<_>>()
        .chunks(17)
        .map(|c| c.iter().collect())
        .collect()
}

fn stream(lines: Vec<String>) -> Body {
    Body::from_stream(futures_util::stream::iter(lines).then(|line| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Infallible>(Bytes::from(line))
    }))
}

async fn respond(
    fake: &Fake,
    headers: &axum::http::HeaderMap,
    body: Value,
    format: fn(&str) -> Vec<String>,
) -> Response {
    fake.seen.lock().unwrap().push(body);
    let headers = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    fake.headers.lock().unwrap().push(headers);
    let step = fake
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Step::Fail(500));
    match step {
        Step::Fail(status) => (
            axum::http::StatusCode::from_u16(status).unwrap(),
            "upstream trouble",
        )
            .into_response(),
        Step::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late".into_response()
        }
        Step::Answer(text) => stream(format(&text)).into_response(),
    }
}

fn ollama_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = chunks(text)
        .into_iter()
        .map(|c| {
            json!({"model": "m", "message": {"role": "assistant", "content": c}, "done": false})
                .to_string()
                + "\n"
        })
        .collect();
    lines.push(
        json!({"model": "m", "done": true, "prompt_eval_count": 123, "eval_count": 45}).to_string()
            + "\n",
    );
    lines
}

fn openai_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = chunks(text)
        .into_iter()
        .map(|c| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": c}}]})
            )
        })
        .collect();
    lines.push(format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": 123, "completion_tokens": 45}})
    ));
    lines.push("data: [DONE]\n\n".into());
    lines
}

fn anthropic_lines(text: &str) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut lines = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 123, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    lines.extend(chunks(text).into_iter().map(|c| {
        event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}}))
    }));
    lines.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 45}})));
    lines.push(event("message_stop", json!({"type": "message_stop"})));
    lines
}

async fn start_fake(fake: Fake) -> String {
    let app = axum::Router::new()
        .route(
            "/api/chat",
            post(
                |State(f): State<Fake>,
                 h: axum::http::HeaderMap,
                 axum::Json(b): axum::Json<Value>| async move {
                    respond(&f, &h, b, ollama_lines).await
                },
            ),
        )
        .route(
            "/v1/chat/completions",
            post(
                |State(f): State<Fake>,
                 h: axum::http::HeaderMap,
                 axum::Json(b): axum::Json<Value>| async move {
                    respond(&f, &h, b, openai_lines).await
                },
            ),
        )
        .route(
            "/v1/messages",
            post(
                |State(f): State<Fake>,
                 h: axum::http::HeaderMap,
                 axum::Json(b): axum::Json<Value>| async move {
                    respond(&f, &h, b, anthropic_lines).await
                },
            ),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

const PROVIDERS: [(&str, &str); 3] = [("ollama", ""), ("openai", "/v1"), ("anthropic", "")];

/// A server whose brain is `provider` at the fake, with the demo topology, on SQLite.
async fn server_with(provider: &str, base_suffix: &str, fake: &Fake, timeout: u64) -> TestServer {
    server_on(Backend::Sqlite, provider, base_suffix, fake, timeout).await
}

async fn server_on(
    backend: Backend,
    provider: &str,
    base_suffix: &str,
    fake: &Fake,
    timeout: u64,
) -> TestServer {
    let base = start_fake(fake.clone()).await;
    let toml = format!(
        "[brain]\nprovider = \"{provider}\"\nmodel = \"test-model\"\nbase_url = \"{base}{base_suffix}\"\n\
         api_key = \"test-key\"\ntimeout_seconds = {timeout}\nmax_retries = 1\n\
         input_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n"
    );
    TestServer::start_configured(backend, &["--demo"], &toml).await
}

const INCIDENT: &str = "query($id: ID!) { incident(id: $id) { status
    analysis { brain summary inputTokens outputTokens costUsd proposal { actions { kind target } } }
    thinking { seq kind text } } }";

/// One value of every detector kind; the scenario's alert carries them all.
const RAW: [&str; 15] = [
    "admin@company.com",
    "192.168.1.100",
    "s3cr3t-t0ken",
    "2001:db8::8a2e:370:7334",
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
    "hunter22",
];

/// Posts the scenario (with a value of every detector kind) and waits for the analysis.
async fn investigate(server: &TestServer) -> Value {
    let token = server.signed_in("bob", "sre").await;
    let description = format!(
        "user {} from {} got 502 with token={}; peer {} req {} jwt {} mac {} card {} key {} \
         aws_secret_access_key={} gh {} slack {} stripe {} llm {} password={}",
        RAW[0],
        RAW[1],
        RAW[2],
        RAW[3],
        RAW[4],
        RAW[5],
        RAW[6],
        RAW[7],
        RAW[8],
        RAW[9],
        RAW[10],
        RAW[11],
        RAW[12],
        RAW[13],
        RAW[14]
    );
    let body = json!({"name": "HighErrorRate", "service": "frontend", "severity": "critical",
        "description": description})
    .to_string();
    let response = server
        .post_json("/api/v1/alerts/webhook", Some(&token), &[], body)
        .await;
    let id = response.json::<Value>().await.unwrap()["incidents"][0].clone();
    for _ in 0..400 {
        let answer = server
            .graphql(Some(&token), INCIDENT, json!({"id": id}))
            .await;
        let incident = answer["data"]["incident"].clone();
        if incident["analysis"].is_object() && incident["status"] != "ANALYZING" {
            return incident;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no analysis");
}

fn said(incident: &Value) -> String {
    incident["thinking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}: {}\n",
                t["kind"].as_str().unwrap(),
                t["text"].as_str().unwrap()
            )
        })
        .collect()
}

/// No raw value of any detector kind in any request the provider got, headers or body; the
/// pseudonymised alert is in every prompt, and the provider's own credential in the headers
/// (so the headers recorded are the ones sent).
fn assert_no_pii(fake: &Fake, provider: &str) {
    let headers = fake.headers.lock().unwrap();
    assert!(!headers.is_empty());
    for sent in headers.iter() {
        for raw in RAW {
            assert!(
                !sent.contains(raw),
                "{raw} was sent to the provider in a header: {sent}"
            );
        }
        let credential = match provider {
            "ollama" => "content-type: application/json",
            "openai" => "authorization: Bearer test-key",
            _ => "x-api-key: test-key",
        };
        assert!(sent.contains(credential), "{provider}: {sent}");
    }
    let seen = fake.seen.lock().unwrap();
    assert!(!seen.is_empty());
    for body in seen.iter() {
        let text = body.to_string();
        for raw in RAW {
            assert!(
                !text.contains(raw),
                "{raw} was sent to the provider: {text}"
            );
        }
        assert!(
            text.contains("[EMAIL_1]"),
            "the pseudonymised alert is in the prompt: {text}"
        );
    }
}

on_both_backends!(streamed_answers_become_proposals_with_usage_and_cost);

async fn streamed_answers_become_proposals_with_usage_and_cost(backend: Backend) {
    for (provider, suffix) in PROVIDERS {
        let fake = Fake::default();
        fake.script
            .lock()
            .unwrap()
            .push_back(Step::Answer(format!("{REASONING}{ANSWER}")));
        let server = server_on(backend, provider, suffix, &fake, 10).await;
        let incident = investigate(&server).await;
        let analysis = &incident["analysis"];
        assert_eq!(analysis["brain"], provider, "{incident}");
        assert_eq!(analysis["proposal"]["actions"][0]["target"], "postgres-db");
        assert_eq!(analysis["inputTokens"], 123, "{provider}");
        assert_eq!(analysis["outputTokens"], 45, "{provider}");
        let cost = analysis["costUsd"].as_f64().unwrap();
        assert!(
            (cost - (123.0 * 3.0 + 45.0 * 15.0) / 1e6).abs() < 1e-12,
            "{cost}"
        );
        let text = said(&incident);
        assert!(
            text.contains("THOUGHT: Connections are exhausted on postgres-db."),
            "{text}"
        );
        assert!(
            text.contains("CONCLUSION: postgres-db ran out of connections"),
            "{text}"
        );
        assert!(
            !text.contains("\"summary\""),
            "the JSON answer is not narrated: {text}"
        );
        assert_no_pii(&fake, provider);
        let streamed = fake.seen.lock().unwrap()[0]["stream"].clone();
        assert_eq!(streamed, true, "{provider} is asked to stream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    for (provider, suffix) in PROVIDERS {
        let fake = Fake::default();
        fake.script.lock().unwrap().extend([
            Step::Fail(503),
            Step::Answer(format!("{REASONING}{ANSWER}")),
        ]);
        let server = server_with(provider, suffix, &fake, 10).await;
        let incident = investigate(&server).await;
        assert_eq!(incident["analysis"]["brain"], provider, "{incident}");
        assert_eq!(fake.seen.lock().unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_hand_over_to_the_rules_brain() {
    for (provider, suffix) in PROVIDERS {
        let fake = Fake::default();
        fake.script.lock().unwrap().extend([Step::Hang, Step::Hang]);
        let server = server_with(provider, suffix, &fake, 1).await;
        let incident = investigate(&server).await;
        assert_eq!(incident["analysis"]["brain"], "rules", "{incident}");
        let text = said(&incident);
        assert!(
            text.contains("no answer within 1 s; the rules brain takes over"),
            "{text}"
        );
        assert_eq!(fake.seen.lock().unwrap().len(), 2, "one try and one retry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_get_one_repair_then_fall_back() {
    for (provider, suffix) in PROVIDERS {
        // Repaired on the second try.
        let fake = Fake::default();
        fake.script.lock().unwrap().extend([
            Step::Answer("I think it is the database. {\"summary\": 42}".into()),
            Step::Answer(ANSWER.into()),
        ]);
        let server = server_with(provider, suffix, &fake, 10).await;
        let incident = investigate(&server).await;
        assert_eq!(incident["analysis"]["brain"], provider, "{incident}");
        assert!(said(&incident).contains("asking once more"));
        let repair = fake.seen.lock().unwrap()[1].to_string();
        assert!(
            repair.contains("could not be used"),
            "the repair request is sent"
        );
        assert_no_pii(&fake, provider);

        // Unusable twice: the rules brain answers, and says so.
        let fake = Fake::default();
        fake.script.lock().unwrap().extend([
            Step::Answer("no json".into()),
            Step::Answer("still none".into()),
        ]);
        let server = server_with(provider, suffix, &fake, 10).await;
        let incident = investigate(&server).await;
        assert_eq!(incident["analysis"]["brain"], "rules", "{incident}");
        assert!(said(&incident).contains("unusable again"));
    }
}
