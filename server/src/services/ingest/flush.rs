//! Writing a group: alerts, incidents, the sealed label maps, notifications, and the notes
//! for the thinking streams.

use super::*;
use sea_orm::QuerySelect;

/// Rows per multi-row insert of new alerts.
const INSERT_CHUNK: usize = 200;

impl<'a> Group<'a> {
    /// Writes the plan: a statement per kind of change to alerts and to incidents.
    /// Returns the notes for the thinking streams, pseudonymised, to send after commit, and
    /// the label maps to keep open once it has.
    pub(super) async fn flush(
        mut self,
        conn: &impl ConnectionTrait,
    ) -> Result<(Vec<Note>, OpenMaps), DbErr> {
        let now = self.now;
        self.flush_groups(conn).await?;
        self.flush_alerts(conn).await?;
        // RESOLVED once none of its alerts fires: one read for every incident to check.
        let checked: Vec<i32> = self
            .incidents
            .iter()
            .filter(|(_, change)| change.check_resolved)
            .map(|(id, _)| *id)
            .collect();
        let mut still_firing = std::collections::HashSet::new();
        for chunk in checked.chunks(LOOKUP_CHUNK) {
            let ids: Vec<i32> = alert::Entity::find()
                .select_only()
                .column(alert::Column::IncidentId)
                .distinct()
                .filter(alert::Column::IncidentId.is_in(chunk.iter().copied()))
                .filter(alert::Column::Status.eq(AlertStatus::Firing))
                .into_tuple()
                .all(conn)
                .await?;
            still_firing.extend(ids);
        }
        let resolved =
            |id: &i32, change: &IncidentChange| change.check_resolved && !still_firing.contains(id);
        // One statement per kind of change (new severity, resolved), as for alerts.
        let mut kinds: std::collections::BTreeMap<_, Vec<i32>> = Default::default();
        for (id, change) in &self.incidents {
            let severity = change.severity_changed.then_some(change.severity);
            kinds
                .entry((severity, resolved(id, change)))
                .or_default()
                .push(*id);
        }
        for ((severity, resolved), ids) in kinds {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let mut update = incident::Entity::update_many()
                    .col_expr(incident::Column::LastAlertAt, Expr::value(now))
                    .col_expr(incident::Column::UpdatedAt, Expr::value(now))
                    .filter(incident::Column::Id.is_in(chunk.iter().copied()));
                if let Some(severity) = severity {
                    update = update.col_expr(incident::Column::Severity, Expr::value(severity));
                }
                if resolved {
                    update = update
                        .col_expr(
                            incident::Column::Status,
                            Expr::value(IncidentStatus::Resolved),
                        )
                        .col_expr(incident::Column::ResolvedAt, Expr::value(now));
                }
                update.exec(conn).await?;
            }
        }
        // Told in the same transaction: the event exists exactly when the change does.
        for (id, change) in &self.incidents {
            if change.opened {
                crate::services::notify::enqueue_in(
                    conn,
                    EventKind::IncidentOpened,
                    Some(*id),
                    None,
                    "alerts",
                )
                .await?;
            }
            if resolved(id, change) {
                crate::services::notify::enqueue_in(
                    conn,
                    EventKind::IncidentResolved,
                    Some(*id),
                    None,
                    "alerts",
                )
                .await?;
            }
        }
        if !self.new_keys.is_empty() {
            for chunk in self.new_keys.chunks(LOOKUP_CHUNK) {
                ingest_receipt::Entity::insert_many(chunk.iter().map(|key| {
                    ingest_receipt::ActiveModel {
                        key: Set(key.clone()),
                        created_at: Set(now),
                    }
                }))
                .exec(conn)
                .await?;
            }
        }
        let mut said = Vec::with_capacity(self.notes.len());
        for (incident_id, kind, text) in std::mem::take(&mut self.notes) {
            let names = self
                .vaults
                .get(conn, &self.settings.key, incident_id)
                .await?;
            said.push(Note {
                incident_id,
                kind,
                text: self.settings.shield.redact(&text, names),
            });
        }
        let maps = self.vaults.save(conn, &self.settings.key, now).await?;
        Ok((said, maps))
    }

    /// The alerts this group opened, with whatever else the group did to them, in multi-row
    /// inserts; then the stored alerts that changed, one statement per kind of change: alerts
    /// seen again with the same number of repeats (the common case: a resend of everything
    /// that fires) share one `UPDATE … WHERE id IN (…)`. A busy group costs a few statements,
    /// not one per alert.
    async fn flush_alerts(&mut self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = self.now;
        let mut opened = std::mem::take(&mut self.pending);
        let mut kinds: std::collections::BTreeMap<_, Vec<i32>> = Default::default();
        for (id, change) in &self.alerts {
            if let Some(row) = planned(*id).and_then(|i| opened.get_mut(i)) {
                row.count += change.repeats;
                if let Some(ends_at) = change.resolved_at {
                    row.status = AlertStatus::Resolved;
                    row.ends_at = Some(ends_at);
                } else if change.refired {
                    row.status = AlertStatus::Firing;
                    row.ends_at = None;
                }
                continue;
            }
            kinds
                .entry((change.repeats, change.resolved_at, change.refired))
                .or_default()
                .push(*id);
        }
        // 15 columns a row: well under SQLite's and PostgreSQL's limits on bound values.
        for chunk in opened.chunks(INSERT_CHUNK) {
            alert::Entity::insert_many(chunk.iter().map(|row| alert::ActiveModel {
                incident_id: Set(row.incident_id),
                fingerprint: Set(row.fingerprint.clone()),
                source: Set(row.source.clone()),
                status: Set(row.status),
                name: Set(row.name.clone()),
                severity: Set(row.severity),
                service: Set(row.service.clone()),
                labels: Set(row.labels.clone()),
                annotations: Set(row.annotations.clone()),
                starts_at: Set(row.starts_at),
                ends_at: Set(row.ends_at),
                generator_url: Set(row.generator_url.clone()),
                count: Set(row.count),
                first_seen: Set(row.first_seen),
                last_seen: Set(row.last_seen),
                ..Default::default()
            }))
            .exec(conn)
            .await?;
        }
        for ((repeats, resolved_at, refired), ids) in kinds {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let mut update = alert::Entity::update_many()
                    .col_expr(alert::Column::LastSeen, Expr::value(now))
                    .filter(alert::Column::Id.is_in(chunk.iter().copied()));
                if repeats > 0 {
                    update = update.col_expr(
                        alert::Column::Count,
                        Expr::col(alert::Column::Count).add(repeats),
                    );
                }
                if let Some(ends_at) = resolved_at {
                    update = update
                        .col_expr(alert::Column::Status, Expr::value(AlertStatus::Resolved))
                        .col_expr(alert::Column::EndsAt, Expr::value(ends_at));
                } else if refired {
                    update = update
                        .col_expr(alert::Column::Status, Expr::value(AlertStatus::Firing))
                        .col_expr(
                            alert::Column::EndsAt,
                            Expr::value(Option::<DateTime<Utc>>::None),
                        );
                }
                update.exec(conn).await?;
            }
        }
        Ok(())
    }

    /// Stores the topology services and scope of every regrouped incident, and its root
    /// cause (the incident's `service`) when that changed, saying so in its thinking stream.
    pub(super) async fn flush_groups(&mut self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let settings = self.settings;
        for id in std::mem::take(&mut self.regrouped) {
            let Some(group) = self
                .groups
                .as_ref()
                .and_then(|gs| gs.iter().find(|g| g.id == i64::from(id)))
            else {
                continue;
            };
            let digests: Vec<String> = group
                .services()
                .iter()
                .map(|s| settings.service_digest(s))
                .collect();
            let root = group.roots().first().cloned();
            let scope = group.scope.first().cloned();
            let current = incident::Entity::find_by_id(id).one(conn).await?;
            let mut update = incident::Entity::update_many()
                .col_expr(
                    incident::Column::TopologyServices,
                    Expr::value(serde_json::to_string(&digests).expect("digests serialise")),
                )
                .col_expr(incident::Column::Scope, Expr::value(scope))
                .filter(incident::Column::Id.eq(id));
            if let Some(root) = root {
                let names = self.vaults.get(conn, &settings.key, id).await?;
                let labelled = settings.shield.redact(&root, names);
                if current.and_then(|c| c.service).as_deref() != Some(labelled.as_str()) {
                    update = update.col_expr(incident::Column::Service, Expr::value(labelled));
                    let kind = settings
                        .topology
                        .kind_of(&root)
                        .map_or("SERVICE".to_owned(), |k| format!("{k:?}").to_uppercase());
                    if group.services().len() > 1 {
                        self.notes.push((
                            id,
                            "correlation",
                            format!(
                                "Root cause is now {root} ({kind}): no other alerting service of this incident is below it"
                            ),
                        ));
                    }
                }
            }
            update.exec(conn).await?;
        }
        Ok(())
    }
}
