//! The read cache of incident-list answers (`edge::graphql::reads`), on SQLite and
//! PostgreSQL: a kept answer is served again, every change made through the server (an alert,
//! an acknowledgement) is in the very next answer, `/metrics` counts the answers served again, a write that tells nobody is seen once the
//! kept answer is older than `read_cache_ms`, and a caller who is not signed in gets no kept
//! answer.

use crate::support;

use std::time::Duration;

use entity::incident;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    list_answers_are_kept_and_every_change_through_the_server_is_seen_at_once,
    a_write_that_publishes_nothing_is_seen_once_the_kept_answer_is_too_old,
);

/// The fields the incidents page reads.
const LIST: &str = "{ incidents(first: 20) { totalCount edges { node { id title severity status \
                    service createdAt alertCount mergedInto assignee acknowledgedBy } } } }";

async fn list(server: &TestServer, token: Option<&str>) -> Value {
    server.graphql(token, LIST, json!({})).await
}

fn titles(answer: &Value) -> Vec<String> {
    answer["data"]["incidents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Changes an incident's title in the database directly: a write no event tells of.
async fn retitle_behind_the_servers_back(server: &TestServer, id: &str, title: &str) {
    let id: i32 = id.parse().unwrap();
    incident::Entity::update_many()
        .col_expr(incident::Column::Title, Expr::value(title))
        .filter(incident::Column::Id.eq(id))
        .exec(&server.state.db)
        .await
        .unwrap();
}

async fn list_answers_are_kept_and_every_change_through_the_server_is_seen_at_once(
    backend: Backend,
) {
    // Ten minutes: nothing here waits for an answer to age.
    let server =
        TestServer::start_configured(backend, &[], "[graphql]\nread_cache_ms = 600000\n").await;
    let sam = server.signed_in("sam", "sre").await;
    let empty = list(&server, Some(&sam)).await;
    assert_eq!(empty["data"]["incidents"]["totalCount"], 0, "{empty}");

    // An alert: the answer right after the webhook's 202 has its incident.
    let id = server
        .incident_from_alert(
            &sam,
            json!({"name": "PacketLoss", "service": "edge", "severity": "critical"}),
        )
        .await;
    let opened = list(&server, Some(&sam)).await;
    assert_eq!(opened["data"]["incidents"]["totalCount"], 1, "{opened}");
    let title = titles(&opened)[0].clone();

    // The same answer is served again while nothing changed through the server: a title
    // changed behind its back does not show.
    retitle_behind_the_servers_back(&server, &id, "renamed").await;
    assert_eq!(list(&server, Some(&sam)).await, opened);
    let metrics = server.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"graphql_read_cache_total{result="hit"}"#),
        "{metrics}"
    );

    // A repeat of the alert raises the count at once, and the answer read anew shows the
    // title as stored.
    server
        .incident_from_alert(
            &sam,
            json!({"name": "PacketLoss", "service": "edge", "severity": "critical"}),
        )
        .await;
    let repeated = list(&server, Some(&sam)).await;
    let node = &repeated["data"]["incidents"]["edges"][0]["node"];
    assert_eq!(node["alertCount"], 2, "{repeated}");
    assert_eq!(node["title"], "renamed", "{repeated} (was {title})");

    // An acknowledgement is in the next answer.
    let acked = server
        .graphql(
            Some(&sam),
            "mutation($id: ID!) { acknowledgeIncident(incidentId: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(acked["errors"], Value::Null, "{acked}");
    let after = list(&server, Some(&sam)).await;
    assert_eq!(
        after["data"]["incidents"]["edges"][0]["node"]["acknowledgedBy"], "sam",
        "{after}"
    );

    // Not signed in: refused, whatever is kept for the same query.
    let anonymous = list(&server, None).await;
    assert_eq!(anonymous["data"], Value::Null, "{anonymous}");
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous}"
    );
}

async fn a_write_that_publishes_nothing_is_seen_once_the_kept_answer_is_too_old(backend: Backend) {
    let server =
        TestServer::start_configured(backend, &[], "[graphql]\nread_cache_ms = 300\n").await;
    let sam = server.signed_in("sam", "sre").await;
    let id = server
        .incident_from_alert(
            &sam,
            json!({"name": "DiskFull", "service": "batch", "severity": "warning"}),
        )
        .await;
    let before = titles(&list(&server, Some(&sam)).await);
    retitle_behind_the_servers_back(&server, &id, "renamed").await;
    // Past the 300 ms an answer may be served for, it is read anew.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = titles(&list(&server, Some(&sam)).await);
    assert_eq!(after, vec!["renamed".to_owned()], "before: {before:?}");
}
