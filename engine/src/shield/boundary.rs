//! The action boundary: the one place where labels become real values again. An executor gets
//! the real request from [`Boundary::real_request`]; whatever it (or a dry-run against the real
//! system) says goes back through [`Boundary::pseudonymise`] before it is stored, logged or
//! served. Nothing else outside the engine can rehydrate.

use serde_json::Value;

use super::{Pseudonyms, Shield};
use crate::dryrun::DryRunReport;
use crate::policy::ActionRequest;

/// An incident's label map, opened for one action.
pub struct Boundary {
    names: Pseudonyms,
}

impl std::fmt::Debug for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("labels", &self.names.len())
            .finish()
    }
}

fn rehydrate_value(names: &Pseudonyms, value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(names.rehydrate(text)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| rehydrate_value(names, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), rehydrate_value(names, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Boundary {
    pub fn new(names: Pseudonyms) -> Boundary {
        Boundary { names }
    }

    /// The request with every label of the incident replaced by its real value (target,
    /// namespace, every string in params). Labels the incident never issued stay as they are.
    pub fn real_request(&self, request: &ActionRequest) -> ActionRequest {
        ActionRequest {
            kind: request.kind.clone(),
            target: self.names.rehydrate(&request.target),
            namespace: request.namespace.as_ref().map(|n| self.names.rehydrate(n)),
            params: rehydrate_value(&self.names, &request.params),
            labels: request.labels.clone(),
            requested_by: request.requested_by.clone(),
        }
    }

    /// Label values with the incident's labels replaced by their real values (to silence
    /// "alerts like this one": the silence matches what alerts really carry).
    pub fn real_labels(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> std::collections::BTreeMap<String, String> {
        labels
            .iter()
            .map(|(k, v)| (self.names.rehydrate(k), self.names.rehydrate(v)))
            .collect()
    }

    /// `text` pseudonymised with the incident's own labels (a value seen before keeps its
    /// label; a new one gets the next label, kept in the map).
    pub fn pseudonymise(&mut self, shield: &Shield, text: &str) -> String {
        shield.redact(text, &mut self.names)
    }

    /// A dry-run report made against real values, fit to store.
    pub fn pseudonymise_report(
        &mut self,
        shield: &Shield,
        mut report: DryRunReport,
    ) -> DryRunReport {
        for check in &mut report.checks {
            check.detail = self.pseudonymise(shield, &check.detail);
        }
        report
    }

    /// The label map, with any labels the outputs added.
    pub fn into_names(self) -> Pseudonyms {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cross_rehydrated_and_outputs_come_back_labelled() {
        let shield = Shield::builtin();
        let mut names = Pseudonyms::new();
        let said = shield.redact("node 10.0.0.7 of ops@example.com", &mut names);
        assert_eq!(said, "node [IP_1] of [EMAIL_1]");
        let mut boundary = Boundary::new(names);
        let request = ActionRequest {
            kind: "shell:touch".into(),
            target: "[IP_1]".into(),
            namespace: None,
            params: serde_json::json!({"path": "/tmp/[IP_1]", "list": ["[EMAIL_1]", 3], "unknown": "[IP_9]"}),
            labels: Default::default(),
            requested_by: "awoooi".into(),
        };
        let real = boundary.real_request(&request);
        assert_eq!(real.target, "10.0.0.7");
        assert_eq!(
            real.params,
            serde_json::json!({"path": "/tmp/10.0.0.7", "list": ["ops@example.com", 3], "unknown": "[IP_9]"})
        );
        let output = boundary.pseudonymise(&shield, "touched /tmp/10.0.0.7 and told 10.0.0.8");
        assert_eq!(output, "touched /tmp/[IP_1] and told [IP_2]");
        assert_eq!(boundary.into_names().len(), 3);
    }
}
