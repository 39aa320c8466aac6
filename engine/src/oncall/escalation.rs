//! Escalation policies: an ordered list of steps (page someone, then wait), chosen for an
//! incident by a route (severity, service, namespace — the same shape as notification
//! routes). Step `i` is due once the waits of the steps before it have run out.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::Role;
use crate::alert::Severity;

/// Whom a step pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepTarget {
    User(String),
    /// Every user with the role.
    Role(Role),
    /// Whoever is on call on the schedule at the time.
    Schedule(String),
    /// A notification channel, by name.
    Channel(String),
}

/// One step: page `target`, then wait `wait_minutes` before the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub target: StepTarget,
    pub wait_minutes: u32,
}

/// Which incidents a policy is for; an empty list allows any value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    #[serde(default)]
    pub severities: Vec<Severity>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl Route {
    pub fn matches(
        &self,
        severity: Severity,
        service: Option<&str>,
        namespace: Option<&str>,
    ) -> bool {
        let any = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        (self.severities.is_empty() || self.severities.contains(&severity))
            && any(&self.services, service)
            && any(&self.namespaces, namespace)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("no steps: a policy pages someone at least once")]
    NoSteps,
    #[error("step {0}: waits {1} minute(s); at most 1440")]
    LongWait(usize, u32),
    #[error("step {0}: the target's name is empty")]
    EmptyTarget(usize),
}

/// Checks steps: at least one, names given, waits of at most a day.
pub fn check_steps(steps: &[Step]) -> Result<(), PolicyError> {
    if steps.is_empty() {
        return Err(PolicyError::NoSteps);
    }
    for (i, step) in steps.iter().enumerate() {
        if step.wait_minutes > 1440 {
            return Err(PolicyError::LongWait(i + 1, step.wait_minutes));
        }
        let name = match &step.target {
            StepTarget::User(n) | StepTarget::Schedule(n) | StepTarget::Channel(n) => n.trim(),
            StepTarget::Role(_) => "role",
        };
        if name.is_empty() {
            return Err(PolicyError::EmptyTarget(i + 1));
        }
    }
    Ok(())
}

/// When step `index` falls due for an escalation that started at `started`.
pub fn due_at(steps: &[Step], started: DateTime<Utc>, index: usize) -> DateTime<Utc> {
    let waited: i64 = steps
        .iter()
        .take(index)
        .map(|s| i64::from(s.wait_minutes))
        .sum();
    started + Duration::minutes(waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(target: StepTarget, wait: u32) -> Step {
        Step {
            target,
            wait_minutes: wait,
        }
    }

    #[test]
    fn steps_fall_due_after_the_waits_before_them() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let steps = [
            step(StepTarget::Schedule("primary".into()), 5),
            step(StepTarget::User("lead".into()), 10),
            step(StepTarget::Role(Role::Cto), 0),
        ];
        assert_eq!(due_at(&steps, at, 0), at);
        assert_eq!(due_at(&steps, at, 1), at + Duration::minutes(5));
        assert_eq!(due_at(&steps, at, 2), at + Duration::minutes(15));
    }

    #[test]
    fn routes_match_like_notification_routes() {
        let route = Route {
            severities: vec![Severity::Critical],
            services: vec![],
            namespaces: vec!["prod".into()],
        };
        assert!(route.matches(Severity::Critical, Some("api"), Some("prod")));
        assert!(!route.matches(Severity::Warning, Some("api"), Some("prod")));
        assert!(!route.matches(Severity::Critical, Some("api"), None));
        assert!(Route::default().matches(Severity::Info, None, None));
    }

    #[test]
    fn bad_policies_name_the_step() {
        assert_eq!(check_steps(&[]), Err(PolicyError::NoSteps));
        let steps = [
            step(StepTarget::User("a".into()), 5),
            step(StepTarget::Channel(" ".into()), 5),
        ];
        assert_eq!(check_steps(&steps), Err(PolicyError::EmptyTarget(2)));
        let steps = [step(StepTarget::User("a".into()), 2000)];
        assert_eq!(check_steps(&steps), Err(PolicyError::LongWait(1, 2000)));
    }
}
