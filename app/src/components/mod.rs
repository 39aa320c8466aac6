//! Pieces shared by pages.

pub mod action;
pub mod approval;
pub mod graph;
pub mod layout;
pub mod status;
pub mod terminal;
pub mod triage;
