//! Webhook payloads → [`AlertEvent`]s: Alertmanager (v4), Grafana alerting, generic JSON.
//!
//! Parsers are pure functions of the body, so they are fuzzed directly. A bad payload yields a
//! [`PayloadError`] naming the offending field path (`alerts[2].status`).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::alert::{AlertEvent, AlertSource, AlertStatus, Labels, Severity, service_of};

/// More alerts than this in one request is refused (Alertmanager batches are far smaller).
pub const MAX_ALERTS_PER_PAYLOAD: usize = 5_000;

/// Why a payload was refused, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid payload at `{field}`: {message}")]
pub struct PayloadError {
    /// A path such as `alerts[0].labels`; `.` for the document itself.
    pub field: String,
    pub message: String,
}

impl PayloadError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        PayloadError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if path.is_empty() || path.contains('?') || path == "." {
            // Syntax errors: no field to name, so keep serde_json's line and column.
            return PayloadError::at(".", message);
        }
        // Otherwise the path says where; the position adds nothing.
        let message = message.split(" at line ").next().unwrap_or(&message);
        PayloadError::at(path, message)
    })?;
    de.end()
        .map_err(|_| PayloadError::at(".", "trailing characters after the JSON document"))?;
    Ok(value)
}

fn parse_status(value: &str, field: impl FnOnce() -> String) -> Result<AlertStatus, PayloadError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "firing" | "alerting" | "problem" | "triggered" => Ok(AlertStatus::Firing),
        "resolved" | "ok" | "normal" => Ok(AlertStatus::Resolved),
        other => Err(PayloadError::at(
            field(),
            format!("unknown status `{other}`; expected `firing` or `resolved`"),
        )),
    }
}

/// Alertmanager sends `0001-01-01T00:00:00Z` for "not set".
fn real_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.year() > 1)
}

fn check_count(n: usize) -> Result<(), PayloadError> {
    if n > MAX_ALERTS_PER_PAYLOAD {
        return Err(PayloadError::at(
            "alerts",
            format!("{n} alerts in one payload; at most {MAX_ALERTS_PER_PAYLOAD}"),
        ));
    }
    Ok(())
}

/// The alert object shared by Alertmanager and Grafana.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: String,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
    fingerprint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGroup {
    version: Option<String>,
    alerts: Vec<WireAlert>,
    #[serde(default)]
    common_labels: Labels,
    #[serde(default)]
    common_annotations: Labels,
}

fn from_group(group: WireGroup, source: AlertSource) -> Result<Vec<AlertEvent>, PayloadError> {
    check_count(group.alerts.len())?;
    group
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| {
            let status = parse_status(&alert.status, || format!("alerts[{i}].status"))?;
            // Common labels are part of every alert already; merge defensively anyway.
            let mut labels = group.common_labels.clone();
            labels.extend(alert.labels);
            let mut annotations = group.common_annotations.clone();
            annotations.extend(alert.annotations);
            let mut event =
                AlertEvent::from_labels(source, status, labels, annotations, alert.fingerprint);
            event.starts_at = real_time(alert.starts_at);
            event.ends_at = real_time(alert.ends_at);
            event.generator_url = alert.generator_url.filter(|u| !u.is_empty());
            Ok(event)
        })
        .collect()
}

/// An Alertmanager webhook body (`"version": "4"`).
pub fn parse_alertmanager(body: &[u8]) -> Result<Vec<AlertEvent>, PayloadError> {
    let group: WireGroup = decode(body)?;
    match group.version.as_deref() {
        Some("4") => from_group(group, AlertSource::Alertmanager),
        Some(other) => Err(PayloadError::at(
            "version",
            format!("unsupported Alertmanager webhook version `{other}`; expected `4`"),
        )),
        None => Err(PayloadError::at("version", "missing field `version`")),
    }
}

/// A Grafana alerting webhook body (same alert shape as Alertmanager's).
pub fn parse_grafana(body: &[u8]) -> Result<Vec<AlertEvent>, PayloadError> {
    from_group(decode(body)?, AlertSource::Grafana)
}

/// One alert of the generic webhook (and of the GraphQL `ingestAlert` mutation).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericAlert {
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL", alias = "generatorUrl")]
    pub generator_url: Option<String>,
}

impl GenericAlert {
    /// Normalises; `at` is the field path prefix used in errors (`alerts[3]`, or `.`).
    pub fn into_event(self, source: AlertSource, at: &str) -> Result<AlertEvent, PayloadError> {
        let field = |name: &str| {
            if at == "." {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        if self.name.trim().is_empty() {
            return Err(PayloadError::at(field("name"), "must not be empty"));
        }
        let status = match &self.status {
            Some(s) => parse_status(s, || field("status"))?,
            None => AlertStatus::Firing,
        };
        let mut labels = self.labels;
        labels
            .entry("alertname".into())
            .or_insert_with(|| self.name.clone());
        if let Some(service) = self.service.filter(|s| !s.trim().is_empty()) {
            labels.insert("service".into(), service);
        }
        if let Some(severity) = &self.severity {
            labels.insert("severity".into(), severity.clone());
        }
        let mut annotations = self.annotations;
        if let Some(description) = self.description {
            annotations.insert("description".into(), description);
        }
        let mut event =
            AlertEvent::from_labels(source, status, labels, annotations, self.fingerprint);
        event.name = self.name;
        event.severity = Severity::from_label(
            self.severity
                .as_deref()
                .or(event.labels.get("severity").map(String::as_str)),
        );
        event.service = service_of(&event.labels);
        event.starts_at = self.starts_at;
        event.ends_at = self.ends_at;
        event.generator_url = self.generator_url.filter(|u| !u.is_empty());
        Ok(event)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GenericBody {
    Batch { alerts: Vec<serde_json::Value> },
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

/// A generic webhook body: one alert object, an array of them, or `{"alerts": [...]}`.
pub fn parse_generic(body: &[u8]) -> Result<Vec<AlertEvent>, PayloadError> {
    let (values, batched) = match decode::<GenericBody>(body)? {
        GenericBody::Batch { alerts } => (alerts, true),
        GenericBody::Many(values) => (values, true),
        GenericBody::One(value) => (vec![value], false),
    };
    check_count(values.len())?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let at = if batched {
                format!("alerts[{i}]")
            } else {
                ".".to_owned()
            };
            let alert: GenericAlert = serde_path_to_error::deserialize(value).map_err(|e| {
                let inner = e.path().to_string();
                let field = match (at.as_str(), inner.as_str()) {
                    (".", "" | "?") => ".".to_owned(),
                    (".", path) => path.to_owned(),
                    (at, "." | "" | "?") => at.to_owned(),
                    (at, path) => format!("{at}.{path}"),
                };
                PayloadError::at(field, e.into_inner().to_string())
            })?;
            alert.into_event(AlertSource::Webhook, &at)
        })
        .collect()
}

/// Labels whose values are free text worth showing as an incident's description.
pub fn description_of(annotations: &BTreeMap<String, String>) -> Option<&str> {
    ["summary", "description", "message"]
        .iter()
        .find_map(|k| annotations.get(*k))
        .map(String::as_str)
}

#[cfg(test)]
mod tests;
