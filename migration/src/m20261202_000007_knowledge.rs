//! The knowledge base: one entry per (incident, path), searchable by the database's own
//! full-text search — an FTS5 index kept by triggers on SQLite, a generated `tsvector` with a
//! GIN index on PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_FTS: &[&str] = &[
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(title, body, service, alert_names, root_cause, \
     content='knowledge_entries', content_rowid='id')",
    "CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_entries BEGIN \
     INSERT INTO knowledge_fts(rowid, title, body, service, alert_names, root_cause) \
     VALUES (new.id, new.title, new.body, new.service, new.alert_names, new.root_cause); END",
    "CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_entries BEGIN \
     INSERT INTO knowledge_fts(knowledge_fts, rowid, title, body, service, alert_names, root_cause) \
     VALUES ('delete', old.id, old.title, old.body, old.service, old.alert_names, old.root_cause); END",
    "CREATE TRIGGER knowledge_fts_update AFTER UPDATE ON knowledge_entries BEGIN \
     INSERT INTO knowledge_fts(knowledge_fts, rowid, title, body, service, alert_names, root_cause) \
     VALUES ('delete', old.id, old.title, old.body, old.service, old.alert_names, old.root_cause); \
     INSERT INTO knowledge_fts(rowid, title, body, service, alert_names, root_cause) \
     VALUES (new.id, new.title, new.body, new.service, new.alert_names, new.root_cause); END",
];

const POSTGRES_FTS: &[&str] = &[
    "ALTER TABLE knowledge_entries ADD COLUMN search tsvector GENERATED ALWAYS AS (\
     setweight(to_tsvector('simple', coalesce(service, '') || ' ' || coalesce(alert_names, '') || ' ' || coalesce(root_cause, '')), 'A') || \
     setweight(to_tsvector('simple', coalesce(title, '')), 'B') || \
     setweight(to_tsvector('simple', coalesce(body, '')), 'C')) STORED",
    "CREATE INDEX idx_knowledge_search ON knowledge_entries USING GIN (search)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KnowledgeEntries::Table)
                    .if_not_exists()
                    .col(pk_auto(KnowledgeEntries::Id))
                    .col(integer(KnowledgeEntries::IncidentId))
                    // A, B_MANUAL, B_AUTO_SUCCESS, B_AUTO_FAILURE, PLAYBOOK.
                    .col(string(KnowledgeEntries::PathType))
                    .col(integer_null(KnowledgeEntries::RelatedApprovalId))
                    .col(text(KnowledgeEntries::Title))
                    .col(text(KnowledgeEntries::Body))
                    .col(string_null(KnowledgeEntries::Service))
                    // Space-separated, for search.
                    .col(text(KnowledgeEntries::AlertNames))
                    .col(string_null(KnowledgeEntries::RootCause))
                    // `kind target` of the fix, and whether it WORKED or FAILED.
                    .col(string_null(KnowledgeEntries::Action))
                    .col(string_null(KnowledgeEntries::Outcome))
                    .col(timestamp_with_time_zone(KnowledgeEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Idempotency is the index's job, never a read-then-write.
        manager
            .create_index(
                Index::create()
                    .name("idx_knowledge_incident_path")
                    .table(KnowledgeEntries::Table)
                    .col(KnowledgeEntries::IncidentId)
                    .col(KnowledgeEntries::PathType)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_knowledge_approval")
                    .table(KnowledgeEntries::Table)
                    .col(KnowledgeEntries::RelatedApprovalId)
                    .to_owned(),
            )
            .await?;
        let statements = match manager.get_database_backend() {
            sea_orm_migration::sea_orm::DatabaseBackend::Sqlite => SQLITE_FTS,
            sea_orm_migration::sea_orm::DatabaseBackend::Postgres => POSTGRES_FTS,
            _ => &[],
        };
        let db = manager.get_connection();
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared("DROP TABLE IF EXISTS knowledge_fts")
                .await?;
        }
        manager
            .drop_table(Table::drop().table(KnowledgeEntries::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KnowledgeEntries {
    Table,
    Id,
    IncidentId,
    PathType,
    RelatedApprovalId,
    Title,
    Body,
    Service,
    AlertNames,
    RootCause,
    Action,
    Outcome,
    CreatedAt,
}
