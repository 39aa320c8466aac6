//! One module per page.

pub mod dashboard;
pub mod incident;
pub mod incidents;
pub mod login;
pub mod placeholder;
pub mod topology;
