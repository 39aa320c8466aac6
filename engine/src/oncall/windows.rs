//! Maintenance windows: a silence that recurs on days of the week at a time of day in a time
//! zone, for a duration. Occurrences are computed in the zone's civil time, so a window at
//! 01:00 in `America/New_York` opens at 06:00 UTC in winter and at 05:00 UTC in summer. A start
//! time that falls in a daylight-saving gap moves forward by the gap; one that falls in a fold
//! takes the first of the two moments (RFC 5545's rule, and `jiff`'s "compatible").

use chrono::{DateTime, Duration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("no days: give at least one of MON TUE WED THU FRI SAT SUN")]
    NoDays,
    #[error("`{0}` is not a day of the week (MON … SUN)")]
    BadDay(String),
    #[error("start `{0}` is not a time of day HH:MM")]
    BadTime(String),
    #[error("`{0}` is not a time zone of the IANA database (e.g. Europe/Berlin)")]
    BadZone(String),
    #[error("duration must be between 1 minute and 7 days, got {0} minute(s)")]
    BadDuration(i64),
}

/// When a maintenance window recurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// Days of the week it starts on, in the zone.
    pub days: Vec<Weekday>,
    /// Time of day it starts, in the zone.
    pub start: NaiveTime,
    /// IANA time zone name.
    pub zone: String,
    pub duration_minutes: i64,
}

/// One occurrence: from `start` to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Occurrence {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// Parses `MON`, `monday`, `Tue`… (what `chrono::Weekday` reads).
pub fn parse_day(text: &str) -> Result<Weekday, WindowError> {
    text.trim()
        .parse::<Weekday>()
        .map_err(|_| WindowError::BadDay(text.to_owned()))
}

pub fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MON",
        Weekday::Tue => "TUE",
        Weekday::Wed => "WED",
        Weekday::Thu => "THU",
        Weekday::Fri => "FRI",
        Weekday::Sat => "SAT",
        Weekday::Sun => "SUN",
    }
}

impl Recurrence {
    /// A checked recurrence: days by name, start `HH:MM`, an IANA zone, 1 minute to 7 days.
    pub fn new(
        days: &[String],
        start: &str,
        zone: &str,
        duration_minutes: i64,
    ) -> Result<Recurrence, WindowError> {
        let mut parsed = days
            .iter()
            .map(|d| parse_day(d))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err(WindowError::NoDays);
        }
        parsed.sort_by_key(|d| d.num_days_from_monday());
        parsed.dedup();
        let start = NaiveTime::parse_from_str(start.trim(), "%H:%M")
            .map_err(|_| WindowError::BadTime(start.to_owned()))?;
        jiff::tz::TimeZone::get(zone.trim()).map_err(|_| WindowError::BadZone(zone.to_owned()))?;
        if !(1..=7 * 24 * 60).contains(&duration_minutes) {
            return Err(WindowError::BadDuration(duration_minutes));
        }
        Ok(Recurrence {
            days: parsed,
            start,
            zone: zone.trim().to_owned(),
            duration_minutes,
        })
    }

    fn zone(&self) -> Option<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.zone).ok()
    }

    /// The occurrences that start on the zone's civil days from `from - 8 days` to `to + 1
    /// day`, in order (every occurrence that can overlap `from..to`).
    fn around(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
        let Some(tz) = self.zone() else {
            return Vec::new();
        };
        let civil_day = |at: DateTime<Utc>| {
            jiff::Timestamp::from_second(at.timestamp())
                .ok()
                .map(|ts| ts.to_zoned(tz.clone()).date())
        };
        let (Some(mut day), Some(last)) = (civil_day(from - Duration::days(8)), civil_day(to))
        else {
            return Vec::new();
        };
        let Ok(last) = last.tomorrow() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while day <= last {
            let weekday = day.weekday().to_monday_zero_offset();
            if self
                .days
                .iter()
                .any(|d| d.num_days_from_monday() as i8 == weekday)
            {
                use chrono::Timelike;
                let civil = day.at(self.start.hour() as i8, self.start.minute() as i8, 0, 0);
                if let Ok(zoned) = tz.to_ambiguous_zoned(civil).compatible()
                    && let Some(start) = DateTime::from_timestamp(zoned.timestamp().as_second(), 0)
                {
                    out.push(Occurrence {
                        start,
                        end: start + Duration::minutes(self.duration_minutes),
                    });
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        out
    }

    /// The occurrence under way at `at`, if any (the latest-starting one if two overlap).
    pub fn active_at(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.around(at, at)
            .into_iter()
            .filter(|o| o.contains(at))
            .max()
    }

    /// The latest occurrence that ended at or before `at`.
    pub fn last_ended(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.around(at, at)
            .into_iter()
            .filter(|o| o.end <= at)
            .max_by_key(|o| o.end)
    }

    /// The latest occurrence that started at or before `at`.
    pub fn last_started(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.around(at, at)
            .into_iter()
            .filter(|o| o.start <= at)
            .max()
    }

    /// The first occurrence that starts after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<Occurrence> {
        self.around(at, at + Duration::days(8))
            .into_iter()
            .find(|o| o.start > at)
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

    fn nightly(zone: &str) -> Recurrence {
        let all: Vec<String> = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        Recurrence::new(&all, "01:00", zone, 120).unwrap()
    }

    /// New York went from EST (UTC-5) to EDT (UTC-4) on 2026-03-08 at 02:00 local. A window at
    /// 01:00–03:00 local is 06:00–08:00 UTC the night before and 05:00–07:00 UTC after.
    #[test]
    fn a_nightly_window_keeps_its_local_hours_across_the_spring_change() {
        let window = nightly("America/New_York");
        let before = window.active_at(utc("2026-03-07T06:30:00Z")).unwrap();
        assert_eq!(before.start, utc("2026-03-07T06:00:00Z"));
        assert_eq!(before.end, utc("2026-03-07T08:00:00Z"));
        assert!(window.active_at(utc("2026-03-07T05:30:00Z")).is_none());
        // The night of the change: 01:00 EST is 06:00 UTC; two hours of elapsed time later.
        let night = window.active_at(utc("2026-03-08T07:59:00Z")).unwrap();
        assert_eq!(night.start, utc("2026-03-08T06:00:00Z"));
        let after = window.active_at(utc("2026-03-09T05:30:00Z")).unwrap();
        assert_eq!(after.start, utc("2026-03-09T05:00:00Z"));
        assert_eq!(after.end, utc("2026-03-09T07:00:00Z"));
        assert!(window.active_at(utc("2026-03-09T07:30:00Z")).is_none());
    }

    /// Back on 2026-11-01 (EDT to EST at 02:00 local): 05:00 UTC before, 06:00 UTC after.
    #[test]
    fn a_nightly_window_keeps_its_local_hours_across_the_autumn_change() {
        let window = nightly("America/New_York");
        assert_eq!(
            window.active_at(utc("2026-10-31T05:10:00Z")).unwrap().start,
            utc("2026-10-31T05:00:00Z")
        );
        assert!(window.active_at(utc("2026-11-02T05:30:00Z")).is_none());
        assert_eq!(
            window.active_at(utc("2026-11-02T06:30:00Z")).unwrap().start,
            utc("2026-11-02T06:00:00Z")
        );
    }

    /// Berlin springs forward on 2026-03-29 at 02:00 → 03:00: a 02:30 start does not exist
    /// that day and moves forward by the gap (03:30 CEST = 01:30 UTC).
    #[test]
    fn a_start_in_the_gap_moves_forward_and_one_in_the_fold_takes_the_first() {
        let days = vec!["SUN".to_string()];
        let window = Recurrence::new(&days, "02:30", "Europe/Berlin", 60).unwrap();
        let gap = window.active_at(utc("2026-03-29T01:45:00Z")).unwrap();
        assert_eq!(gap.start, utc("2026-03-29T01:30:00Z"));
        // Berlin falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice; the first is
        // 02:30 CEST = 00:30 UTC.
        let fold = window.active_at(utc("2026-10-25T00:45:00Z")).unwrap();
        assert_eq!(fold.start, utc("2026-10-25T00:30:00Z"));
        // The week before, no change: 02:30 CEST = 00:30 UTC.
        assert_eq!(
            window.active_at(utc("2026-10-18T00:31:00Z")).unwrap().start,
            utc("2026-10-18T00:30:00Z")
        );
    }

    #[test]
    fn only_the_given_days_and_windows_past_midnight_count() {
        let days = vec!["fri".to_string(), "Sat".to_string()];
        // Friday 22:00 Tokyo for 4 h: into Saturday.
        let window = Recurrence::new(&days, "22:00", "Asia/Tokyo", 240).unwrap();
        // 2026-12-04 is a Friday; 22:00 JST = 13:00 UTC.
        let friday = window.active_at(utc("2026-12-04T16:59:00Z")).unwrap();
        assert_eq!(friday.start, utc("2026-12-04T13:00:00Z"));
        assert!(window.active_at(utc("2026-12-04T17:00:00Z")).is_none());
        // Sunday and Thursday nights: nothing.
        assert!(window.active_at(utc("2026-12-06T14:00:00Z")).is_none());
        assert!(window.active_at(utc("2026-12-03T14:00:00Z")).is_none());
        assert_eq!(
            window
                .next_after(utc("2026-12-05T18:00:00Z"))
                .unwrap()
                .start,
            utc("2026-12-11T13:00:00Z")
        );
        assert_eq!(
            window.last_ended(utc("2026-12-05T18:00:00Z")).unwrap().end,
            utc("2026-12-05T17:00:00Z")
        );
    }

    #[test]
    fn bad_recurrences_name_what_is_wrong() {
        let mon = vec!["MON".to_string()];
        let cases = [
            (Recurrence::new(&[], "01:00", "UTC", 60), "no days"),
            (
                Recurrence::new(&["Funday".into()], "01:00", "UTC", 60),
                "`Funday` is not a day",
            ),
            (
                Recurrence::new(&mon, "25:00", "UTC", 60),
                "`25:00` is not a time",
            ),
            (
                Recurrence::new(&mon, "01:00", "Mars/Olympus", 60),
                "`Mars/Olympus` is not a time zone",
            ),
            (
                Recurrence::new(&mon, "01:00", "UTC", 0),
                "between 1 minute and 7 days",
            ),
            (Recurrence::new(&mon, "01:00", "UTC", 20_000), "got 20000"),
        ];
        for (result, said) in cases {
            let error = result.unwrap_err().to_string();
            assert!(error.contains(said), "{error}");
        }
    }
}
