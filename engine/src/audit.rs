//! The tamper-evident audit trail: each event carries the hash of the previous one, computed
//! over its canonical JSON, so editing, removing or reordering any stored event breaks the
//! chain at that point — and anyone can check it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub mod anchors;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who: a user, an API token's name, or `system`.
    pub actor: String,
    /// What, e.g. `approval.signed`, `user.login`.
    pub action: String,
    /// On what, e.g. `approval:42`.
    pub subject: String,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Keys sorted, no insignificant whitespace, timestamps in one fixed format.
pub fn canonical(
    id: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    subject: &str,
    details: &Value,
) -> String {
    // serde_json's default map keeps keys sorted, which makes the output canonical.
    json!({
        "id": id,
        "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
    })
    .to_string()
}

pub fn chain_hash(prev_hash: &str, canonical_event: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_event.as_bytes());
    hex::encode(hasher.finalize())
}

impl AuditEvent {
    /// The next event after `prev_hash` (GENESIS for the first).
    pub fn next(
        prev_hash: &str,
        id: i64,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        subject: &str,
        details: Value,
    ) -> AuditEvent {
        let hash = chain_hash(
            prev_hash,
            &canonical(id, at, actor, action, subject, &details),
        );
        AuditEvent {
            id,
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            details,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }

    fn recomputed(&self) -> String {
        chain_hash(
            &self.prev_hash,
            &canonical(
                self.id,
                self.at,
                &self.actor,
                &self.action,
                &self.subject,
                &self.details,
            ),
        )
    }
}

/// The result of checking a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub valid: bool,
    pub checked: u64,
    /// The first event whose content or link does not match.
    pub first_broken_id: Option<i64>,
}

/// Walks the trail in id order, checking every link and every hash.
pub fn verify<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Verification {
    verify_from(GENESIS, events)
}

/// Like [`verify`], for a part of the trail that follows an event whose hash is `prev`.
pub fn verify_from<'a>(
    prev: &str,
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Verification {
    let mut expected_prev = prev.to_owned();
    let mut checked = 0;
    for event in events {
        checked += 1;
        if event.prev_hash != expected_prev || event.recomputed() != event.hash {
            return Verification {
                valid: false,
                checked,
                first_broken_id: Some(event.id),
            };
        }
        expected_prev = event.hash.clone();
    }
    Verification {
        valid: true,
        checked,
        first_broken_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(n: i64) -> Vec<AuditEvent> {
        let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-25T03:00:00Z")
            .unwrap()
            .into();
        let mut events = Vec::new();
        let mut prev = GENESIS.to_owned();
        for id in 1..=n {
            let e = AuditEvent::next(
                &prev,
                id,
                t0 + chrono::Duration::seconds(id),
                "alice",
                "approval.signed",
                &format!("approval:{id}"),
                json!({"decision": "APPROVE", "risk": "HIGH"}),
            );
            prev = e.hash.clone();
            events.push(e);
        }
        events
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let events = trail(5);
        assert_eq!(
            verify(&events),
            Verification {
                valid: true,
                checked: 5,
                first_broken_id: None
            }
        );
        assert_eq!(verify(&[]).checked, 0);
    }

    #[test]
    fn any_edit_removal_or_reordering_is_found_where_it_happened() {
        let mut edited = trail(5);
        edited[2].details = json!({"decision": "REJECT", "risk": "HIGH"});
        assert_eq!(verify(&edited).first_broken_id, Some(3));

        let mut actor = trail(5);
        actor[3].actor = "mallory".into();
        assert_eq!(verify(&actor).first_broken_id, Some(4));

        let mut removed = trail(5);
        removed.remove(1);
        assert_eq!(verify(&removed).first_broken_id, Some(3));

        let mut swapped = trail(5);
        swapped.swap(0, 1);
        assert_eq!(verify(&swapped).first_broken_id, Some(2));

        // Re-hashing the edited event is not enough: the next link breaks.
        let mut forged = trail(5);
        forged[1].details = json!({"decision": "REJECT"});
        forged[1].hash = forged[1].recomputed();
        assert_eq!(verify(&forged).first_broken_id, Some(3));
    }

    #[test]
    fn canonical_form_does_not_depend_on_key_order() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).unwrap();
        let t: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-25T03:00:00Z")
            .unwrap()
            .into();
        assert_eq!(
            canonical(1, t, "x", "y", "z", &a),
            canonical(1, t, "x", "y", "z", &b)
        );
    }
}
