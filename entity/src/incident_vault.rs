//! An incident's pseudonym map, sealed with AES-256-GCM (engine::shield::Pseudonyms::seal):
//! the base (the whole map as of `base_revision`) and the count of stores (`revision`); the
//! labels added after the base are in `incident_vault_segment`.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incident_vaults")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: i32,
    #[sea_orm(column_type = "Blob")]
    pub sealed: Vec<u8>,
    pub updated_at: DateTimeUtc,
    pub revision: i32,
    pub base_revision: i32,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentVault")
            .field("incident_id", &self.incident_id)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .field("revision", &self.revision)
            .field("base_revision", &self.base_revision)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
