//! One module per page.

pub mod approvals;
pub mod audit;
pub mod dashboard;
pub mod finops;
pub mod incident;
pub mod incidents;
pub mod knowledge;
pub mod login;
pub mod oncall;
pub mod placeholder;
pub mod settings;
pub mod silences;
pub mod topology;
