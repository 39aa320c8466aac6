//! The normalised alert: every input (Alertmanager, Grafana, generic webhook, GraphQL, streams)
//! becomes an [`AlertEvent`] before anything else looks at it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertSource {
    Alertmanager,
    Grafana,
    Webhook,
    Graphql,
    Stream,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Alertmanager => "ALERTMANAGER",
            AlertSource::Grafana => "GRAFANA",
            AlertSource::Webhook => "WEBHOOK",
            AlertSource::Graphql => "GRAPHQL",
            AlertSource::Stream => "STREAM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "RESOLVED",
        }
    }
}

crate::stored_as_text!(AlertStatus, [AlertStatus::Firing, AlertStatus::Resolved]);

/// How bad an alert is; an incident is as bad as its worst alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Reads the usual spellings of the `severity` label; unknown values are `Warning`.
    pub fn from_label(value: Option<&str>) -> Severity {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("critical" | "crit" | "page" | "emergency" | "fatal" | "p1" | "sev1") => {
                Severity::Critical
            }
            Some("info" | "informational" | "none" | "low" | "debug" | "ok" | "p4" | "p5") => {
                Severity::Info
            }
            _ => Severity::Warning,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

crate::stored_as_text!(
    Severity,
    [Severity::Info, Severity::Warning, Severity::Critical]
);

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Labels = BTreeMap<String, String>;

/// One alert, whatever sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub source: AlertSource,
    /// The sender's own fingerprint when it has one, else [`fingerprint_of`] the labels.
    pub fingerprint: String,
    pub status: AlertStatus,
    /// `alertname`, or the sender's title.
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub severity: Severity,
    /// See [`service_of`].
    pub service: Option<String>,
    pub generator_url: Option<String>,
}

/// Labels that name the service an alert is about, in order of precedence (API.md).
pub const SERVICE_LABELS: [&str; 6] = [
    "service",
    "app.kubernetes.io/name",
    "app",
    "job",
    "deployment",
    "container",
];

/// The first present, non-empty service label.
pub fn service_of(labels: &Labels) -> Option<String> {
    SERVICE_LABELS
        .iter()
        .filter_map(|key| labels.get(*key))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A stable hash of the sorted labels: the same labels always give the same fingerprint.
pub fn fingerprint_of(labels: &Labels) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in labels {
        // Length prefixes keep `a=b,c` and `a=b` + `,c=` apart.
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

impl AlertEvent {
    /// Builds an event from labels, filling name, severity, service and fingerprint the
    /// standard way. `fingerprint` is the sender's own, if it gave one.
    pub fn from_labels(
        source: AlertSource,
        status: AlertStatus,
        labels: Labels,
        annotations: Labels,
        fingerprint: Option<String>,
    ) -> AlertEvent {
        let fingerprint = fingerprint
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| fingerprint_of(&labels));
        AlertEvent {
            source,
            status,
            name: labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "unnamed alert".to_owned()),
            severity: Severity::from_label(labels.get("severity").map(String::as_str)),
            service: service_of(&labels),
            fingerprint,
            labels,
            annotations,
            starts_at: None,
            ends_at: None,
            generator_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn service_follows_the_label_precedence() {
        for (pairs, expect) in [
            (
                &[("job", "node"), ("service", "checkout")][..],
                Some("checkout"),
            ),
            (
                &[("app", "web"), ("app.kubernetes.io/name", "frontend")][..],
                Some("frontend"),
            ),
            (
                &[("container", "c"), ("deployment", "d"), ("job", "j")][..],
                Some("j"),
            ),
            (&[("container", "nginx")][..], Some("nginx")),
            (
                &[("service", " "), ("app", "fallback")][..],
                Some("fallback"),
            ),
            (&[("instance", "10.0.0.1:9100")][..], None),
        ] {
            assert_eq!(service_of(&labels(pairs)).as_deref(), expect, "{pairs:?}");
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinguish_label_sets() {
        let a = labels(&[("alertname", "HighCPU"), ("service", "api")]);
        let b = labels(&[("service", "api"), ("alertname", "HighCPU")]);
        assert_eq!(fingerprint_of(&a), fingerprint_of(&b));
        assert_eq!(fingerprint_of(&a).len(), 16);
        let c = labels(&[("alertname", "HighCPU"), ("service", "apx")]);
        assert_ne!(fingerprint_of(&a), fingerprint_of(&c));
        let d = labels(&[("a", "b,c")]);
        let e = labels(&[("a", "b"), (",c", "")]);
        assert_ne!(fingerprint_of(&d), fingerprint_of(&e));
    }

    #[test]
    fn severity_reads_common_spellings_and_orders_by_badness() {
        assert_eq!(Severity::from_label(Some("CRITICAL")), Severity::Critical);
        assert_eq!(Severity::from_label(Some("page")), Severity::Critical);
        assert_eq!(Severity::from_label(Some("info")), Severity::Info);
        assert_eq!(Severity::from_label(Some("warning")), Severity::Warning);
        assert_eq!(Severity::from_label(Some("whatever")), Severity::Warning);
        assert_eq!(Severity::from_label(None), Severity::Warning);
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
    }

    #[test]
    fn events_from_labels_fill_the_standard_fields() {
        let event = AlertEvent::from_labels(
            AlertSource::Alertmanager,
            AlertStatus::Firing,
            labels(&[
                ("alertname", "PgDown"),
                ("severity", "critical"),
                ("app", "postgres-db"),
            ]),
            Labels::new(),
            Some("abc123".into()),
        );
        assert_eq!(event.name, "PgDown");
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.service.as_deref(), Some("postgres-db"));
        assert_eq!(event.fingerprint, "abc123");
        let own = AlertEvent::from_labels(
            AlertSource::Webhook,
            AlertStatus::Resolved,
            labels(&[("x", "y")]),
            Labels::new(),
            Some("  ".into()),
        );
        assert_eq!(own.fingerprint, fingerprint_of(&labels(&[("x", "y")])));
        assert_eq!(own.name, "unnamed alert");
    }
}
