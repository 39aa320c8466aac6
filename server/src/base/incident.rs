//! The incident: its status type (`engine::incident::IncidentStatus`, stored as text and read
//! back strictly).

pub use engine::incident::IncidentStatus;
