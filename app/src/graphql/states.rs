//! The schema's state enums the console compares, shared by every operation
//! (`extern_enums` in each derive), so a comparison is against a variant, never a string.
//! Their values are checked against `schema.graphql` by a test; an unknown value from the
//! server fails to decode instead of becoming a default.

use serde::{Deserialize, Serialize};

macro_rules! schema_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The schema's spelling, e.g. for status pills.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

schema_enum!(
    /// Where an approval stands.
    ApprovalStatus {
        Pending => "PENDING",
        Approved => "APPROVED",
        Executing => "EXECUTING",
        Executed => "EXECUTED",
        Failed => "FAILED",
        Rejected => "REJECTED",
        Voided => "VOIDED",
        Expired => "EXPIRED",
        Superseded => "SUPERSEDED",
    }
);

schema_enum!(
    /// An action's risk.
    RiskLevel {
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
        Critical => "CRITICAL",
    }
);

schema_enum!(
    /// Where an approval's one execution stands.
    ExecutionStatus {
        Running => "RUNNING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
    }
);

schema_enum!(
    /// One signer's decision.
    Decision {
        Approve => "APPROVE",
        Reject => "REJECT",
    }
);

schema_enum!(
    /// What a fix did, as the knowledge base recorded it.
    FixOutcome {
        Worked => "WORKED",
        Failed => "FAILED",
    }
);

schema_enum!(
    /// Where an incident is in its life.
    IncidentStatus {
        Open => "OPEN",
        Analyzing => "ANALYZING",
        AwaitingApproval => "AWAITING_APPROVAL",
        Mitigating => "MITIGATING",
        Resolved => "RESOLVED",
        Merged => "MERGED",
    }
);

schema_enum!(
    /// How bad an alert (and its incident) is.
    Severity {
        Info => "INFO",
        Warning => "WARNING",
        Critical => "CRITICAL",
    }
);

schema_enum!(
    /// Whether an alert still fires.
    AlertStatus {
        Firing => "FIRING",
        Resolved => "RESOLVED",
    }
);

schema_enum!(
    /// What a timeline entry records.
    TimelineKind {
        AlertFired => "ALERT_FIRED",
        Opened => "OPENED",
        Correlated => "CORRELATED",
        Merged => "MERGED",
        AlertRepeated => "ALERT_REPEATED",
        AlertResolved => "ALERT_RESOLVED",
        Analysed => "ANALYSED",
        Proposed => "PROPOSED",
        Signed => "SIGNED",
        Approved => "APPROVED",
        Rejected => "REJECTED",
        Voided => "VOIDED",
        Superseded => "SUPERSEDED",
        Expired => "EXPIRED",
        Executing => "EXECUTING",
        Executed => "EXECUTED",
        Failed => "FAILED",
        Notified => "NOTIFIED",
        Acknowledged => "ACKNOWLEDGED",
        Assigned => "ASSIGNED",
        Commented => "COMMENTED",
        Silenced => "SILENCED",
        Escalated => "ESCALATED",
        Resolved => "RESOLVED",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of `enum <name> { … }` in the committed schema.
    fn schema_values(name: &str) -> Vec<String> {
        let schema = include_str!("../../../schema.graphql");
        let start = schema
            .find(&format!("enum {name} {{"))
            .unwrap_or_else(|| panic!("schema.graphql has no enum {name}"));
        let body = &schema[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with('#'))
            .filter(|l| l.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(str::to_owned)
            .collect()
    }

    fn ours(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn every_enum_matches_the_schema() {
        let check = |name: &str, values: Vec<&str>| {
            assert_eq!(ours(&values), schema_values(name), "enum {name}");
        };
        check(
            "ApprovalStatus",
            ApprovalStatus::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            "RiskLevel",
            RiskLevel::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            "ExecutionStatus",
            ExecutionStatus::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            "Decision",
            Decision::ALL.iter().map(|v| v.as_str()).collect(),
        );
        check(
            "TimelineKind",
            TimelineKind::ALL.iter().map(|v| v.as_str()).collect(),
        );
    }

    #[test]
    fn an_unknown_value_does_not_decode() {
        assert_eq!(
            serde_json::from_str::<ApprovalStatus>("\"PENDING\"").unwrap(),
            ApprovalStatus::Pending
        );
        assert!(serde_json::from_str::<ApprovalStatus>("\"LIMBO\"").is_err());
    }
}
