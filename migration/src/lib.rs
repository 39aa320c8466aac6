//! Schema migrations, applied at every start (`awoooi serve`) and by `awoooi migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_auth;
mod m20261125_000002_incidents;
mod m20261125_000003_ingest_receipts;
mod m20261125_000004_analysis;
mod m20261125_000005_audit;
mod m20261125_000006_approvals;
mod m20261202_000007_knowledge;
mod m20261202_000008_finops;
mod m20261202_000009_finops_fixes;
mod m20261202_000010_notifications;
mod m20261202_000011_storms;
mod m20261205_000012_settle;
mod m20261206_000013_postmortems;
mod m20261207_000014_outbox;
mod m20261207_000015_triage;
mod m20261207_000016_silences;
mod m20261207_000017_escalation;
mod m20261208_000018_knowledge_vectors;
mod m20261209_000019_vault_segments;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_auth::Migration),
            Box::new(m20261125_000002_incidents::Migration),
            Box::new(m20261125_000003_ingest_receipts::Migration),
            Box::new(m20261125_000004_analysis::Migration),
            Box::new(m20261125_000005_audit::Migration),
            Box::new(m20261125_000006_approvals::Migration),
            Box::new(m20261202_000007_knowledge::Migration),
            Box::new(m20261202_000008_finops::Migration),
            Box::new(m20261202_000009_finops_fixes::Migration),
            Box::new(m20261202_000010_notifications::Migration),
            Box::new(m20261202_000011_storms::Migration),
            Box::new(m20261205_000012_settle::Migration),
            Box::new(m20261206_000013_postmortems::Migration),
            Box::new(m20261207_000014_outbox::Migration),
            Box::new(m20261207_000015_triage::Migration),
            Box::new(m20261207_000016_silences::Migration),
            Box::new(m20261207_000017_escalation::Migration),
            Box::new(m20261208_000018_knowledge_vectors::Migration),
            Box::new(m20261209_000019_vault_segments::Migration),
        ]
    }
}
