//! The `awoooi` server, in four floors; each imports only from the floors below it (checked by
//! `floors.rs`, see ARCHITECTURE.md):
//!
//! 1. [`base`]: the event bus, the incident, the vault of pseudonym maps, the database, audit;
//! 2. [`services`]: ingest, analysis, approvals, knowledge, notifications, FinOps, auth;
//! 3. [`executors`]: what carries out an approved action, one file per backend;
//! 4. [`edge`]: HTTP, GraphQL, MCP, the CLI commands and the state builder that wires it all.

pub mod base;
pub mod edge;
pub mod executors;
pub mod services;

#[cfg(test)]
mod floors;
