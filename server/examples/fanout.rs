//! Subscription fan-out against a running `awoooi` (BENCHMARKS.md): opens N graphql-ws
//! connections subscribed to `incidentUpdates`, measures the server's resident memory per
//! idle connection, then posts one alert and measures how long the incident takes to reach
//! every subscriber (from just before the POST). One subscriber alone is measured first, in
//! the same run, as the baseline.
//!
//!   fanout --url http://127.0.0.1:3000 --token <session or API token> --pid <server pid>
//!          [--clients 10000]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

struct Args {
    url: String,
    token: String,
    pid: u32,
    clients: usize,
}

fn args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:3000".into(),
        token: String::new(),
        pid: 0,
        clients: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value,
            "--token" => args.token = value,
            "--pid" => args.pid = value.parse().expect("--pid: a process id"),
            "--clients" => args.clients = value.parse().expect("--clients: a number"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.token.is_empty(), "--token is required");
    assert!(args.pid > 0, "--pid is required (the server's process id)");
    args
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server running");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Connects and subscribes; returns once the server acknowledged the connection. Each
/// subscriber sends the moment it hears of `service`'s incident on `arrived`.
async fn subscriber(
    index: usize,
    ws_url: String,
    token: String,
    arrived: mpsc::UnboundedSender<(usize, Instant)>,
) -> tokio::task::JoinHandle<()> {
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = loop {
        match tokio_tungstenite::connect_async(request.clone()).await {
            Ok(connected) => break connected,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let send = |v: Value| Message::text(v.to_string());
    socket
        .send(send(
            json!({"type": "connection_init", "payload": {"token": token}}),
        ))
        .await
        .unwrap();
    // Wait for connection_ack before subscribing.
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message
            && text.contains("connection_ack")
        {
            break;
        }
    }
    socket
        .send(send(json!({"id": "u", "type": "subscribe",
            "payload": {"query": "subscription { incidentUpdates { id title } }"}})))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && text.contains("\"next\"")
            {
                let _ = arrived.send((index, Instant::now()));
                // Stay connected (and idle) until the run ends.
            }
        }
    })
}

async fn post_alert(client: &reqwest::Client, args: &Args, service: &str) -> Instant {
    let started = Instant::now();
    let response = client
        .post(format!("{}/api/v1/alerts/webhook", args.url))
        .bearer_auth(&args.token)
        .json(&json!({"name": "Fan-out probe", "service": service, "severity": "warning"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    started
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Posts an alert and collects `expect` arrivals (or stops after 30 s).
async fn deliver(
    client: &reqwest::Client,
    args: &Args,
    service: &str,
    arrived: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    expect: usize,
) -> Vec<Duration> {
    let mut seen = std::collections::HashSet::new();
    while arrived.try_recv().is_ok() {}
    let started = post_alert(client, args, service).await;
    let mut latencies = Vec::with_capacity(expect);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while latencies.len() < expect {
        match tokio::time::timeout_at(deadline, arrived.recv()).await {
            // The first event each subscriber hears after the POST (the incident opening;
            // its analysis sends more).
            Ok(Some((index, at))) => {
                if seen.insert(index) {
                    latencies.push(at.saturating_duration_since(started));
                }
            }
            _ => break,
        }
    }
    latencies.sort();
    latencies
}

fn report(label: &str, latencies: &[Duration], expect: usize) {
    println!(
        "{label}: {}/{expect} delivered; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let ws_url = format!("{}/graphql/ws", args.url.replacen("http", "ws", 1));
    let client = reqwest::Client::new();

    // Baseline: one subscriber.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let one = subscriber(0, ws_url.clone(), args.token.clone(), tx).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let single = deliver(&client, &args, "fanout-baseline", &mut rx, 1).await;
    assert_eq!(single.len(), 1, "the single subscriber heard nothing");
    report("1 subscriber (baseline)", &single, 1);
    one.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = rss_kib(args.pid);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let connecting = Instant::now();
    let mut handles = Vec::with_capacity(args.clients);
    let mut pending = futures_util::stream::iter(
        (0..args.clients).map(|i| subscriber(i, ws_url.clone(), args.token.clone(), tx.clone())),
    )
    .buffer_unordered(256);
    while let Some(handle) = pending.next().await {
        handles.push(handle);
        if handles.len() % 2000 == 0 {
            eprintln!("{} connected", handles.len());
        }
    }
    drop(pending);
    drop(tx);
    println!(
        "{} subscribers connected in {:.1} s",
        handles.len(),
        connecting.elapsed().as_secs_f64()
    );
    // Let the server settle, then read its memory with every connection idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kib(args.pid);
    let per_connection = (idle.saturating_sub(before)) as f64 * 1024.0 / args.clients as f64;
    println!(
        "server RSS {before} KiB before, {idle} KiB with {} idle subscribers: {:.1} KB per idle connection",
        args.clients,
        per_connection / 1000.0
    );

    let many = deliver(&client, &args, "fanout-probe", &mut rx, args.clients).await;
    report(
        &format!("{} subscribers", args.clients),
        &many,
        args.clients,
    );
    println!(
        "p99 ratio {:.1}x the single subscriber",
        percentile(&many, 0.99).as_secs_f64() / percentile(&single, 0.99).as_secs_f64()
    );
    for handle in handles {
        handle.abort();
    }
}
