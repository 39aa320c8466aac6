//! Escalation, on SQLite and PostgreSQL, with the clock given to each round: an
//! unacknowledged CRITICAL incident walks its policy step by step (the schedule's on-call
//! person, with an override; then a user) and stops at the acknowledgement, and an approval
//! of it waiting for signatures escalates until someone signs; two replicas
//! running the same rounds at the same moments page each step once; a WARNING incident the
//! route does not take is never paged; schedules and policies are checked.

use crate::support;

use chrono::{Datelike, Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(an_unacknowledged_incident_walks_its_policy_once_and_stops_at_the_ack);

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

/// One page: the incident, the approval (an approval's escalation), the step, whom.
type Page = (i64, Option<i64>, i64, Value);

/// The pages written so far, oldest first.
async fn all_pages(server: &TestServer) -> Vec<Page> {
    let db = &server.state.db;
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT payload FROM notification_events WHERE kind = 'ESCALATION_PAGE' ORDER BY id",
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let payload: Value =
            serde_json::from_str(&r.try_get::<String>("", "payload").unwrap()).unwrap();
        (
            payload["incident"]["id"].as_i64().unwrap(),
            payload["page"]["approval"].as_i64(),
            payload["page"]["step"].as_i64().unwrap(),
            payload["page"]["recipients"].clone(),
        )
    })
    .collect()
}

/// The pages of one subject: incident `incident`'s own, or approval `approval`'s; each
/// (subject, step) paged at most once overall.
async fn pages(server: &TestServer, incident: i64, approval: Option<i64>) -> Vec<(i64, Value)> {
    let all = all_pages(server).await;
    let mut seen = std::collections::HashSet::new();
    for (i, a, step, _) in &all {
        assert!(seen.insert((*i, *a, *step)), "paged twice: {all:?}");
    }
    all.into_iter()
        .filter(|(i, a, _, _)| *i == incident && *a == approval)
        .map(|(_, _, step, who)| (step, who))
        .collect()
}

async fn an_unacknowledged_incident_walks_its_policy_once_and_stops_at_the_ack(backend: Backend) {
    // The workers' own rounds are an hour apart (their first, at start, finds no policy):
    // the test drives every round itself.
    let server =
        TestServer::start_configured(backend, &[], "[oncall]\ncheck_every_seconds = 3600\n").await;
    let other = server.second_replica().await;
    let sam = server.signed_in("sam", "sre").await;
    for (name, role) in [("alice", "sre"), ("bob", "sre"), ("carol", "cto")] {
        server.add_user(name, role, support::PASSWORD);
    }
    let since = (Utc::now() - Duration::days(14)).to_rfc3339();
    // The handover is three days away, whatever day the test runs: one within the next two
    // hours would change who is on call once the override below has ended.
    let in_three_days = (Utc::now() + Duration::days(3)).weekday();
    let handover_day = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
        [in_three_days.num_days_from_monday() as usize];
    let create = &format!(
        "mutation($p: [String!]!, $s: DateTime) {{ createSchedule(name: \"primary\",
        participants: $p, handoverDay: \"{handover_day}\", handoverTime: \"09:00\",
        timeZone: \"Europe/Berlin\", since: $s) {{ name participants onCallNow }} }}"
    );
    let bad = server
        .graphql(
            Some(&sam),
            create,
            json!({"p": ["alice", "mallory"], "s": since}),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`mallory` is not a user")
    );
    let created = server
        .graphql(
            Some(&sam),
            create,
            json!({"p": ["alice", "bob"], "s": since}),
        )
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");
    let scheduled = created["data"]["createSchedule"]["onCallNow"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(scheduled == "alice" || scheduled == "bob");
    // Whoever is scheduled, an override puts carol on call for the next hour.
    let now = Utc::now();
    let overridden = server
        .graphql(
            Some(&sam),
            "mutation($a: DateTime!, $b: DateTime!) { addScheduleOverride(schedule: \"primary\",
               user: \"carol\", startsAt: $a, endsAt: $b) { user } }",
            json!({"a": (now - Duration::minutes(1)).to_rfc3339(), "b": (now + Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(overridden["errors"], Value::Null, "{overridden}");
    let on_call = server
        .graphql(Some(&sam), "{ onCall(schedule: \"primary\") }", json!({}))
        .await;
    assert_eq!(on_call["data"]["onCall"], "carol");
    let later = (now + Duration::hours(2)).to_rfc3339();
    let after = server
        .graphql(
            Some(&sam),
            "query($at: DateTime) { onCall(schedule: \"primary\", at: $at) }",
            json!({"at": later}),
        )
        .await;
    assert_eq!(after["data"]["onCall"], scheduled.as_str());

    let policy =
        "mutation($s: [EscalationStepInput!]!) { createEscalationPolicy(name: \"critical\",
        severities: [CRITICAL], steps: $s) { name steps { kind name waitMinutes } } }";
    let refused = server
        .graphql(
            Some(&sam),
            policy,
            json!({"s": [{"kind": "SCHEDULE", "name": "secondary", "waitMinutes": 5}]}),
        )
        .await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("step 1: no schedule named `secondary`")
    );
    let steps = json!([
        {"kind": "SCHEDULE", "name": "primary", "waitMinutes": 5},
        {"kind": "USER", "name": "sam", "waitMinutes": 10},
        {"kind": "ROLE", "name": "cto", "waitMinutes": 0},
    ]);
    let created = server
        .graphql(Some(&sam), policy, json!({"s": steps}))
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");

    let critical: i64 = server
        .incident_from_alert(
            &sam,
            json!({"name": "CheckoutDown", "service": "checkout", "severity": "critical"}),
        )
        .await
        .parse()
        .unwrap();
    let warning: i64 = server
        .incident_from_alert(
            &sam,
            json!({"name": "SlowQueries", "service": "reports", "severity": "warning"}),
        )
        .await
        .parse()
        .unwrap();

    // Two replicas run the same rounds at the same moments.
    let round = |minutes: i64| {
        let at = Utc::now() + Duration::minutes(minutes) + Duration::seconds(1);
        let (a, b) = (server.state.oncall.clone(), other.oncall.clone());
        async move {
            let (x, y) = tokio::join!(a.escalation_duties(at), b.escalation_duties(at));
            x.unwrap() + y.unwrap()
        }
    };
    // The Brain's own proposals escalate too: each subject's pages are read on their own.
    round(0).await;
    assert_eq!(
        pages(&server, critical, None).await,
        [(1, json!(["carol"]))],
        "step 1 at once"
    );
    round(2).await;
    assert_eq!(
        pages(&server, critical, None).await.len(),
        1,
        "step 2 waits five minutes"
    );
    round(6).await;
    round(7).await;
    assert_eq!(
        pages(&server, critical, None).await,
        [(1, json!(["carol"])), (2, json!(["sam"]))]
    );
    let view = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { escalation { policy nextStep steps status } } }",
            json!({"i": critical.to_string()}),
        )
        .await;
    assert_eq!(
        view["data"]["incident"]["escalation"],
        json!({"policy": "critical", "nextStep": 3, "steps": 3, "status": "ACTIVE"})
    );

    // Sam acknowledges: step 3 (the CTO) never comes.
    let ack = server
        .graphql(
            Some(&sam),
            "mutation($i: ID!) { acknowledgeIncident(incidentId: $i) { acknowledgedBy } }",
            json!({"i": critical.to_string()}),
        )
        .await;
    assert_eq!(ack["errors"], Value::Null, "{ack}");
    round(30).await;
    assert_eq!(pages(&server, critical, None).await.len(), 2);
    assert!(
        all_pages(&server)
            .await
            .iter()
            .all(|(i, _, _, _)| *i != warning),
        "the route does not take WARNING incidents"
    );

    // An approval waiting for signatures escalates by the same policy until someone decides
    // (here a rejection: its dry-run failed, so it cannot be approved).
    let proposed = server
        .graphql(
            Some(&sam),
            "mutation($i: ID!) { proposeAction(incidentId: $i, action: {kind: \"scale_deployment\",
               target: \"checkout\", params: {replicas: 4}}) { id status } }",
            json!({"i": critical.to_string()}),
        )
        .await;
    assert_eq!(
        proposed["data"]["proposeAction"]["status"], "PENDING",
        "{proposed}"
    );
    let approval = proposed["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id: i64 = approval.parse().unwrap();
    round(31).await;
    assert_eq!(
        pages(&server, critical, Some(id)).await,
        [(1, json!(["carol"]))]
    );
    let alice = server.login("alice", support::PASSWORD).await;
    let signed = server
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { reject(approvalId: $id, reason: \"no such deployment\") { status } }",
            json!({"id": approval}),
        )
        .await;
    assert_eq!(signed["errors"], Value::Null, "{signed}");
    round(60).await;
    assert_eq!(
        pages(&server, critical, Some(id)).await.len(),
        1,
        "decided: its escalation stopped"
    );

    let view = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { escalation { status }
               timeline(first: 100) { edges { node { kind text } } } } }",
            json!({"i": critical.to_string()}),
        )
        .await;
    let incident = &view["data"]["incident"];
    assert_eq!(incident["escalation"]["status"], "ACKNOWLEDGED");
    let escalated: Vec<&str> = incident["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["kind"] == "ESCALATED")
        .map(|e| e["node"]["text"].as_str().unwrap())
        .collect();
    let mine = format!(
        "paged carol about approval #{approval} (schedule primary; step 1 of policy critical)"
    );
    for expected in [
        "paged carol (schedule primary; step 1 of policy critical)",
        "paged sam (user sam; step 2 of policy critical)",
        mine.as_str(),
    ] {
        assert_eq!(
            escalated.iter().filter(|t| **t == expected).count(),
            1,
            "{expected}: {escalated:?}"
        );
    }
}
