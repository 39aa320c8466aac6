//! The Redis Streams input against the real Redis (`AWOOOI_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): consumer groups, ack after commit, recovery after a crash at
//! either side of the commit, dead letters — with no lost and no duplicated incident.

use crate::support;

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::{Value, json};
use server::services::ingest::streams::{AlertStream, RedisAlertStream, RedisStreamConfig};
use support::{Backend, TestServer};

on_both_backends!(
    a_crash_between_read_and_commit_loses_nothing,
    a_crash_between_commit_and_ack_duplicates_nothing,
    the_run_loop_consumes_live,
);

fn redis_url() -> String {
    std::env::var("AWOOOI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Stream {
    name: String,
    conn: redis::aio::MultiplexedConnection,
}

impl Stream {
    async fn new() -> Stream {
        let client = redis::Client::open(redis_url()).unwrap();
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| {
                panic!("Redis at {} is required for these tests: {e}", redis_url())
            });
        Stream {
            name: format!("awoooi-test:{:016x}", rand::random::<u64>()),
            conn,
        }
    }

    fn config(&self, consumer: &str) -> RedisStreamConfig {
        RedisStreamConfig {
            stream: self.name.clone(),
            group: "awoooi".into(),
            consumer: Some(consumer.into()),
            claim_idle_seconds: 0,
            batch: 100,
            dead_letter: None,
        }
    }

    async fn add(&mut self, format: &str, payload: &str) -> String {
        self.conn
            .xadd(&self.name, "*", &[("format", format), ("payload", payload)])
            .await
            .unwrap()
    }

    async fn pending(&mut self) -> i64 {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(&self.name)
            .arg("awoooi")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        match reply {
            redis::Value::Array(parts) => redis::from_redis_value(parts[0].clone()).unwrap(),
            other => panic!("unexpected XPENDING reply {other:?}"),
        }
    }

    async fn length(&mut self, stream: &str) -> i64 {
        self.conn.xlen(stream).await.unwrap()
    }

    async fn cleanup(mut self) {
        let _: () = self
            .conn
            .del(&[self.name.clone(), format!("{}:dead", self.name)])
            .await
            .unwrap();
    }
}

async fn incidents(server: &TestServer, token: &str) -> Value {
    let answer = server
        .graphql(
            Some(token),
            "{ incidents { totalCount edges { node { service alerts { name count source } } } } }",
            json!({}),
        )
        .await;
    answer["data"]["incidents"].clone()
}

async fn a_crash_between_read_and_commit_loses_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let mut stream = Stream::new().await;
    let ingest = server.state.ingest.clone();

    // Consumer A joins, reads three entries, and dies before committing anything.
    let mut a = RedisAlertStream::connect(&redis_url(), stream.config("a"), ingest.clone())
        .await
        .unwrap();
    stream
        .add("generic", r#"{"name": "DiskFull", "service": "order-api"}"#)
        .await;
    stream
        .add(
            "alertmanager",
            include_str!("../../engine/tests/fixtures/alertmanager-v4.json"),
        )
        .await;
    stream.add("generic", "{not json").await;
    assert_eq!(a.read_new(None).await.unwrap().len(), 3);
    drop(a);
    assert_eq!(stream.pending().await, 3, "read but never acknowledged");
    assert_eq!(incidents(&server, &token).await["totalCount"], 0);

    // Consumer B claims the abandoned entries and finishes the job.
    let mut b = RedisAlertStream::connect(&redis_url(), stream.config("b"), ingest)
        .await
        .unwrap();
    let done = b.round(true, Duration::from_millis(10)).await.unwrap();
    assert_eq!(done, 3);
    assert_eq!(stream.pending().await, 0);
    let list = incidents(&server, &token).await;
    assert_eq!(
        list["totalCount"], 3,
        "order-api, frontend, postgres-db: {list}"
    );
    assert!(list.to_string().contains("\"source\":\"STREAM\""), "{list}");
    let dead = format!("{}:dead", stream.name);
    assert_eq!(
        stream.length(&dead).await,
        1,
        "the unparseable entry is dead-lettered"
    );
    stream.cleanup().await;
}

async fn a_crash_between_commit_and_ack_duplicates_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let mut stream = Stream::new().await;
    let ingest = server.state.ingest.clone();

    let mut consumer = RedisAlertStream::connect(&redis_url(), stream.config("c"), ingest.clone())
        .await
        .unwrap();
    stream
        .add("generic", r#"{"name": "QueueBacklog", "service": "queue"}"#)
        .await;
    let entries = consumer.read_new(None).await.unwrap();
    let committed = consumer.process(&entries).await.unwrap();
    assert_eq!(committed.len(), 1);
    drop(consumer); // dies before XACK

    // The same consumer restarts: its pending entry comes back and is recognised.
    let mut restarted = RedisAlertStream::connect(&redis_url(), stream.config("c"), ingest)
        .await
        .unwrap();
    assert_eq!(
        restarted
            .round(true, Duration::from_millis(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(stream.pending().await, 0);
    let list = incidents(&server, &token).await;
    assert_eq!(list["totalCount"], 1);
    assert_eq!(
        list["edges"][0]["node"]["alerts"][0]["count"], 1,
        "not counted twice: {list}"
    );
    stream.cleanup().await;
}

async fn the_run_loop_consumes_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let mut stream = Stream::new().await;
    let consumer = RedisAlertStream::connect(
        &redis_url(),
        stream.config("live"),
        server.state.ingest.clone(),
    )
    .await
    .unwrap();
    let task = tokio::spawn(consumer.run());
    stream
        .add(
            "generic",
            r#"{"name": "CacheDown", "service": "redis-cache"}"#,
        )
        .await;
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = incidents(&server, &token).await;
        if seen["totalCount"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen["totalCount"], 1, "{seen}");
    task.abort();
    stream.cleanup().await;
}
