//! Storm scenarios as data: alerts in order, and the incidents they must end up in.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

/// Two branches with no shared ancestor within 3 hops, and a deep chain for the depth limit.
const TOPOLOGY: &str = r#"
services:
  - { name: ingress, kind: INGRESS, depends_on: [frontend] }
  - { name: frontend, kind: SERVICE, depends_on: [auth-service, product-api, order-api] }
  - { name: auth-service, kind: SERVICE, depends_on: [postgres-db] }
  - { name: order-api, kind: SERVICE, depends_on: [postgres-db, order-queue] }
  - { name: product-api, kind: SERVICE, depends_on: [redis-cache] }
  - { name: postgres-db, kind: DATABASE }
  - { name: redis-cache, kind: CACHE }
  - { name: order-queue, kind: QUEUE }
  - { name: billing-api, kind: SERVICE, depends_on: [billing-db] }
  - { name: report-api, kind: SERVICE, depends_on: [billing-db] }
  - { name: billing-db, kind: DATABASE }
  - { name: edge, kind: INGRESS, depends_on: [gateway] }
  - { name: gateway, kind: SERVICE, depends_on: [ledger-api] }
  - { name: ledger-api, kind: SERVICE, depends_on: [ledger-worker] }
  - { name: ledger-worker, kind: SERVICE, depends_on: [ledger-db] }
  - { name: ledger-db, kind: DATABASE }
"#;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 3, 0, 0).unwrap() + Duration::minutes(minute)
}

/// (service, namespace, minute)
type Alert = (&'static str, &'static str, i64);

/// Replays `alerts`, keeping the groups as the server would; returns each incident's services
/// and root cause, oldest first, and the reasons given.
fn replay(alerts: &[Alert]) -> (Vec<(BTreeSet<String>, String)>, Vec<String>) {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    let rules = Rules {
        match_labels: vec!["namespace".into()],
        ..Rules::default()
    };
    let c = Correlator::new(&topology, &rules);
    let mut groups: Vec<Group> = Vec::new();
    let mut said = Vec::new();
    for (i, (service, namespace, minute)) in alerts.iter().enumerate() {
        let labels = Labels::from([("namespace".to_owned(), namespace.to_string())]);
        let scope = rules.scope_of(&labels);
        let now = at(*minute);
        let id = match c.decide(&groups, service, &scope, now) {
            Verdict::New => {
                groups.push(Group::new(i as i64, now, now, scope));
                i as i64
            }
            Verdict::Join { id, why } => {
                said.push(why.explain(service));
                id
            }
            Verdict::Merge { into, merged, why } => {
                said.push(format!(
                    "{} (merged {merged:?} into {into})",
                    why.explain(service)
                ));
                let absorbed: Vec<Group> = groups
                    .iter()
                    .filter(|g| merged.contains(&g.id))
                    .cloned()
                    .collect();
                groups.retain(|g| !merged.contains(&g.id));
                let survivor = groups.iter_mut().find(|g| g.id == into).unwrap();
                for g in absorbed {
                    c.add(survivor, g.services().iter().cloned());
                }
                into
            }
        };
        let group = groups.iter_mut().find(|g| g.id == id).unwrap();
        c.add(group, [service.to_string()]);
        group.last_alert_at = now;
    }
    let incidents = groups
        .iter()
        .map(|g| {
            let root = c.root_cause(g.services()).unwrap();
            assert_eq!(g.roots()[0], root, "the kept roots are current");
            (g.services().clone(), root.to_owned())
        })
        .collect();
    (incidents, said)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_cascade_under_one_database_is_one_incident_whatever_the_order() {
    let orders: [&[&str]; 3] = [
        &[
            "frontend",
            "auth-service",
            "order-api",
            "ingress",
            "postgres-db",
        ],
        &[
            "postgres-db",
            "ingress",
            "order-api",
            "frontend",
            "auth-service",
        ],
        &[
            "ingress",
            "frontend",
            "postgres-db",
            "auth-service",
            "order-api",
        ],
    ];
    for order in orders {
        let alerts: Vec<Alert> = order
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, "prod", i as i64))
            .collect();
        let (incidents, _) = replay(&alerts);
        assert_eq!(
            incidents,
            [(
                set(&[
                    "auth-service",
                    "frontend",
                    "ingress",
                    "order-api",
                    "postgres-db"
                ]),
                "postgres-db".into()
            )],
            "{order:?}"
        );
    }
}

#[test]
fn the_thinking_stream_says_why_each_alert_joined() {
    let (_, said) = replay(&[
        ("postgres-db", "prod", 0),
        ("order-api", "prod", 1),
        ("postgres-db", "prod", 2),
    ]);
    assert_eq!(
        said,
        [
            "order-api depends on postgres-db, which is this incident's root cause",
            "postgres-db already alerts in this incident",
        ]
    );
    let (_, said) = replay(&[("auth-service", "prod", 0), ("postgres-db", "prod", 1)]);
    assert_eq!(
        said,
        [
            "auth-service depends on postgres-db: postgres-db is a root-cause candidate of this incident"
        ]
    );
}

#[test]
fn two_independent_failures_stay_two_incidents() {
    let (incidents, _) = replay(&[
        ("postgres-db", "prod", 0),
        ("billing-db", "prod", 0),
        ("order-api", "prod", 1),
        ("report-api", "prod", 1),
        ("auth-service", "prod", 2),
        ("billing-api", "prod", 2),
    ]);
    assert_eq!(
        incidents,
        [
            (
                set(&["auth-service", "order-api", "postgres-db"]),
                "postgres-db".into()
            ),
            (
                set(&["billing-api", "billing-db", "report-api"]),
                "billing-db".into()
            ),
        ]
    );
}

#[test]
fn a_service_above_two_failures_explains_neither_and_joins_the_likelier() {
    // frontend depends on both the database (via auth-service) and the cache (via
    // product-api): it is a victim, not a shared root, so nothing merges.
    let (incidents, _) = replay(&[
        ("postgres-db", "prod", 0),
        ("redis-cache", "prod", 0),
        ("frontend", "prod", 1),
        ("product-api", "prod", 2),
    ]);
    assert_eq!(
        incidents,
        [
            (set(&["frontend", "postgres-db"]), "postgres-db".into()),
            (set(&["product-api", "redis-cache"]), "redis-cache".into()),
        ]
    );
}

#[test]
fn a_failure_under_an_already_explained_service_is_its_own_incident() {
    // frontend is explained by postgres-db; the cache it also depends on fails later.
    let (incidents, _) = replay(&[
        ("postgres-db", "prod", 0),
        ("frontend", "prod", 1),
        ("redis-cache", "prod", 2),
        ("product-api", "prod", 3),
    ]);
    assert_eq!(
        incidents,
        [
            (set(&["frontend", "postgres-db"]), "postgres-db".into()),
            (set(&["product-api", "redis-cache"]), "redis-cache".into()),
        ]
    );
}

#[test]
fn late_evidence_of_a_shared_root_merges_into_the_oldest() {
    let (incidents, said) = replay(&[
        ("auth-service", "prod", 0),
        ("order-api", "prod", 1),
        ("postgres-db", "prod", 2),
        ("frontend", "prod", 3),
    ]);
    assert_eq!(
        incidents,
        [(
            set(&["auth-service", "frontend", "order-api", "postgres-db"]),
            "postgres-db".into()
        )]
    );
    assert_eq!(
        said[0],
        "auth-service depends on postgres-db: postgres-db is a root-cause candidate of this incident (merged [1] into 0)"
    );
}

#[test]
fn an_incident_past_its_window_takes_no_more_alerts() {
    let (incidents, _) = replay(&[
        ("postgres-db", "prod", 0),
        ("order-api", "prod", 14),
        ("auth-service", "prod", 30),
    ]);
    assert_eq!(
        incidents,
        [
            (set(&["order-api", "postgres-db"]), "postgres-db".into()),
            (set(&["auth-service"]), "auth-service".into()),
        ]
    );
}

#[test]
fn label_boundaries_keep_namespaces_apart() {
    let (incidents, _) = replay(&[
        ("postgres-db", "prod", 0),
        ("order-api", "staging", 1),
        ("auth-service", "prod", 1),
    ]);
    assert_eq!(
        incidents,
        [
            (set(&["auth-service", "postgres-db"]), "postgres-db".into()),
            (set(&["order-api"]), "order-api".into()),
        ]
    );
}

#[test]
fn the_depth_limits_how_far_an_alert_reaches() {
    // edge → gateway → ledger-api → ledger-worker → ledger-db: edge is 4 hops up.
    let (incidents, _) = replay(&[
        ("ledger-db", "prod", 0),
        ("gateway", "prod", 1),
        ("edge", "prod", 2),
    ]);
    assert_eq!(
        incidents,
        [
            (set(&["gateway", "ledger-db"]), "ledger-db".into()),
            // edge depends on gateway, which is no root; ledger-db is beyond 3 hops.
            (set(&["edge"]), "edge".into()),
        ]
    );
}
