//! A group of requests committed together: its incidents and alerts, read once.

use super::*;
use sea_orm::QuerySelect;

impl<'a> Group<'a> {
    /// Reads what the group needs up front: applied keys and the firing alerts it refers to.
    pub(super) async fn load(
        conn: &impl ConnectionTrait,
        settings: &'a IngestSettings,
        index: &'a HashMap<String, String>,
        batches: &[Batch<'_>],
        maps: OpenMaps,
    ) -> Result<Group<'a>, DbErr> {
        let keys: Vec<String> = batches
            .iter()
            .filter_map(|(k, _)| k.map(str::to_owned))
            .collect();
        let mut applied_keys = std::collections::HashSet::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            for row in ingest_receipt::Entity::find()
                .filter(ingest_receipt::Column::Key.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?
            {
                applied_keys.insert(row.key);
            }
        }
        let mut fingerprints: Vec<&str> = batches
            .iter()
            .flat_map(|(_, events)| events.iter().map(|e| e.fingerprint.as_str()))
            .collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let now = Utc::now();
        let mut firing = HashMap::new();
        let mut recent = HashMap::new();
        // Only what planning needs of each row (not its labels and annotations).
        type Found = (i32, i32, String);
        for chunk in fingerprints.chunks(LOOKUP_CHUNK) {
            let select = || {
                alert::Entity::find()
                    .select_only()
                    .column(alert::Column::Id)
                    .column(alert::Column::IncidentId)
                    .column(alert::Column::Fingerprint)
                    .filter(alert::Column::Fingerprint.is_in(chunk.iter().copied()))
                    .order_by_asc(alert::Column::Id)
            };
            let rows: Vec<Found> = select()
                .filter(alert::Column::Status.eq(AlertStatus::Resolved))
                .filter(alert::Column::LastSeen.gte(now - settings.correlation_window))
                .into_tuple()
                .all(conn)
                .await?;
            for (id, incident_id, fingerprint) in rows {
                recent.insert(fingerprint, Firing { id, incident_id });
            }
            let rows: Vec<Found> = select()
                .filter(alert::Column::Status.eq(AlertStatus::Firing))
                .into_tuple()
                .all(conn)
                .await?;
            for (id, incident_id, fingerprint) in rows {
                // Newest wins, as a lookup by fingerprint would.
                firing.insert(fingerprint, Firing { id, incident_id });
            }
        }
        // A fingerprint firing now is not flapping.
        recent.retain(|fp, _| !firing.contains_key(fp));
        let silences = crate::services::oncall::silences::holding(conn, &settings.key, now).await?;
        // The severities of the incidents those alerts belong to, read at once rather than as
        // each is first touched.
        let mut ids: Vec<i32> = firing
            .values()
            .chain(recent.values())
            .map(|f| f.incident_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut severities = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(i32, Severity)> = incident::Entity::find()
                .select_only()
                .column(incident::Column::Id)
                .column(incident::Column::Severity)
                .filter(incident::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(conn)
                .await?;
            severities.extend(rows);
        }
        Ok(Group {
            settings,
            index,
            groups: None,
            regrouped: Default::default(),
            merged_now: Vec::new(),
            notes: Vec::new(),
            recent,
            now,
            vaults: VaultCache::new(maps),
            applied_keys,
            new_keys: Vec::new(),
            firing,
            open: HashMap::new(),
            alerts: Default::default(),
            incidents: Default::default(),
            silences,
            silenced: 0,
            severities,
            pending: Vec::new(),
        })
    }

    /// False when `key` was applied before (in an earlier commit or earlier in this group).
    pub(super) fn claim_key(&mut self, key: &str) -> bool {
        if !self.applied_keys.insert(key.to_owned()) {
            return false;
        }
        self.new_keys.push(key.to_owned());
        true
    }

    pub(super) async fn incident(
        &mut self,
        conn: &impl ConnectionTrait,
        id: i32,
    ) -> Result<&mut IncidentChange, DbErr> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.incidents.entry(id) {
            let severity = match self.severities.get(&id) {
                Some(severity) => *severity,
                None => incident::Entity::find_by_id(id)
                    .one(conn)
                    .await?
                    .map(|i| i.severity)
                    .unwrap_or(Severity::Info),
            };
            slot.insert(IncidentChange {
                severity,
                severity_changed: false,
                check_resolved: false,
                opened: false,
            });
        }
        Ok(self.incidents.get_mut(&id).expect("inserted above"))
    }

    /// Plans one event; returns the incident it touched, if any. An event a silence matches is
    /// stored as held back and touches nothing — except the resolution of an alert an incident
    /// already has, which also resolves it there (an incident never hangs on a silence).
    pub(super) async fn apply(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
    ) -> Result<Option<i32>, DbErr> {
        let known = self.firing.get(&event.fingerprint).copied();
        if let Some(silence) = crate::services::oncall::silences::first_match(&self.silences, event)
        {
            let in_incident = known.or_else(|| self.recent.get(&event.fingerprint).copied());
            crate::services::oncall::silences::record_in(
                conn,
                &self.settings.shield,
                silence,
                event,
                in_incident.map(|f| f.incident_id),
                self.now,
            )
            .await?;
            self.silenced += 1;
            if !(event.status == AlertStatus::Resolved && known.is_some()) {
                return Ok(None);
            }
        }
        match (event.status, known) {
            // A repeat: count it, open nothing.
            (AlertStatus::Firing, Some(found)) => {
                self.alerts.entry(found.id).or_default().repeats += 1;
                self.incident(conn, found.incident_id).await?;
                Ok(Some(found.incident_id))
            }
            (AlertStatus::Firing, None) if self.recent.contains_key(&event.fingerprint) => {
                // Flapping: it resolved within the window and fires again — same alert, same
                // incident (reopened if that was its last alert).
                let again = self
                    .recent
                    .remove(&event.fingerprint)
                    .expect("checked above");
                let change = self.alerts.entry(again.id).or_default();
                change.refired = true;
                change.resolved_at = None;
                change.repeats += 1;
                self.firing.insert(event.fingerprint.clone(), again);
                self.reopen(conn, again.incident_id).await?;
                let incident = self.incident(conn, again.incident_id).await?;
                incident.check_resolved = false;
                if event.severity > incident.severity {
                    incident.severity = event.severity;
                    incident.severity_changed = true;
                }
                self.notes.push((
                    again.incident_id,
                    "correlation",
                    format!(
                        "{} fired again within the correlation window: flapping, kept in this incident",
                        event.name
                    ),
                ));
                Ok(Some(again.incident_id))
            }
            (AlertStatus::Firing, None) => {
                let incident_id = self.correlate(conn, event).await?;
                let id = self.insert_alert(conn, incident_id, event).await?;
                self.firing
                    .insert(event.fingerprint.clone(), Firing { id, incident_id });
                let change = self.incident(conn, incident_id).await?;
                if event.severity > change.severity {
                    change.severity = event.severity;
                    change.severity_changed = true;
                }
                Ok(Some(incident_id))
            }
            (AlertStatus::Resolved, Some(found)) => {
                self.firing.remove(&event.fingerprint);
                // Resolved here: a repeat later in this group is flapping too.
                self.recent.insert(event.fingerprint.clone(), found);
                self.alerts.entry(found.id).or_default().resolved_at =
                    Some(event.ends_at.unwrap_or(self.now));
                self.incident(conn, found.incident_id).await?.check_resolved = true;
                Ok(Some(found.incident_id))
            }
            // A resolution for nothing that fires: there is nothing to change.
            (AlertStatus::Resolved, None) => Ok(None),
        }
    }

    /// Plans a new firing alert of `incident_id` (inserted at flush); returns its planned id.
    pub(super) async fn insert_alert(
        &mut self,
        conn: &impl ConnectionTrait,
        incident_id: i32,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        let names = self
            .vaults
            .get(conn, &self.settings.key, incident_id)
            .await?;
        let shield = &self.settings.shield;
        let now = self.now;
        self.pending.push(alert::Model {
            id: 0,
            incident_id,
            fingerprint: event.fingerprint.clone(),
            source: event.source.as_str().to_owned(),
            status: AlertStatus::Firing,
            name: shield.redact(&event.name, names),
            severity: event.severity,
            service: event.service.as_deref().map(|s| shield.redact(s, names)),
            labels: redact_map(shield, names, &event.labels),
            annotations: redact_map(shield, names, &event.annotations),
            starts_at: event.starts_at,
            ends_at: event.ends_at,
            generator_url: event
                .generator_url
                .as_deref()
                .map(|u| shield.redact(u, names)),
            count: 1,
            first_seen: now,
            last_seen: now,
        });
        let planned = i32::try_from(self.pending.len())
            .map_err(|_| DbErr::Custom("more alerts in one group than an id can number".into()))?;
        Ok(-planned)
    }
}
