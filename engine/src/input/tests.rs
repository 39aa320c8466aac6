use super::*;

const ALERTMANAGER: &[u8] = include_bytes!("../../tests/fixtures/alertmanager-v4.json");
const GRAFANA: &[u8] = include_bytes!("../../tests/fixtures/grafana.json");

#[test]
fn alertmanager_v4_payload_normalises() {
    let events = parse_alertmanager(ALERTMANAGER).unwrap();
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first.source, AlertSource::Alertmanager);
    assert_eq!(first.fingerprint, "4a2b7c3d9e1f0a5b");
    assert_eq!(first.status, AlertStatus::Firing);
    assert_eq!(first.name, "HighErrorRate");
    assert_eq!(first.severity, Severity::Critical);
    assert_eq!(first.service.as_deref(), Some("frontend"));
    assert_eq!(
        first.starts_at.unwrap().to_rfc3339(),
        "2026-11-25T03:00:00+00:00"
    );
    assert_eq!(first.ends_at, None, "0001-01-01 means not set");
    assert!(
        first
            .generator_url
            .as_deref()
            .unwrap()
            .starts_with("http://prometheus")
    );
    assert_eq!(
        description_of(&first.annotations),
        Some("frontend 5xx rate > 15%")
    );
    let second = &events[1];
    assert_eq!(second.service.as_deref(), Some("postgres-db"));
    assert_eq!(second.severity, Severity::Warning);
    assert_eq!(second.generator_url, None);
}

#[test]
fn grafana_payload_normalises() {
    let events = parse_grafana(GRAFANA).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, AlertSource::Grafana);
    assert_eq!(events[0].service.as_deref(), Some("order-api"));
    assert_eq!(events[0].fingerprint, "57c6d9296de2ad39");
}

#[test]
fn generic_payload_in_three_shapes() {
    let one = parse_generic(
        br#"{"name": "QueueBacklog", "service": "queue", "severity": "critical",
        "description": "backlog 10k", "labels": {"team": "core"}}"#,
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "QueueBacklog");
    assert_eq!(one[0].service.as_deref(), Some("queue"));
    assert_eq!(one[0].severity, Severity::Critical);
    assert_eq!(one[0].status, AlertStatus::Firing);
    assert_eq!(one[0].annotations["description"], "backlog 10k");
    assert_eq!(one[0].labels["alertname"], "QueueBacklog");
    let many = parse_generic(br#"[{"name": "a"}, {"name": "b", "status": "resolved"}]"#).unwrap();
    assert_eq!(many[1].status, AlertStatus::Resolved);
    let batch = parse_generic(br#"{"alerts": [{"name": "a"}]}"#).unwrap();
    assert_eq!(batch.len(), 1);
}

type Parser = fn(&[u8]) -> Result<Vec<AlertEvent>, PayloadError>;

/// Each malformed payload is refused with the path of the offending field.
#[test]
fn malformed_payloads_name_the_field() {
    let cases: &[(Parser, &[u8], &str)] = &[
        (parse_alertmanager, b"{not json", "."),
        (
            parse_alertmanager,
            br#"{"version": "3", "alerts": []}"#,
            "version",
        ),
        (parse_alertmanager, br#"{"alerts": []}"#, "version"),
        (parse_alertmanager, br#"{"version": "4"}"#, "."),
        (
            parse_alertmanager,
            br#"{"version": "4", "alerts": [{"status": "firing", "labels": {"a": 1}}]}"#,
            "alerts[0].labels.a",
        ),
        (
            parse_alertmanager,
            br#"{"version": "4", "alerts": [{"status": "firing"}, {"status": "sideways"}]}"#,
            "alerts[1].status",
        ),
        (
            parse_alertmanager,
            br#"{"version": "4", "alerts": [{"status": "firing", "startsAt": "yesterday"}]}"#,
            "alerts[0].startsAt",
        ),
        (parse_grafana, br#"{"alerts": "none"}"#, "alerts"),
        (parse_generic, br#"{"severity": "critical"}"#, "."),
        (parse_generic, br#"{"name": ""}"#, "name"),
        (
            parse_generic,
            br#"{"alerts": [{"name": "a"}, {"name": "b", "labels": []}]}"#,
            "alerts[1].labels",
        ),
        (
            parse_generic,
            br#"{"name": "a", "colour": "red"}"#,
            "colour",
        ),
        (parse_generic, br#"{"name": "a"} trailing"#, "."),
        // Found by fuzzing: an empty key must still yield a non-empty field path.
        (parse_alertmanager, br#"{"": 0, "version": "4"}"#, "."),
        (parse_grafana, br#"{"": oi"#, "."),
        (parse_generic, br#"{"": [{"na"#, "."),
    ];
    for (parse, body, field) in cases {
        let err = parse(body).unwrap_err();
        assert_eq!(
            err.field,
            *field,
            "{} -> {err}",
            String::from_utf8_lossy(body)
        );
    }
    let err =
        parse_alertmanager(br#"{"version": "4", "alerts": [{"status": "sideways"}]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid payload at `alerts[0].status`: unknown status `sideways`; expected `firing` or `resolved`"
    );
}

#[test]
fn oversized_batches_are_refused() {
    let alerts = vec![r#"{"status":"firing"}"#; MAX_ALERTS_PER_PAYLOAD + 1].join(",");
    let body = format!(r#"{{"version":"4","alerts":[{alerts}]}}"#);
    assert_eq!(
        parse_alertmanager(body.as_bytes()).unwrap_err().field,
        "alerts"
    );
}
