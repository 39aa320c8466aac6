//! The vault of pseudonym maps: each incident's label map, sealed with the vault key (the
//! incident id as associated data), loaded and stored only here.

use chrono::{DateTime, Utc};
use engine::shield::boundary::Boundary;
use engine::shield::{Pseudonyms, VaultKey};
use entity::incident_vault;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set};

/// An incident's label map, if it has one. With `lock`, the row stays locked until the
/// transaction ends (PostgreSQL; SQLite write transactions are serialised anyway), so two
/// writers cannot both add labels and lose one's.
pub async fn load_names(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    lock: bool,
) -> Result<Option<Pseudonyms>, DbErr> {
    match load_sealed(conn, incident_id, lock).await? {
        Some(sealed) => open_names(key, incident_id, &sealed).map(Some),
        None => Ok(None),
    }
}

/// An incident's label map as stored (sealed), if it has one; `lock` as for [`load_names`].
pub async fn load_sealed(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    lock: bool,
) -> Result<Option<Vec<u8>>, DbErr> {
    use sea_orm::QuerySelect;
    let mut query = incident_vault::Entity::find_by_id(incident_id);
    if lock && conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(conn).await?.map(|row| row.sealed))
}

/// Opens incident `incident_id`'s sealed label map.
pub fn open_names(key: &VaultKey, incident_id: i32, sealed: &[u8]) -> Result<Pseudonyms, DbErr> {
    Pseudonyms::open(sealed, key, &vault_context(incident_id))
        .map_err(|e| DbErr::Custom(format!("incident {incident_id}: {e}")))
}

/// Seals and stores an incident's label map (`existed`: update, else insert); returns what
/// was stored.
pub async fn store_names(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    names: &Pseudonyms,
    existed: bool,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, DbErr> {
    let sealed = names.seal(key, &vault_context(incident_id));
    let row = incident_vault::ActiveModel {
        incident_id: Set(incident_id),
        sealed: Set(sealed.clone()),
        updated_at: Set(now),
    };
    if existed {
        row.update(conn).await?;
    } else {
        row.insert(conn).await?;
    }
    Ok(sealed)
}

/// Runs `f` with incident `incident_id`'s label map as a [`Boundary`], inside `txn` with the
/// map's row locked, and stores the map again if `f` added labels: what a person types about an
/// incident gets the incident's own labels (`[IP_1]` everywhere for the same address).
pub async fn with_boundary<T>(
    txn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    f: impl FnOnce(&mut Boundary) -> T,
) -> Result<T, DbErr> {
    let stored = load_names(txn, key, incident_id, true).await?;
    let existed = stored.is_some();
    let names = stored.unwrap_or_default();
    let before = names.len();
    let mut boundary = Boundary::new(names);
    let out = f(&mut boundary);
    let names = boundary.into_names();
    if names.len() != before {
        store_names(txn, key, incident_id, &names, existed, Utc::now()).await?;
    }
    Ok(out)
}

fn vault_context(incident_id: i32) -> Vec<u8> {
    format!("awoooi-incident-{incident_id}").into_bytes()
}
