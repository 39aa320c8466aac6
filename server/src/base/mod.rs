//! Floor 1: what every service stands on. Knows no service.

pub mod audit;
pub mod bus;
pub mod cluster;
pub mod crash;
pub mod db;
pub mod incident;
pub mod keys;
pub mod shared;
pub mod signing;
pub mod telemetry;
pub mod vault;
