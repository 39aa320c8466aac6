//! Correlation inside a group: which incident an alert joins (by service, along the
//! topology), reopening, merging incidents that share a root cause, opening new ones.

use super::*;

impl<'a> Group<'a> {
    /// The open incident this event joins, or a new one.
    pub(super) async fn correlate(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        if let Some(service) = &event.service
            && self.settings.topology.contains(service)
        {
            return self.correlate_topology(conn, event, service).await;
        }
        // Alerts of one service correlate; service-less alerts correlate by name.
        let key = match &event.service {
            Some(service) => self.settings.key.digest("service", service),
            None => self.settings.key.digest("alertname", &event.name),
        };
        if let Some(id) = self.open.get(&key) {
            return Ok(*id);
        }
        let found = incident::Entity::find()
            .filter(incident::Column::CorrelationKey.eq(&key))
            .filter(
                incident::Column::Status
                    .is_not_in([IncidentStatus::Resolved, IncidentStatus::Merged]),
            )
            .filter(incident::Column::LastAlertAt.gte(self.now - self.settings.correlation_window))
            .order_by_desc(incident::Column::Id)
            .one(conn)
            .await?;
        let id = match found {
            Some(open) => open.id,
            None => self.open_incident(conn, &key, event).await?,
        };
        self.open.insert(key, id);
        Ok(id)
    }

    /// The open incident a topology service's alert joins (`engine::correlation`), or a new
    /// one; merges the incidents it reveals to share a root cause.
    pub(super) async fn correlate_topology(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
        service: &str,
    ) -> Result<i32, DbErr> {
        let settings = self.settings;
        if self.groups.is_none() {
            self.groups = Some(self.load_groups(conn).await?);
        }
        let scope = vec![settings.key.digest(
            "scope",
            &settings.rules.scope_of(&event.labels).join("\u{1f}"),
        )];
        let correlator = Correlator::new(&settings.topology, &settings.rules);
        let verdict = correlator.decide(
            self.groups.as_deref().unwrap_or_default(),
            service,
            &scope,
            self.now,
        );
        let id = match verdict {
            Verdict::New => {
                let key = settings.service_digest(service);
                let id = self.open_incident(conn, &key, event).await?;
                self.groups
                    .get_or_insert_default()
                    .push(CorrelationGroup::new(
                        i64::from(id),
                        self.now,
                        self.now,
                        scope,
                    ));
                id
            }
            Verdict::Join { id, why } => {
                let id = id as i32;
                if why != Why::SameService {
                    self.notes.push((id, "correlation", why.explain(service)));
                }
                id
            }
            Verdict::Merge { into, merged, why } => {
                let into = into as i32;
                for other in merged {
                    self.merge(conn, into, other as i32, &why.explain(service))
                        .await?;
                }
                into
            }
        };
        let group = self
            .groups
            .get_or_insert_default()
            .iter_mut()
            .find(|g| g.id == i64::from(id))
            .expect("the incident's group is known");
        // Stored (and the root cause recomputed) only when the incident's services changed.
        if correlator.add(group, [service.to_owned()]) {
            self.regrouped.insert(id);
        }
        group.last_alert_at = self.now;
        Ok(id)
    }

    /// Opens a RESOLVED incident again at once, so the rest of this group sees it open (an
    /// alert on its service joins it instead of opening a twin).
    pub(super) async fn reopen(
        &mut self,
        conn: &impl ConnectionTrait,
        id: i32,
    ) -> Result<(), DbErr> {
        let reopened = incident::Entity::update_many()
            .col_expr(incident::Column::Status, Expr::value(IncidentStatus::Open))
            .col_expr(
                incident::Column::ResolvedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(incident::Column::Id.eq(id))
            .filter(incident::Column::Status.eq(IncidentStatus::Resolved))
            .exec(conn)
            .await?
            .rows_affected;
        if reopened == 0 {
            return Ok(());
        }
        if let Some(row) = incident::Entity::find_by_id(id).one(conn).await? {
            self.open.insert(row.correlation_key.clone(), id);
            let topological = row.topology_services != "[]";
            if let Some(groups) = &mut self.groups
                && topological
                && !groups.iter().any(|g| g.id == i64::from(id))
            {
                let correlator = Correlator::new(&self.settings.topology, &self.settings.rules);
                groups.push(group_of(&correlator, self.index, row));
            }
        }
        Ok(())
    }

    /// Open incidents correlated along the topology whose last alert is within the window.
    pub(super) async fn load_groups(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<CorrelationGroup>, DbErr> {
        let rows = incident::Entity::find()
            .filter(
                incident::Column::Status
                    .is_not_in([IncidentStatus::Resolved, IncidentStatus::Merged]),
            )
            .filter(incident::Column::LastAlertAt.gte(self.now - self.settings.correlation_window))
            .filter(incident::Column::TopologyServices.ne("[]"))
            .all(conn)
            .await?;
        let correlator = Correlator::new(&self.settings.topology, &self.settings.rules);
        Ok(rows
            .into_iter()
            .map(|row| group_of(&correlator, self.index, row))
            .collect())
    }

    /// Merges incident `other` into `into`: its alerts move over, relabelled with `into`'s
    /// pseudonyms; it becomes MERGED with a link to `into` (and `into` lists it). Its
    /// approvals, analysis and thinking stay with it, under its own labels, and `into` shows
    /// them.
    pub(super) async fn merge(
        &mut self,
        conn: &impl ConnectionTrait,
        into: i32,
        other: i32,
        why: &str,
    ) -> Result<(), DbErr> {
        let key = &self.settings.key;
        let from = self.vaults.get(conn, key, other).await?.clone();
        let moved = alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(other))
            .all(conn)
            .await?;
        let names = self.vaults.get(conn, key, into).await?;
        for row in &moved {
            let relabel = |text: &str, names: &mut Pseudonyms| from.relabel(text, names);
            let mut update: alert::ActiveModel = row.clone().into();
            update.incident_id = Set(into);
            update.name = Set(relabel(&row.name, names));
            update.service = Set(row.service.as_deref().map(|s| relabel(s, names)));
            update.labels = Set(relabel(&row.labels, names));
            update.annotations = Set(relabel(&row.annotations, names));
            update.generator_url = Set(row.generator_url.as_deref().map(|u| relabel(u, names)));
            update.update(conn).await?;
        }
        // Alerts this group opened on it and has not written yet move the same way.
        let mut planned_moved = 0;
        for row in self.pending.iter_mut().filter(|r| r.incident_id == other) {
            let relabel = |text: &str, names: &mut Pseudonyms| from.relabel(text, names);
            row.incident_id = into;
            row.name = relabel(&row.name, names);
            row.service = row.service.as_deref().map(|s| relabel(s, names));
            row.labels = relabel(&row.labels, names);
            row.annotations = relabel(&row.annotations, names);
            row.generator_url = row.generator_url.as_deref().map(|u| relabel(u, names));
            planned_moved += 1;
        }
        let now = self.now;
        incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(IncidentStatus::Merged),
            )
            .col_expr(incident::Column::MergedInto, Expr::value(into))
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .filter(incident::Column::Id.eq(other))
            .exec(conn)
            .await?;
        // Whatever had been merged into it now belongs to the survivor directly.
        incident::Entity::update_many()
            .col_expr(incident::Column::MergedInto, Expr::value(into))
            .filter(incident::Column::MergedInto.eq(other))
            .exec(conn)
            .await?;
        // The plan follows: its alerts, its services, its severity are the survivor's now.
        for firing in self.firing.values_mut().chain(self.recent.values_mut()) {
            if firing.incident_id == other {
                firing.incident_id = into;
            }
        }
        for id in self.open.values_mut() {
            if *id == other {
                *id = into;
            }
        }
        let absorbed = self.incidents.remove(&other);
        let other_severity = match absorbed {
            Some(change) => change.severity,
            None => incident::Entity::find_by_id(other)
                .one(conn)
                .await?
                .map_or(Severity::Info, |i| i.severity),
        };
        let change = self.incident(conn, into).await?;
        if other_severity > change.severity {
            change.severity = other_severity;
            change.severity_changed = true;
        }
        if let Some(groups) = &mut self.groups {
            let services: Vec<String> = groups
                .iter()
                .filter(|g| g.id == i64::from(other))
                .flat_map(|g| g.services().iter().cloned())
                .collect();
            groups.retain(|g| g.id != i64::from(other));
            if let Some(survivor) = groups.iter_mut().find(|g| g.id == i64::from(into)) {
                Correlator::new(&self.settings.topology, &self.settings.rules)
                    .add(survivor, services);
            }
        }
        self.regrouped.remove(&other);
        self.regrouped.insert(into);
        self.merged_now.push(other);
        self.notes.push((
            into,
            "correlation",
            format!(
                "Merged incident #{other} into this one ({} alert(s) moved): {why}",
                moved.len() + planned_moved
            ),
        ));
        self.notes.push((
            other,
            "correlation",
            format!("Merged into incident #{into}: {why}"),
        ));
        Ok(())
    }

    pub(super) async fn open_incident(
        &mut self,
        conn: &impl ConnectionTrait,
        key: &str,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        let now = self.now;
        let created = incident::ActiveModel {
            title: Set(String::new()),
            service: Set(None),
            correlation_key: Set(key.to_owned()),
            severity: Set(event.severity),
            status: Set(IncidentStatus::Open),
            created_at: Set(now),
            updated_at: Set(now),
            last_alert_at: Set(now),
            resolved_at: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        // The title and service are pseudonymised with the new incident's own map.
        let names = self
            .vaults
            .get(conn, &self.settings.key, created.id)
            .await?;
        let shield = &self.settings.shield;
        let title = match (description_of(&event.annotations), &event.service) {
            (Some(summary), _) => summary.to_owned(),
            (None, Some(service)) => format!("{} on {service}", event.name),
            (None, None) => event.name.clone(),
        };
        let id = created.id;
        let mut row: incident::ActiveModel = created.into();
        row.title = Set(shield.redact(&title, names));
        row.service = Set(event.service.as_deref().map(|s| shield.redact(s, names)));
        row.update(conn).await?;
        self.incidents.insert(
            id,
            IncidentChange {
                severity: event.severity,
                severity_changed: false,
                check_resolved: false,
                opened: true,
            },
        );
        Ok(id)
    }
}
