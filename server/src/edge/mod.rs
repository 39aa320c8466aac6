//! Floor 4: the edge and the wiring — HTTP, GraphQL, MCP, the CLI commands, the state builder.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod evals;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod mcp;
pub mod slack;
pub mod ssr;
pub mod state;
pub mod tracer;
pub mod webhooks;
