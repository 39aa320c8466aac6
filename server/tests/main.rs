//! The server's integration tests, in one binary (one link instead of one per area): each
//! module is one area against a real server on a loopback socket, on SQLite and PostgreSQL
//! where it stores anything (ARCHITECTURE.md lists the exceptions).

#[macro_use]
mod support;
mod kube_api;

mod ansible;
mod api;
mod approval_race;
mod approvals;
mod audit;
mod authorization;
mod brains;
mod crashes;
mod escalation;
mod evals;
mod faults;
mod finops;
mod finops_prometheus;
mod graph;
mod hardening;
mod ingest;
#[cfg(feature = "kafka")]
mod kafka;
mod knowledge;
mod kube;
mod mcp;
mod mcp_actions;
mod notifications;
mod oncall;
mod postmortem;
mod reads;
mod redact;
mod replicas;
mod retrieval;
mod settle;
mod shell;
mod silences;
mod storms;
mod streams;
mod tracer;
