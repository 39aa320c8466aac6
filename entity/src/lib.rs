//! SeaORM entities: one file per table, nothing but the mapping.

pub mod prelude;

pub mod api_token;
pub mod session;
pub mod user;
