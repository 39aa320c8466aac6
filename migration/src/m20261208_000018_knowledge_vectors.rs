//! Semantic retrieval: one row per knowledge entry once the embedding job has claimed it —
//! the model that made the vector (its fingerprint; empty while pending), the vector (f32
//! little-endian), when it was made, and the job's lease (who holds it, until when, in Unix
//! milliseconds). A row whose model is not the configured one is stale and embedded again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KnowledgeVectors::Table)
                    .if_not_exists()
                    .col(integer(KnowledgeVectors::EntryId).primary_key())
                    .col(string(KnowledgeVectors::Model))
                    .col(binary_null(KnowledgeVectors::Vector))
                    .col(big_integer(KnowledgeVectors::EmbeddedAt))
                    .col(string_null(KnowledgeVectors::LeaseHolder))
                    .col(big_integer_null(KnowledgeVectors::LeaseUntil))
                    .foreign_key(
                        ForeignKey::create()
                            .from(KnowledgeVectors::Table, KnowledgeVectors::EntryId)
                            .to(KnowledgeEntries::Table, KnowledgeEntries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The index's refresh reads what changed since its last read.
        manager
            .create_index(
                Index::create()
                    .name("idx_knowledge_vectors_model_embedded")
                    .table(KnowledgeVectors::Table)
                    .col(KnowledgeVectors::Model)
                    .col(KnowledgeVectors::EmbeddedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KnowledgeVectors::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KnowledgeVectors {
    Table,
    EntryId,
    Model,
    Vector,
    EmbeddedAt,
    LeaseHolder,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum KnowledgeEntries {
    Table,
    Id,
}
