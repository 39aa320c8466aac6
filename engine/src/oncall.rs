//! On-call logic, pure: label matchers in Alertmanager's syntax (silences), recurring
//! maintenance windows in a time zone, weekly rotations with overrides (who is on call), and
//! escalation policies (steps, routes, when each step is due).

pub mod escalation;
pub mod matchers;
pub mod rotation;
pub mod windows;
