//! Silences and maintenance windows: created (audited; matching everything takes an ADMIN),
//! read by ingest inside its transaction ([`holding`], [`record_in`]): a matching alert is
//! stored in `silenced_alerts` and counted, and opens, notifies and analyses nothing. The
//! worker warns creators before a silence ends and, after each end, sends the digest of what
//! it held back — each once, whatever the number of replicas (conditional updates in the
//! notification's transaction).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use engine::Role;
use engine::alert::{AlertEvent, AlertStatus};
use engine::oncall::matchers::{MatchOp, Matcher, Matchers};
use engine::oncall::windows::Recurrence;
use engine::shield::{Pseudonyms, Shield, VaultKey};
use entity::silence::{self, SilenceKind};
use entity::{alert, silenced_alert};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use super::{Oncall, OncallError};
use crate::services::notify::{self, EventKind, SilenceFacts};

/// The longest a one-off silence may last.
const MAX_SILENCE_DAYS: i64 = 30;
/// How long before its end a silence's creator is warned.
pub const WARN_BEFORE: Duration = Duration::minutes(15);

fn context(id: i32) -> Vec<u8> {
    format!("awoooi-silence-{id}").into_bytes()
}

/// A silence in force, its matchers opened.
#[derive(Debug, Clone)]
pub struct Holding {
    pub id: i32,
    /// The occurrence in force (a one-off silence has one, from its start).
    pub occurrence_start: DateTime<Utc>,
    matchers: Matchers,
}

/// The labels a silence matches an alert on: its own labels, with `alertname`, `service` and
/// `severity` as Alertmanager users expect them.
fn labels_of(event: &AlertEvent) -> BTreeMap<String, String> {
    let mut labels = event.labels.clone();
    labels
        .entry("alertname".into())
        .or_insert_with(|| event.name.clone());
    if let Some(service) = &event.service {
        labels
            .entry("service".into())
            .or_insert_with(|| service.clone());
    }
    labels
        .entry("severity".into())
        .or_insert_with(|| event.severity.as_str().to_ascii_lowercase());
    labels
}

/// The silences in force at `now`, as `conn` sees them (ingest reads them in its transaction,
/// so a silence created on any replica holds from its commit).
pub async fn holding(
    conn: &impl ConnectionTrait,
    key: &VaultKey,
    now: DateTime<Utc>,
) -> Result<Vec<Holding>, DbErr> {
    let rows = silence::Entity::find()
        .filter(silence::Column::ExpiredAt.is_null())
        .filter(silence::Column::StartsAt.lte(now))
        .filter(
            Condition::any()
                .add(silence::Column::EndsAt.is_null())
                .add(silence::Column::EndsAt.gt(now)),
        )
        .order_by_asc(silence::Column::Id)
        .all(conn)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let occurrence_start = match (&row.kind, &row.recurrence) {
            (SilenceKind::Maintenance, Some(text)) => {
                match serde_json::from_str::<Recurrence>(text)
                    .ok()
                    .and_then(|r| r.active_at(now))
                {
                    Some(occurrence) => occurrence.start,
                    None => continue,
                }
            }
            _ => row.starts_at,
        };
        match open_matchers(key, &row) {
            Ok(matchers) => out.push(Holding {
                id: row.id,
                occurrence_start,
                matchers,
            }),
            Err(e) => {
                tracing::error!(silence = row.id, error = %e, "silence cannot be read; it holds nothing")
            }
        }
    }
    Ok(out)
}

fn open_matchers(key: &VaultKey, row: &silence::Model) -> Result<Matchers, String> {
    let plain = key
        .open(&row.matchers_sealed, &context(row.id))
        .map_err(|e| e.to_string())?;
    let list: Vec<Matcher> = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
    Matchers::new(list).map_err(|e| e.to_string())
}

/// The first silence in force that matches `event`.
pub fn first_match<'a>(holding: &'a [Holding], event: &AlertEvent) -> Option<&'a Holding> {
    if holding.is_empty() {
        return None;
    }
    let labels = labels_of(event);
    holding.iter().find(|h| h.matchers.matches(&labels))
}

/// Stores `event` as held back by `silence` (inside ingest's transaction): a new alert, or one
/// more firing (or its resolution) of one held before in this occurrence. Texts are
/// pseudonymised; `incident_id` is the incident the alert already belongs to, if any.
pub async fn record_in(
    conn: &impl ConnectionTrait,
    shield: &Shield,
    silence: &Holding,
    event: &AlertEvent,
    incident_id: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut names = Pseudonyms::new();
    let labels: BTreeMap<String, String> = event
        .labels
        .iter()
        .map(|(k, v)| (shield.redact(k, &mut names), shield.redact(v, &mut names)))
        .collect();
    let firing = event.status == AlertStatus::Firing;
    let row = silenced_alert::ActiveModel {
        silence_id: Set(silence.id),
        occurrence_start: Set(silence.occurrence_start),
        fingerprint: Set(event.fingerprint.clone()),
        name: Set(shield.redact(&event.name, &mut names)),
        service: Set(event
            .service
            .as_deref()
            .map(|s| shield.redact(s, &mut names))),
        labels: Set(serde_json::to_string(&labels).expect("labels serialise")),
        incident_id: Set(incident_id),
        status: Set(event.status),
        count: Set(i32::from(firing)),
        first_seen: Set(now),
        last_seen: Set(now),
        resolved_at: Set((!firing).then_some(now)),
        ..Default::default()
    };
    let count = Expr::col((silenced_alert::Entity, silenced_alert::Column::Count));
    let mut on_conflict = OnConflict::columns([
        silenced_alert::Column::SilenceId,
        silenced_alert::Column::OccurrenceStart,
        silenced_alert::Column::Fingerprint,
    ]);
    on_conflict
        .value(silenced_alert::Column::Status, Expr::value(event.status))
        .value(silenced_alert::Column::LastSeen, Expr::value(now))
        .value(
            silenced_alert::Column::ResolvedAt,
            Expr::value((!firing).then_some(now)),
        );
    if firing {
        on_conflict.value(silenced_alert::Column::Count, count.add(1));
    }
    silenced_alert::Entity::insert(row)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(conn)
        .await?;
    metrics::counter!("awoooi_alerts_silenced_total").increment(1);
    Ok(())
}

/// What a person asks for.
pub struct NewSilence {
    /// Alertmanager syntax.
    pub matchers: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
}

/// What a person asks for, recurring.
pub struct NewWindow {
    pub name: String,
    pub matchers: String,
    pub recurrence: Recurrence,
    /// The window recurs until then (or until expired).
    pub until: Option<DateTime<Utc>>,
    pub comment: String,
}

impl Oncall {
    /// Creates a one-off silence from now (or `starts_at`) to `ends_at`.
    pub async fn create_silence(
        &self,
        new: NewSilence,
        by: &str,
        role: Role,
    ) -> Result<silence::Model, OncallError> {
        let now = Utc::now();
        let starts_at = Ord::max(new.starts_at.unwrap_or(now), now - Duration::minutes(1));
        if new.ends_at <= starts_at {
            return Err(OncallError::Invalid(
                "a silence must end after it starts".into(),
            ));
        }
        if new.ends_at - starts_at > Duration::days(MAX_SILENCE_DAYS) {
            return Err(OncallError::Invalid(format!(
                "a silence lasts at most {MAX_SILENCE_DAYS} days; use a maintenance window for what recurs"
            )));
        }
        let matchers = self.checked_matchers(&new.matchers, role)?;
        self.insert(
            SilenceKind::Silence,
            None,
            matchers,
            &new.comment,
            starts_at,
            Some(new.ends_at),
            None,
            by,
        )
        .await
    }

    /// Creates a maintenance window (a recurring silence) from now until `until`.
    pub async fn create_window(
        &self,
        new: NewWindow,
        by: &str,
        role: Role,
    ) -> Result<silence::Model, OncallError> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(OncallError::Invalid(
                "a maintenance window needs a name of 1 to 200 characters".into(),
            ));
        }
        let now = Utc::now();
        if new.until.is_some_and(|u| u <= now) {
            return Err(OncallError::Invalid("`until` is in the past".into()));
        }
        let matchers = self.checked_matchers(&new.matchers, role)?;
        let recurrence = serde_json::to_string(&new.recurrence).expect("recurrence serialises");
        self.insert(
            SilenceKind::Maintenance,
            Some(name.to_owned()),
            matchers,
            &new.comment,
            now,
            new.until,
            Some(recurrence),
            by,
        )
        .await
    }

    /// Silences alerts like stored alert `alert_id` (its name and labels, as they really
    /// were) for `minutes`.
    pub async fn silence_like(
        &self,
        alert_id: i32,
        minutes: i64,
        comment: &str,
        by: &str,
    ) -> Result<silence::Model, OncallError> {
        if !(1..=MAX_SILENCE_DAYS * 24 * 60).contains(&minutes) {
            return Err(OncallError::Invalid(format!(
                "minutes must be between 1 and {}",
                MAX_SILENCE_DAYS * 24 * 60
            )));
        }
        let found = alert::Entity::find_by_id(alert_id)
            .one(&self.0.db)
            .await?
            .ok_or_else(|| OncallError::Missing(format!("alert {alert_id} not found")))?;
        let mut labels: BTreeMap<String, String> =
            serde_json::from_str(&found.labels).unwrap_or_default();
        labels.insert("alertname".into(), found.name.clone());
        let names =
            crate::base::vault::load_names(&self.0.db, &self.0.key, found.incident_id, false)
                .await?
                .unwrap_or_default();
        let real = engine::shield::boundary::Boundary::new(names).real_labels(&labels);
        let list: Vec<Matcher> = real
            .into_iter()
            .map(|(name, value)| Matcher {
                name,
                op: MatchOp::Equal,
                value,
            })
            .collect();
        let matchers = Matchers::new(list)
            .map_err(|e| OncallError::Invalid(format!("alert {alert_id}: {e}")))?;
        let now = Utc::now();
        self.insert(
            SilenceKind::Silence,
            None,
            matchers,
            comment,
            now,
            Some(now + Duration::minutes(minutes)),
            None,
            by,
        )
        .await
    }

    fn checked_matchers(&self, text: &str, role: Role) -> Result<Matchers, OncallError> {
        let matchers = Matchers::parse(text).map_err(|e| OncallError::Invalid(e.to_string()))?;
        if matchers.match_everything() && role != Role::Admin {
            return Err(OncallError::Forbidden(format!(
                "{matchers} matches every alert; only an ADMIN may silence everything"
            )));
        }
        Ok(matchers)
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        kind: SilenceKind,
        name: Option<String>,
        matchers: Matchers,
        comment: &str,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        recurrence: Option<String>,
        by: &str,
    ) -> Result<silence::Model, OncallError> {
        let comment = comment.trim();
        if comment.is_empty() || comment.len() > 2_000 {
            return Err(OncallError::Invalid(
                "say why in the comment (1 to 2000 characters)".into(),
            ));
        }
        // One label map for the silence's texts: the same value, the same label.
        let shield = &self.0.shield;
        let mut names = Pseudonyms::new();
        let display = shield.redact(&matchers.to_string(), &mut names);
        let comment = shield.redact(comment, &mut names);
        let name = name.map(|n| shield.redact(&n, &mut names));
        let now = Utc::now();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let row = silence::ActiveModel {
            kind: Set(kind),
            name: Set(name),
            matchers_sealed: Set(Vec::new()),
            matchers: Set(display),
            comment: Set(comment),
            created_by: Set(by.to_owned()),
            created_at: Set(now),
            starts_at: Set(starts_at),
            ends_at: Set(ends_at),
            recurrence: Set(recurrence),
            expired_at: Set(None),
            expired_by: Set(None),
            warned_at: Set(None),
            digested_until: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let plain = serde_json::to_vec(matchers.list()).expect("matchers serialise");
        let sealed = self.0.key.seal(&plain, &context(row.id));
        let mut active: silence::ActiveModel = row.into();
        active.matchers_sealed = Set(sealed);
        let row = active.update(&txn).await?;
        let details =
            json!({"kind": kind.as_str(), "matchers": row.matchers, "ends_at": row.ends_at});
        crate::base::audit::append_in(
            &txn,
            by,
            "silence.created",
            &format!("silence:{}", row.id),
            details,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(
            silence = row.id,
            kind = kind.as_str(),
            by,
            "silence created"
        );
        Ok(row)
    }

    /// Ends silence `id` now (its digest follows).
    pub async fn expire_silence(&self, id: i32, by: &str) -> Result<silence::Model, OncallError> {
        let now = Utc::now();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let found = silence::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| OncallError::Missing(format!("silence {id} not found")))?;
        if found.expired_at.is_some() || found.ends_at.is_some_and(|e| e <= now) {
            txn.rollback().await?;
            return Err(OncallError::Conflict(format!(
                "silence {id} has ended already"
            )));
        }
        silence::Entity::update_many()
            .col_expr(silence::Column::ExpiredAt, Expr::value(Some(now)))
            .col_expr(silence::Column::ExpiredBy, Expr::value(Some(by)))
            .filter(silence::Column::Id.eq(id))
            .filter(silence::Column::ExpiredAt.is_null())
            .exec(&txn)
            .await?;
        crate::base::audit::append_in(
            &txn,
            by,
            "silence.expired",
            &format!("silence:{id}"),
            json!({}),
        )
        .await?;
        let row = silence::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| OncallError::Missing(format!("silence {id} not found")))?;
        txn.commit().await?;
        Ok(row)
    }

    /// At most `first` silences, newest first; `holding_only` keeps those in force now (a
    /// window between its occurrences counts as not holding), read from the ones that can be.
    pub async fn silences(
        &self,
        holding_only: bool,
        first: u64,
    ) -> Result<Vec<silence::Model>, OncallError> {
        let mut query = silence::Entity::find().order_by_desc(silence::Column::Id);
        let now = Utc::now();
        if holding_only {
            query = query
                .filter(silence::Column::ExpiredAt.is_null())
                .filter(silence::Column::StartsAt.lte(now))
                .filter(
                    Condition::any()
                        .add(silence::Column::EndsAt.is_null())
                        .add(silence::Column::EndsAt.gt(now)),
                );
        } else {
            query = query.limit(first);
        }
        let rows = query.all(&self.0.db).await?;
        Ok(rows
            .into_iter()
            .filter(|r| !holding_only || holds_at(r, now))
            .take(usize::try_from(first).unwrap_or(usize::MAX))
            .collect())
    }

    /// What silence `id` held back, newest occurrence first.
    pub async fn held_back(&self, id: i32) -> Result<Vec<silenced_alert::Model>, OncallError> {
        Ok(silenced_alert::Entity::find()
            .filter(silenced_alert::Column::SilenceId.eq(id))
            .order_by_desc(silenced_alert::Column::OccurrenceStart)
            .order_by_asc(silenced_alert::Column::Id)
            .all(&self.0.db)
            .await?)
    }

    /// Warns creators of silences that end within [`WARN_BEFORE`], and sends the digest of
    /// every silence (or window occurrence) that ended. Each once: the row is claimed by a
    /// conditional update in the notification's transaction. Returns (warned, digested).
    pub async fn silence_duties(&self, now: DateTime<Utc>) -> Result<(usize, usize), DbErr> {
        let mut warned = 0;
        let mut digested = 0;
        let rows = silence::Entity::find()
            .filter(
                Condition::any()
                    .add(silence::Column::DigestedUntil.is_null())
                    .add(silence::Column::Kind.eq(SilenceKind::Maintenance)),
            )
            .order_by_asc(silence::Column::Id)
            .all(&self.0.db)
            .await?;
        for row in rows {
            if self.warn(&row, now).await? {
                warned += 1;
            }
            if let Some((start, end)) = ended_occurrence(&row, now)
                && self.digest(&row, start, end).await?
            {
                digested += 1;
            }
        }
        Ok((warned, digested))
    }

    async fn warn(&self, row: &silence::Model, now: DateTime<Utc>) -> Result<bool, DbErr> {
        let Some(ends) = row.ends_at else {
            return Ok(false);
        };
        if row.kind != SilenceKind::Silence
            || row.warned_at.is_some()
            || row.expired_at.is_some()
            || ends <= now
            || ends - now > WARN_BEFORE
        {
            return Ok(false);
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let claimed = silence::Entity::update_many()
            .col_expr(silence::Column::WarnedAt, Expr::value(Some(now)))
            .filter(silence::Column::Id.eq(row.id))
            .filter(silence::Column::WarnedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        notify::enqueue_silence_in(&txn, EventKind::SilenceExpiring, facts(row, ends, &[])).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn digest(
        &self,
        row: &silence::Model,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let mut claim = silence::Entity::update_many()
            .col_expr(silence::Column::DigestedUntil, Expr::value(Some(end)))
            .filter(silence::Column::Id.eq(row.id));
        claim = match row.digested_until {
            Some(before) => claim.filter(silence::Column::DigestedUntil.eq(before)),
            None => claim.filter(silence::Column::DigestedUntil.is_null()),
        };
        if claim.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let held = silenced_alert::Entity::find()
            .filter(silenced_alert::Column::SilenceId.eq(row.id))
            .filter(silenced_alert::Column::OccurrenceStart.eq(start))
            .order_by_asc(silenced_alert::Column::Id)
            .all(&txn)
            .await?;
        notify::enqueue_silence_in(&txn, EventKind::SilenceEnded, facts(row, end, &held)).await?;
        txn.commit().await?;
        tracing::info!(
            silence = row.id,
            held = held.len(),
            "silence ended; digest queued"
        );
        Ok(true)
    }

    /// Runs [`Oncall::silence_duties`] and [`Oncall::escalation_duties`] every `every`.
    pub fn start_worker(&self, every: std::time::Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(error) = this.silence_duties(Utc::now()).await {
                    tracing::warn!(%error, "silence warnings and digests failed; next round retries");
                }
                if let Err(error) = this.escalation_duties(Utc::now()).await {
                    tracing::warn!(%error, "escalation round failed; next round retries");
                }
            }
        });
    }
}

/// Whether `row` holds back alerts at `now`.
pub fn holds_at(row: &silence::Model, now: DateTime<Utc>) -> bool {
    if row.expired_at.is_some() || row.starts_at > now || row.ends_at.is_some_and(|e| e <= now) {
        return false;
    }
    match (&row.kind, &row.recurrence) {
        (SilenceKind::Maintenance, Some(text)) => serde_json::from_str::<Recurrence>(text)
            .ok()
            .and_then(|r| r.active_at(now))
            .is_some(),
        _ => true,
    }
}

/// The latest occurrence of `row` that ended by `now` (at its end, or cut short by an
/// expiry) and has no digest yet: (start, end). Occurrences that ended before the silence
/// existed are not its own.
fn ended_occurrence(
    row: &silence::Model,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let stopped = [row.expired_at, row.ends_at].into_iter().flatten().min();
    let (start, end) = match (&row.kind, &row.recurrence) {
        (SilenceKind::Maintenance, Some(text)) => {
            let recurrence: Recurrence = serde_json::from_str(text).ok()?;
            let at = stopped.map_or(now, |s| Ord::min(s, now));
            let cut = stopped
                .filter(|s| *s <= now)
                .and_then(|s| recurrence.active_at(s).map(|o| (o.start, s)));
            let last = recurrence.last_ended(at).map(|o| (o.start, o.end));
            [cut, last].into_iter().flatten().max_by_key(|(_, e)| *e)?
        }
        _ => (row.starts_at, stopped?),
    };
    let fresh = row.digested_until.is_none_or(|d| d < end);
    (end <= now && end > row.created_at && fresh).then_some((start, end))
}

fn facts(
    row: &silence::Model,
    ends_at: DateTime<Utc>,
    held: &[silenced_alert::Model],
) -> SilenceFacts {
    let line = |a: &silenced_alert::Model| match &a.service {
        Some(service) => format!("{} on {service} ×{}", a.name, a.count),
        None => format!("{} ×{}", a.name, a.count),
    };
    SilenceFacts {
        id: row.id,
        kind: row.kind.as_str().to_owned(),
        name: row.name.clone(),
        matchers: row.matchers.clone(),
        comment: row.comment.clone(),
        created_by: row.created_by.clone(),
        ends_at,
        fired: held.iter().filter(|a| a.count > 0).map(line).collect(),
        resolved: held
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
            .map(line)
            .collect(),
        still_firing: held
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .map(line)
            .collect(),
    }
}
