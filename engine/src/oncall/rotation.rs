//! On-call schedules: a weekly rotation (participants in order, one week each, handed over
//! on a day of the week at a time of day in a time zone) with overrides (someone else for a
//! while). `on_call(at)` answers who is on call at any moment, overrides first (the latest
//! created wins when they overlap).

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::windows::{Recurrence, WindowError};

/// Someone else on call from `start` to `end` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub user: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A weekly rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// In order; the first is on call from `since` to the first hand-over after it, then
    /// each hands over to the next.
    pub participants: Vec<String>,
    pub handover_day: Weekday,
    pub handover_time: NaiveTime,
    pub zone: String,
    /// When the rotation began.
    pub since: DateTime<Utc>,
    /// Oldest first; later ones win.
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    #[error("no participants: a rotation needs at least one user")]
    NoParticipants,
    #[error("{0}")]
    Window(#[from] WindowError),
}

impl Rotation {
    /// Checks the participants and the hand-over (day, `HH:MM`, zone).
    pub fn new(
        participants: Vec<String>,
        handover_day: &str,
        handover_time: &str,
        zone: &str,
        since: DateTime<Utc>,
    ) -> Result<Rotation, RotationError> {
        let participants: Vec<String> = participants
            .into_iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if participants.is_empty() {
            return Err(RotationError::NoParticipants);
        }
        let handovers = Recurrence::new(&[handover_day.to_owned()], handover_time, zone, 1)?;
        Ok(Rotation {
            participants,
            handover_day: handovers.days[0],
            handover_time: handovers.start,
            zone: handovers.zone,
            since,
            overrides: Vec::new(),
        })
    }

    fn handovers(&self) -> Recurrence {
        Recurrence {
            days: vec![self.handover_day],
            start: self.handover_time,
            zone: self.zone.clone(),
            duration_minutes: 1,
        }
    }

    /// The rotation's participant at `at` (overrides aside): `None` before `since`.
    pub fn scheduled(&self, at: DateTime<Utc>) -> Option<&str> {
        if at < self.since {
            return None;
        }
        let handovers = self.handovers();
        // The first participant is on call from `since` to the first hand-over after it.
        let first = handovers.next_after(self.since)?.start;
        if at < first {
            return self.participants.first().map(String::as_str);
        }
        // Hand-overs are a civil week apart: the elapsed time between two is a week give or
        // take a daylight-saving shift, so rounding counts them exactly.
        let last = handovers.last_started(at)?.start;
        let week = 7.0 * 24.0 * 60.0;
        let index = ((last - first).num_minutes() as f64 / week).round() as i64 + 1;
        let n = self.participants.len() as i64;
        Some(&self.participants[index.rem_euclid(n) as usize])
    }

    /// Who is on call at `at`: an override covering it (the latest), else the rotation.
    pub fn on_call(&self, at: DateTime<Utc>) -> Option<&str> {
        self.overrides
            .iter()
            .rev()
            .find(|o| o.start <= at && at < o.end)
            .map(|o| o.user.as_str())
            .or_else(|| self.scheduled(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rotation() -> Rotation {
        // Hand-over Mondays 09:00 Berlin; began Thursday 2026-10-15.
        Rotation::new(
            vec!["ana".into(), "ben".into(), "cho".into()],
            "MON",
            "09:00",
            "Europe/Berlin",
            utc("2026-10-15T12:00:00Z"),
        )
        .unwrap()
    }

    #[test]
    fn the_first_is_on_call_from_the_start_then_each_hands_over_in_order() {
        let r = rotation();
        assert_eq!(r.on_call(utc("2026-10-15T11:59:00Z")), None);
        // From the start to the first hand-over (Mon 2026-10-19 09:00 CEST = 07:00 UTC).
        assert_eq!(r.on_call(utc("2026-10-15T12:00:00Z")), Some("ana"));
        assert_eq!(r.on_call(utc("2026-10-19T06:59:00Z")), Some("ana"));
        assert_eq!(r.on_call(utc("2026-10-19T07:00:00Z")), Some("ben"));
        assert_eq!(r.on_call(utc("2026-10-25T23:00:00Z")), Some("ben"));
        // Berlin is on CET from 2026-10-25: the next hand-over is 09:00 CET = 08:00 UTC.
        assert_eq!(r.on_call(utc("2026-10-26T07:30:00Z")), Some("ben"));
        assert_eq!(r.on_call(utc("2026-10-26T08:00:00Z")), Some("cho"));
        assert_eq!(r.on_call(utc("2026-11-02T08:00:00Z")), Some("ana"));
        assert_eq!(r.on_call(utc("2026-11-09T08:00:00Z")), Some("ben"));
        // Nineteen weeks after the first hand-over, across the winter: the 20th (20 mod 3 = 2).
        assert_eq!(r.on_call(utc("2027-03-01T07:59:00Z")), Some("ben"));
        assert_eq!(r.on_call(utc("2027-03-01T08:00:00Z")), Some("cho"));
    }

    #[test]
    fn a_start_on_a_handover_gives_the_first_a_whole_week() {
        let r = Rotation::new(
            vec!["ana".into(), "ben".into()],
            "MON",
            "09:00",
            "UTC",
            utc("2026-11-02T09:00:00Z"),
        )
        .unwrap();
        assert_eq!(r.on_call(utc("2026-11-02T09:00:00Z")), Some("ana"));
        assert_eq!(r.on_call(utc("2026-11-09T08:59:00Z")), Some("ana"));
        assert_eq!(r.on_call(utc("2026-11-09T09:00:00Z")), Some("ben"));
    }

    #[test]
    fn overrides_win_and_the_latest_wins_among_them() {
        let mut r = rotation();
        r.overrides.push(Override {
            user: "dee".into(),
            start: utc("2026-10-27T00:00:00Z"),
            end: utc("2026-10-28T00:00:00Z"),
        });
        r.overrides.push(Override {
            user: "eve".into(),
            start: utc("2026-10-27T12:00:00Z"),
            end: utc("2026-10-27T13:00:00Z"),
        });
        assert_eq!(r.on_call(utc("2026-10-27T06:00:00Z")), Some("dee"));
        assert_eq!(r.on_call(utc("2026-10-27T12:30:00Z")), Some("eve"));
        assert_eq!(r.on_call(utc("2026-10-28T00:00:00Z")), Some("cho"));
    }

    #[test]
    fn a_rotation_needs_people_and_a_real_handover() {
        let at = utc("2026-10-15T12:00:00Z");
        assert_eq!(
            Rotation::new(vec![" ".into()], "MON", "09:00", "UTC", at).unwrap_err(),
            RotationError::NoParticipants
        );
        assert!(
            Rotation::new(vec!["a".into()], "MON", "9am", "UTC", at)
                .unwrap_err()
                .to_string()
                .contains("`9am` is not a time")
        );
    }
}
