//! Anchors: the audit chain copied out in segments, so that a database whose rows were
//! rewritten and re-hashed, or whose tail was cut, no longer matches what was copied before.
//!
//! A segment holds, for each event, its id, time, action and the two hashes — not the actor,
//! subject or details, which stay in the database (an archive anchors the chain without
//! copying what people wrote). Its `head` is the hash it ends at.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditEvent, GENESIS};

/// One archived link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Consecutive links of the chain, ending at `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub first: i64,
    pub last: i64,
    /// The hash of event `last`: the chain head this segment anchors.
    pub head: String,
    pub anchors: Vec<Anchor>,
}

/// Why an archived segment and the database disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Finding {
    /// The database's event has another hash than the archived one: rewritten (and perhaps
    /// re-hashed to keep the chain valid).
    Rewritten { id: i64 },
    /// An archived event is not in the database: removed (the tail cut, or a row deleted).
    Missing { id: i64 },
    /// The segment is not a piece of one chain (its own links or its head do not match), or
    /// does not continue the segment before it.
    BadSegment { first: i64, reason: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Rewritten { id } => write!(
                f,
                "event {id} differs from the archive: it was rewritten in the database"
            ),
            Finding::Missing { id } => write!(
                f,
                "event {id} is in the archive but not in the database: it was removed"
            ),
            Finding::BadSegment { first, reason } => {
                write!(f, "archived segment from event {first}: {reason}")
            }
        }
    }
}

impl Segment {
    /// The segment of `events` (consecutive, in id order). `None` for no events.
    pub fn of(events: &[AuditEvent]) -> Option<Segment> {
        let (first, last) = (events.first()?, events.last()?);
        Some(Segment {
            first: first.id,
            last: last.id,
            head: last.hash.clone(),
            anchors: events
                .iter()
                .map(|e| Anchor {
                    id: e.id,
                    at: e.at,
                    action: e.action.clone(),
                    prev_hash: e.prev_hash.clone(),
                    hash: e.hash.clone(),
                })
                .collect(),
        })
    }

    /// The object's key: ids zero-padded so keys sort in chain order, and the head, so the
    /// same segment always has the same key.
    pub fn key(&self) -> String {
        format!(
            "audit/{:012}-{:012}-{}.json",
            self.first, self.last, self.head
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a segment serialises")
    }

    pub fn parse(text: &str) -> Result<Segment, String> {
        serde_json::from_str(text).map_err(|e| format!("not an audit segment: {e}"))
    }

    /// Its own links, ids and head agree.
    fn check_self(&self) -> Result<(), String> {
        let (Some(first), Some(last)) = (self.anchors.first(), self.anchors.last()) else {
            return Err("it holds no events".into());
        };
        if first.id != self.first || last.id != self.last || last.hash != self.head {
            return Err("its first, last or head does not match its events".into());
        }
        for pair in self.anchors.windows(2) {
            if pair[1].prev_hash != pair[0].hash || pair[1].id <= pair[0].id {
                return Err(format!("its link to event {} is broken", pair[1].id));
            }
        }
        Ok(())
    }
}

/// One stored event's id, `prev_hash` and `hash`.
pub type StoredLink = (i64, String, String);

/// Compares archived segments (any order) with the database's links of the same ids, given
/// by `stored` for a segment's id range. Every disagreement is returned; none means the
/// database holds the archived chain unchanged. Events after the last segment are not
/// covered: they are the database's word alone until the next segment is archived.
pub fn compare<E>(
    segments: &mut [Segment],
    mut stored: impl FnMut(i64, i64) -> Result<Vec<StoredLink>, E>,
) -> Result<Vec<Finding>, E> {
    segments.sort_by_key(|s| s.first);
    let mut findings = Vec::new();
    let mut previous_head: Option<(i64, String)> = None;
    for segment in segments.iter() {
        if let Err(reason) = segment.check_self() {
            findings.push(Finding::BadSegment {
                first: segment.first,
                reason,
            });
            previous_head = None;
            continue;
        }
        let opening = &segment.anchors[0].prev_hash;
        match &previous_head {
            Some((last, head)) if opening != head => findings.push(Finding::BadSegment {
                first: segment.first,
                reason: format!("it does not continue the segment ending at event {last}"),
            }),
            None if segment.first == 1 && opening != GENESIS => {
                findings.push(Finding::BadSegment {
                    first: segment.first,
                    reason: "the first event does not start from the genesis hash".into(),
                })
            }
            _ => {}
        }
        previous_head = Some((segment.last, segment.head.clone()));
        let rows = stored(segment.first, segment.last)?;
        for anchor in &segment.anchors {
            match rows.iter().find(|(id, _, _)| *id == anchor.id) {
                None => findings.push(Finding::Missing { id: anchor.id }),
                Some((_, prev, hash)) if *hash != anchor.hash || *prev != anchor.prev_hash => {
                    findings.push(Finding::Rewritten { id: anchor.id })
                }
                Some(_) => {}
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trail(n: i64) -> Vec<AuditEvent> {
        let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-25T03:00:00Z")
            .unwrap()
            .into();
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|id| {
                let e = AuditEvent::next(
                    &prev,
                    id,
                    t0 + chrono::Duration::seconds(id),
                    "alice",
                    "approval.signed",
                    &format!("approval:{id}"),
                    json!({"n": id}),
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn check(segments: &mut [Segment], db: &[AuditEvent]) -> Vec<Finding> {
        compare(segments, |first, last| {
            Ok::<_, ()>(
                db.iter()
                    .filter(|e| (first..=last).contains(&e.id))
                    .map(|e| (e.id, e.prev_hash.clone(), e.hash.clone()))
                    .collect(),
            )
        })
        .unwrap()
    }

    fn segments(events: &[AuditEvent]) -> Vec<Segment> {
        events.chunks(4).map(|c| Segment::of(c).unwrap()).collect()
    }

    #[test]
    fn an_untouched_database_matches_its_archive() {
        let events = trail(10);
        assert_eq!(check(&mut segments(&events), &events), []);
    }

    #[test]
    fn a_row_rewritten_and_the_chain_re_hashed_is_caught() {
        let events = trail(10);
        let mut archive = segments(&events);
        // Rewrite event 3 and re-hash it and every later one: the database alone verifies.
        let mut forged = events.clone();
        forged[2].details = json!({"n": "forged"});
        for i in 2..forged.len() {
            if i > 2 {
                forged[i].prev_hash = forged[i - 1].hash.clone();
            }
            forged[i].hash = forged[i].recomputed();
        }
        assert!(
            super::super::verify(&forged).valid,
            "the forgery verifies alone"
        );
        let findings = check(&mut archive, &forged);
        assert!(
            findings.contains(&Finding::Rewritten { id: 3 }),
            "{findings:?}"
        );
        assert!(
            findings.contains(&Finding::Rewritten { id: 10 }),
            "{findings:?}"
        );
        assert!(!findings.contains(&Finding::Rewritten { id: 2 }));
    }

    #[test]
    fn a_cut_tail_is_caught() {
        let events = trail(10);
        let mut archive = segments(&events);
        let cut = &events[..7];
        assert!(
            super::super::verify(cut).valid,
            "the cut chain verifies alone"
        );
        assert_eq!(
            check(&mut archive, cut),
            [
                Finding::Missing { id: 8 },
                Finding::Missing { id: 9 },
                Finding::Missing { id: 10 }
            ]
        );
    }

    #[test]
    fn a_tampered_or_disconnected_segment_is_reported() {
        let events = trail(12);
        let mut archive = segments(&events);
        archive[1].anchors[1].hash = "f".repeat(64);
        let findings = check(&mut archive, &events);
        assert!(
            findings
                .iter()
                .any(|f| matches!(f, Finding::BadSegment { first: 5, .. })),
            "{findings:?}"
        );

        let mut gap = segments(&events);
        gap.remove(1);
        let findings = check(&mut gap, &events);
        assert!(
            findings.iter().any(|f| matches!(
                f,
                Finding::BadSegment { first: 9, reason } if reason.contains("does not continue")
            )),
            "{findings:?}"
        );
    }

    #[test]
    fn segments_round_trip_and_keys_sort_in_chain_order() {
        let events = trail(10);
        let archive = segments(&events);
        assert_eq!(Segment::parse(&archive[0].to_json()).unwrap(), archive[0]);
        let keys: Vec<String> = archive.iter().map(Segment::key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted, "sorted and distinct");
        assert!(Segment::parse("{}").is_err());
        assert!(
            !archive[0].to_json().contains("alice"),
            "no actor is archived"
        );
    }
}
