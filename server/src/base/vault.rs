//! The vault of pseudonym maps: each incident's label map, sealed with the vault key (the
//! incident id, and a segment's revision, as associated data), loaded and stored only here.
//!
//! A map is stored as a base and segments. The incident's `incident_vaults` row holds the
//! base (the whole map as it was at `base_revision`) and `revision`, the count of stores; each
//! store after the base seals only the labels it added, as the `incident_vault_segments` row
//! numbered with its revision. The map is the base and then segments `base_revision + 1 ..=
//! revision` in order. A map that grows with every ingest group (a storm that keeps bringing
//! new addresses) so costs each store what it added, not the whole map; every
//! [`SEGMENTS_PER_BASE`]th store seals the whole map again as the new base and deletes the
//! segments it took in, which bounds what a reader opens.

use chrono::{DateTime, Utc};
use engine::shield::boundary::Boundary;
use engine::shield::{Mark, Pseudonyms, VaultKey};
use entity::{incident_vault, incident_vault_segment};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// Stores after a base before the next store seals the whole map as a new base.
pub const SEGMENTS_PER_BASE: i32 = 32;

/// Reads of a map without its lock that may race a new base (see [`load`]).
const READ_TRIES: usize = 5;

/// Where an incident's stored map stands: the count of its stores, and the store its base was
/// sealed at (segments hold the stores after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub revision: i32,
    base: i32,
}

/// An incident's label map as read, where it stood then, and its [`Mark`] then: what
/// [`store`] needs to seal only what was added since.
pub struct Stored {
    pub names: Pseudonyms,
    pub at: Revision,
    pub mark: Mark,
}

/// Where incident `incident_id`'s map stands, if it has one, without reading it. With `lock`,
/// the row stays locked until the transaction ends (PostgreSQL; SQLite write transactions
/// are serialised anyway), so two writers cannot both add labels and lose one's.
pub async fn head(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    lock: bool,
) -> Result<Option<Revision>, DbErr> {
    let mut query = incident_vault::Entity::find_by_id(incident_id)
        .select_only()
        .column(incident_vault::Column::Revision)
        .column(incident_vault::Column::BaseRevision);
    if lock && conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query
        .into_tuple::<(i32, i32)>()
        .one(conn)
        .await?
        .map(|(revision, base)| Revision { revision, base }))
}

/// An incident's label map, if it has one; `lock` as for [`head`].
pub async fn load_names(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    lock: bool,
) -> Result<Option<Pseudonyms>, DbErr> {
    Ok(load(conn, key, incident_id, lock).await?.map(|s| s.names))
}

/// An incident's label map and where it stands, if it has one; `lock` as for [`head`].
///
/// Without the lock, a store that seals a new base and deletes the segments may commit
/// between reading the base and reading the segments (PostgreSQL reads each statement's own
/// snapshot): the segments then do not follow on from the base read, and the read starts
/// again, so a map is never returned with labels missing.
pub async fn load(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    lock: bool,
) -> Result<Option<Stored>, DbErr> {
    for _ in 0..READ_TRIES {
        let mut query = incident_vault::Entity::find_by_id(incident_id);
        if lock && conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(row) = query.one(conn).await? else {
            return Ok(None);
        };
        let at = Revision {
            revision: row.revision,
            base: row.base_revision,
        };
        let mut names = open(key, incident_id, &base_context(incident_id), &row.sealed)?;
        if add_segments(conn, key, incident_id, &mut names, at.base, at).await? {
            let mark = names.mark();
            return Ok(Some(Stored { names, at, mark }));
        }
        if lock {
            break;
        }
    }
    Err(DbErr::Custom(format!(
        "incident {incident_id}: the label map's segments do not follow on from its base"
    )))
}

/// Brings `names`, the map as it stood at revision `from`, up to `to` (where the vault stands
/// now, read with the lock) by opening the segments in between. False, changing nothing,
/// when a base sealed since then took those segments in: read the whole map with [`load`].
/// On an error `names` may hold part of the segments: drop it.
pub async fn catch_up(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    names: &mut Pseudonyms,
    from: i32,
    to: Revision,
) -> Result<bool, DbErr> {
    if from < to.base || from > to.revision {
        return Ok(false);
    }
    add_segments(conn, key, incident_id, names, from, to).await
}

/// Opens segments `after + 1 ..= to.revision` into `names`; false, changing nothing, when one
/// of them is missing. On an error `names` may hold some of them: drop it.
async fn add_segments(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    names: &mut Pseudonyms,
    after: i32,
    to: Revision,
) -> Result<bool, DbErr> {
    if after == to.revision {
        return Ok(true);
    }
    let rows = incident_vault_segment::Entity::find()
        .filter(incident_vault_segment::Column::IncidentId.eq(incident_id))
        .filter(incident_vault_segment::Column::Revision.gt(after))
        .filter(incident_vault_segment::Column::Revision.lte(to.revision))
        .order_by_asc(incident_vault_segment::Column::Revision)
        .all(conn)
        .await?;
    let follows = rows
        .iter()
        .zip(after + 1..)
        .all(|(row, expected)| row.revision == expected);
    if !follows || rows.len() != usize::try_from(to.revision - after).unwrap_or(0) {
        return Ok(false);
    }
    for row in rows {
        let context = segment_context(incident_id, row.revision);
        names
            .open_into(&row.sealed, key, &context)
            .map_err(|e| DbErr::Custom(format!("incident {incident_id}: {e}")))?;
    }
    Ok(true)
}

/// Stores an incident's label map; returns where it stands now. `before` is where the map
/// stood when it was read and its mark then (none: the incident has no map yet): the labels
/// added since are sealed as one segment, or, every [`SEGMENTS_PER_BASE`]th store, the whole
/// map as a new base. The caller holds the map's lock ([`head`] or [`load`] with `lock`); a
/// map stored by someone else since `before` is refused rather than overwritten.
pub async fn store(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    incident_id: i32,
    names: &Pseudonyms,
    before: Option<(Revision, Mark)>,
    now: DateTime<Utc>,
) -> Result<Revision, DbErr> {
    let Some((at, mark)) = before else {
        incident_vault::ActiveModel {
            incident_id: Set(incident_id),
            sealed: Set(names.seal(key, &base_context(incident_id))),
            updated_at: Set(now),
            revision: Set(0),
            base_revision: Set(0),
        }
        .insert(conn)
        .await?;
        return Ok(Revision {
            revision: 0,
            base: 0,
        });
    };
    let next = at.revision.checked_add(1).ok_or_else(|| {
        DbErr::Custom(format!(
            "incident {incident_id}: label map revisions exhausted"
        ))
    })?;
    let rebase = next - at.base >= SEGMENTS_PER_BASE;
    let mut update = incident_vault::Entity::update_many()
        .col_expr(incident_vault::Column::Revision, Expr::value(next))
        .col_expr(incident_vault::Column::UpdatedAt, Expr::value(now))
        .filter(incident_vault::Column::IncidentId.eq(incident_id))
        .filter(incident_vault::Column::Revision.eq(at.revision));
    if rebase {
        update = update
            .col_expr(
                incident_vault::Column::Sealed,
                Expr::value(names.seal(key, &base_context(incident_id))),
            )
            .col_expr(incident_vault::Column::BaseRevision, Expr::value(next));
    }
    if update.exec(conn).await?.rows_affected != 1 {
        return Err(DbErr::Custom(format!(
            "incident {incident_id}: the label map changed since it was read"
        )));
    }
    if rebase {
        incident_vault_segment::Entity::delete_many()
            .filter(incident_vault_segment::Column::IncidentId.eq(incident_id))
            .filter(incident_vault_segment::Column::Revision.lte(next))
            .exec(conn)
            .await?;
        return Ok(Revision {
            revision: next,
            base: next,
        });
    }
    incident_vault_segment::ActiveModel {
        incident_id: Set(incident_id),
        revision: Set(next),
        sealed: Set(names.seal_since(mark, key, &segment_context(incident_id, next))),
    }
    .insert(conn)
    .await?;
    Ok(Revision {
        revision: next,
        base: at.base,
    })
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
    let stored = load(txn, key, incident_id, true).await?;
    let before = stored.as_ref().map(|s| (s.at, s.mark));
    let names = stored.map(|s| s.names).unwrap_or_default();
    let mark = names.mark();
    let mut boundary = Boundary::new(names);
    let out = f(&mut boundary);
    let names = boundary.into_names();
    if names.mark() != mark {
        store(txn, key, incident_id, &names, before, Utc::now()).await?;
    }
    Ok(out)
}

fn open(
    key: &VaultKey,
    incident_id: i32,
    context: &[u8],
    sealed: &[u8],
) -> Result<Pseudonyms, DbErr> {
    Pseudonyms::open(sealed, key, context)
        .map_err(|e| DbErr::Custom(format!("incident {incident_id}: {e}")))
}

fn base_context(incident_id: i32) -> Vec<u8> {
    format!("awoooi-incident-{incident_id}").into_bytes()
}

/// A segment opens only as the segment of its incident and revision.
fn segment_context(incident_id: i32, revision: i32) -> Vec<u8> {
    format!("awoooi-incident-{incident_id}-segment-{revision}").into_bytes()
}
