//! Schedules (weekly rotations with overrides: who is on call), escalation policies (a route
//! and ordered steps), and escalations: the worker starts one for every unacknowledged
//! incident and every approval waiting for signatures whose incident a policy's route takes,
//! pages each step when it falls due, and stops at the acknowledgement or the resolution (an
//! approval's when it leaves PENDING). A step is claimed by a conditional
//! update in the page's transaction, so N replicas page it once.

use chrono::{DateTime, Utc};
use engine::Role;
use engine::oncall::escalation::{Route, Step, StepTarget, check_steps, due_at};
use engine::oncall::rotation::{Override, Rotation};
use engine::policy::ApprovalStatus;
use entity::escalation::{self, EscalationStatus};
use entity::{alert, approval, escalation_policy, incident, schedule, schedule_override, user};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde_json::json;

use super::{Oncall, OncallError};
use crate::base::incident::IncidentStatus;
use crate::services::notify::{self, PageFacts};

/// A schedule as people define it.
pub struct NewSchedule {
    pub name: String,
    pub participants: Vec<String>,
    pub handover_day: String,
    pub handover_time: String,
    pub time_zone: String,
    /// When the rotation begins (default: now).
    pub since: Option<DateTime<Utc>>,
}

/// A policy as people define it.
pub struct NewPolicy {
    pub name: String,
    pub route: Route,
    pub steps: Vec<Step>,
    pub position: i32,
}

fn name_ok(name: &str, what: &str) -> Result<String, OncallError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(OncallError::Invalid(format!(
            "a {what} needs a name of 1 to 100 characters"
        )));
    }
    Ok(name.to_owned())
}

impl Oncall {
    async fn known_user(&self, name: &str) -> Result<(), OncallError> {
        let found = user::Entity::find()
            .filter(user::Column::Username.eq(name))
            .one(&self.0.db)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(OncallError::Invalid(format!("`{name}` is not a user"))),
        }
    }

    /// Creates a schedule; every participant must be a user.
    pub async fn create_schedule(
        &self,
        new: NewSchedule,
        by: &str,
    ) -> Result<schedule::Model, OncallError> {
        let name = name_ok(&new.name, "schedule")?;
        let since = new.since.unwrap_or_else(Utc::now);
        let rotation = Rotation::new(
            new.participants,
            &new.handover_day,
            &new.handover_time,
            &new.time_zone,
            since,
        )
        .map_err(|e| OncallError::Invalid(e.to_string()))?;
        for p in &rotation.participants {
            self.known_user(p).await?;
        }
        if self.schedule_named(&name).await?.is_some() {
            return Err(OncallError::Conflict(format!(
                "a schedule named `{name}` exists"
            )));
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let row = schedule::ActiveModel {
            name: Set(name.clone()),
            participants: Set(serde_json::to_string(&rotation.participants).expect("names")),
            handover_day: Set(engine::oncall::windows::day_name(rotation.handover_day).into()),
            handover_time: Set(rotation.handover_time.format("%H:%M").to_string()),
            time_zone: Set(rotation.zone.clone()),
            since: Set(since),
            created_by: Set(by.to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let details = json!({"participants": rotation.participants});
        crate::base::audit::append_in(
            &txn,
            by,
            "schedule.created",
            &format!("schedule:{name}"),
            details,
        )
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    async fn schedule_named(&self, name: &str) -> Result<Option<schedule::Model>, DbErr> {
        schedule::Entity::find()
            .filter(schedule::Column::Name.eq(name))
            .one(&self.0.db)
            .await
    }

    /// Puts `username` on call on `schedule` from `starts_at` to `ends_at`.
    pub async fn add_override(
        &self,
        schedule: &str,
        username: &str,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        by: &str,
    ) -> Result<schedule_override::Model, OncallError> {
        if ends_at <= starts_at {
            return Err(OncallError::Invalid(
                "an override must end after it starts".into(),
            ));
        }
        let found = self
            .schedule_named(schedule)
            .await?
            .ok_or_else(|| OncallError::Missing(format!("schedule `{schedule}` not found")))?;
        self.known_user(username).await?;
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let row = schedule_override::ActiveModel {
            schedule_id: Set(found.id),
            username: Set(username.to_owned()),
            starts_at: Set(starts_at),
            ends_at: Set(ends_at),
            created_by: Set(by.to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let details = json!({"user": username, "from": starts_at, "to": ends_at});
        crate::base::audit::append_in(
            &txn,
            by,
            "schedule.overridden",
            &format!("schedule:{schedule}"),
            details,
        )
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<schedule::Model>, OncallError> {
        Ok(schedule::Entity::find()
            .order_by_asc(schedule::Column::Name)
            .all(&self.0.db)
            .await?)
    }

    /// Schedule `row` as a rotation with its overrides.
    pub async fn rotation(
        &self,
        conn: &impl ConnectionTrait,
        row: &schedule::Model,
    ) -> Result<Rotation, DbErr> {
        let overrides = schedule_override::Entity::find()
            .filter(schedule_override::Column::ScheduleId.eq(row.id))
            .order_by_asc(schedule_override::Column::Id)
            .all(conn)
            .await?;
        Ok(Rotation {
            participants: serde_json::from_str(&row.participants).unwrap_or_default(),
            handover_day: engine::oncall::windows::parse_day(&row.handover_day)
                .unwrap_or(chrono::Weekday::Mon),
            handover_time: chrono::NaiveTime::parse_from_str(&row.handover_time, "%H:%M")
                .unwrap_or_default(),
            zone: row.time_zone.clone(),
            since: row.since,
            overrides: overrides
                .into_iter()
                .map(|o| Override {
                    user: o.username,
                    start: o.starts_at,
                    end: o.ends_at,
                })
                .collect(),
        })
    }

    /// Who is on call on `schedule` at `at`.
    pub async fn on_call(
        &self,
        schedule: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, OncallError> {
        let row = self
            .schedule_named(schedule)
            .await?
            .ok_or_else(|| OncallError::Missing(format!("schedule `{schedule}` not found")))?;
        let rotation = self.rotation(&self.0.db, &row).await?;
        Ok(rotation.on_call(at).map(str::to_owned))
    }

    /// Creates a policy; every step's target must exist (a user, a schedule, a channel).
    pub async fn create_policy(
        &self,
        new: NewPolicy,
        by: &str,
    ) -> Result<escalation_policy::Model, OncallError> {
        let name = name_ok(&new.name, "policy")?;
        check_steps(&new.steps).map_err(|e| OncallError::Invalid(e.to_string()))?;
        for (i, step) in new.steps.iter().enumerate() {
            let missing = |what: String| OncallError::Invalid(format!("step {}: {what}", i + 1));
            match &step.target {
                StepTarget::User(u) => self
                    .known_user(u)
                    .await
                    .map_err(|e| missing(e.to_string()))?,
                StepTarget::Schedule(s) => {
                    if self.schedule_named(s).await?.is_none() {
                        return Err(missing(format!("no schedule named `{s}`")));
                    }
                }
                StepTarget::Channel(c) => {
                    if !self.0.channels.contains(c) {
                        return Err(missing(format!(
                            "no notification channel named `{c}` ([[notifications.channels]])"
                        )));
                    }
                }
                StepTarget::Role(_) => {}
            }
        }
        let exists = escalation_policy::Entity::find()
            .filter(escalation_policy::Column::Name.eq(&name))
            .one(&self.0.db)
            .await?;
        if exists.is_some() {
            return Err(OncallError::Conflict(format!(
                "a policy named `{name}` exists"
            )));
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let row = escalation_policy::ActiveModel {
            name: Set(name.clone()),
            route: Set(serde_json::to_string(&new.route).expect("route serialises")),
            steps: Set(serde_json::to_string(&new.steps).expect("steps serialise")),
            position: Set(new.position),
            created_by: Set(by.to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let details = json!({"route": new.route, "steps": new.steps});
        crate::base::audit::append_in(
            &txn,
            by,
            "policy.created",
            &format!("policy:{name}"),
            details,
        )
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Policy `id`, if it exists.
    pub async fn policy(&self, id: i32) -> Result<Option<escalation_policy::Model>, OncallError> {
        Ok(escalation_policy::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?)
    }

    /// Every policy, in the order routes are tried.
    pub async fn policies(&self) -> Result<Vec<escalation_policy::Model>, OncallError> {
        Ok(escalation_policy::Entity::find()
            .order_by_asc(escalation_policy::Column::Position)
            .order_by_asc(escalation_policy::Column::Id)
            .all(&self.0.db)
            .await?)
    }

    /// The escalation of `subject` (`incident:<id>`, `approval:<id>`), if it has one.
    pub async fn escalation_of(
        &self,
        subject: &str,
    ) -> Result<Option<escalation::Model>, OncallError> {
        Ok(escalation::Entity::find()
            .filter(escalation::Column::Subject.eq(subject))
            .one(&self.0.db)
            .await?)
    }

    /// One round at `now`: start escalations for unacknowledged incidents a route takes, then
    /// page every step that fell due (each once), stopping those acknowledged or resolved.
    /// Returns the pages sent.
    pub async fn escalation_duties(&self, now: DateTime<Utc>) -> Result<usize, DbErr> {
        let policies = escalation_policy::Entity::find()
            .order_by_asc(escalation_policy::Column::Position)
            .order_by_asc(escalation_policy::Column::Id)
            .all(&self.0.db)
            .await?;
        if policies.is_empty() {
            return Ok(0);
        }
        self.start_escalations(&policies).await?;
        let due = escalation::Entity::find()
            .filter(escalation::Column::Status.eq(EscalationStatus::Active))
            .filter(escalation::Column::NextAt.lte(now))
            .order_by_asc(escalation::Column::Id)
            .all(&self.0.db)
            .await?;
        let mut paged = 0;
        for row in due {
            let Some(policy) = policies.iter().find(|p| p.id == row.policy_id) else {
                continue;
            };
            if self.page_step(&row, policy, now).await? {
                paged += 1;
            }
        }
        Ok(paged)
    }

    /// An escalation for each open, unacknowledged incident and each approval waiting for
    /// signatures that has none and whose incident a route takes (policies tried in order).
    /// A second replica's insert is a no-op.
    async fn start_escalations(&self, policies: &[escalation_policy::Model]) -> Result<(), DbErr> {
        let open = incident::Entity::find()
            .filter(incident::Column::AcknowledgedAt.is_null())
            .filter(incident::Column::Status.is_in([
                IncidentStatus::Open,
                IncidentStatus::Analyzing,
                IncidentStatus::AwaitingApproval,
                IncidentStatus::Mitigating,
            ]))
            .all(&self.0.db)
            .await?;
        let waiting = approval::Entity::find()
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending))
            .all(&self.0.db)
            .await?;
        // Which of these have started already (only the candidates are read).
        let candidates: Vec<String> = open
            .iter()
            .map(|i| format!("incident:{}", i.id))
            .chain(waiting.iter().map(|a| format!("approval:{}", a.id)))
            .collect();
        let mut started = std::collections::HashSet::new();
        for chunk in candidates.chunks(500) {
            started.extend(
                escalation::Entity::find()
                    .filter(escalation::Column::Subject.is_in(chunk.to_vec()))
                    .all(&self.0.db)
                    .await?
                    .into_iter()
                    .map(|e| e.subject),
            );
        }
        for found in open {
            let subject = format!("incident:{}", found.id);
            if !started.contains(&subject) {
                self.start_one(policies, &found, subject, None, found.created_at)
                    .await?;
            }
        }
        for pending in waiting {
            let subject = format!("approval:{}", pending.id);
            if started.contains(&subject) {
                continue;
            }
            if let Some(found) = incident::Entity::find_by_id(pending.incident_id)
                .one(&self.0.db)
                .await?
            {
                self.start_one(
                    policies,
                    &found,
                    subject,
                    Some(pending.id),
                    pending.created_at,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Starts `subject`'s escalation under the first policy whose route takes `found`.
    async fn start_one(
        &self,
        policies: &[escalation_policy::Model],
        found: &incident::Model,
        subject: String,
        approval_id: Option<i32>,
        since: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let first = alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(found.id))
            .order_by_asc(alert::Column::Id)
            .one(&self.0.db)
            .await?;
        let namespace = first.and_then(|a| {
            serde_json::from_str::<std::collections::BTreeMap<String, String>>(&a.labels)
                .ok()
                .and_then(|l| l.get("namespace").cloned())
        });
        let chosen = policies.iter().find(|p| {
            serde_json::from_str::<Route>(&p.route).is_ok_and(|r| {
                r.matches(
                    found.severity,
                    found.service.as_deref(),
                    namespace.as_deref(),
                )
            })
        });
        let Some(policy) = chosen else {
            return Ok(());
        };
        let row = escalation::ActiveModel {
            subject: Set(subject),
            incident_id: Set(found.id),
            approval_id: Set(approval_id),
            policy_id: Set(policy.id),
            started_at: Set(since),
            next_step: Set(0),
            next_at: Set(since),
            status: Set(EscalationStatus::Active),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        escalation::Entity::insert(row)
            .on_conflict(
                OnConflict::column(escalation::Column::Subject)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.0.db)
            .await?;
        Ok(())
    }

    /// Pages `row`'s next step, or stops it: claimed by a conditional update on its step in
    /// the page's transaction. True if this call paged.
    async fn page_step(
        &self,
        row: &escalation::Model,
        policy: &escalation_policy::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let steps: Vec<Step> = serde_json::from_str(&policy.steps).unwrap_or_default();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let Some(found) = incident::Entity::find_by_id(row.incident_id)
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(false);
        };
        let index = usize::try_from(row.next_step).unwrap_or(usize::MAX);
        // An approval's escalation ends when it leaves PENDING (signed, rejected, expired…);
        // an incident's at its acknowledgement or resolution.
        let approval_waits = match row.approval_id {
            Some(id) => approval::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .map(|a| a.status == ApprovalStatus::Pending),
            None => None,
        };
        let acted = match approval_waits {
            Some(waits) => !waits,
            None => found.acknowledged_at.is_some(),
        };
        let (status, next_step, next_at) = if acted {
            (EscalationStatus::Acknowledged, row.next_step, row.next_at)
        } else if matches!(
            found.status,
            IncidentStatus::Resolved | IncidentStatus::Merged
        ) {
            (EscalationStatus::Resolved, row.next_step, row.next_at)
        } else if index >= steps.len() {
            (EscalationStatus::Exhausted, row.next_step, row.next_at)
        } else {
            // The next step is due when the waits before it have run out, and never sooner
            // than this step's wait after this page (a late page gives its person the whole
            // wait).
            let wait = chrono::Duration::minutes(i64::from(steps[index].wait_minutes));
            (
                EscalationStatus::Active,
                row.next_step + 1,
                Ord::max(due_at(&steps, row.started_at, index + 1), now + wait),
            )
        };
        let claimed = escalation::Entity::update_many()
            .col_expr(escalation::Column::Status, Expr::value(status))
            .col_expr(escalation::Column::NextStep, Expr::value(next_step))
            .col_expr(escalation::Column::NextAt, Expr::value(next_at))
            .col_expr(escalation::Column::UpdatedAt, Expr::value(now))
            .filter(escalation::Column::Id.eq(row.id))
            .filter(escalation::Column::Status.eq(EscalationStatus::Active))
            .filter(escalation::Column::NextStep.eq(row.next_step))
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed == 0 || status != EscalationStatus::Active {
            txn.commit().await?;
            return Ok(false);
        }
        let step = &steps[index];
        let (target, recipients, channel) = self.recipients(&txn, &step.target, now).await?;
        let page = PageFacts {
            policy: policy.name.clone(),
            step: index + 1,
            steps: steps.len(),
            target: target.clone(),
            recipients: recipients.clone(),
            unacknowledged_minutes: Ord::max((now - row.started_at).num_minutes(), 0),
            channel,
            approval: row.approval_id,
        };
        notify::enqueue_page_in(&txn, found.id, page).await?;
        let details = json!({
            "policy": policy.name, "step": index + 1, "target": target, "recipients": recipients,
            "approval": row.approval_id,
        });
        crate::base::audit::append_in(
            &txn,
            "system",
            "incident.escalated",
            &format!("incident:{}", found.id),
            details,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(incident = found.id, step = index + 1, %target, "escalation paged");
        self.0
            .bus
            .publish(crate::base::bus::Event::Incident { id: found.id });
        Ok(true)
    }

    /// What a step names, whom it pages, and its channel (a channel step).
    async fn recipients(
        &self,
        conn: &impl ConnectionTrait,
        target: &StepTarget,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<String>, Option<String>), DbErr> {
        Ok(match target {
            StepTarget::User(u) => (format!("user {u}"), vec![u.clone()], None),
            StepTarget::Role(role) => {
                let people = user::Entity::find()
                    .filter(user::Column::Role.eq(role.as_str()))
                    .order_by_asc(user::Column::Username)
                    .all(conn)
                    .await?
                    .into_iter()
                    .map(|u| u.username)
                    .collect();
                (format!("role {}", role.as_str()), people, None)
            }
            StepTarget::Schedule(name) => {
                let row = schedule::Entity::find()
                    .filter(schedule::Column::Name.eq(name))
                    .one(conn)
                    .await?;
                let on_call = match row {
                    Some(row) => self
                        .rotation(conn, &row)
                        .await?
                        .on_call(now)
                        .map(str::to_owned),
                    None => None,
                };
                (
                    format!("schedule {name}"),
                    on_call.into_iter().collect(),
                    None,
                )
            }
            StepTarget::Channel(c) => (format!("channel {c}"), Vec::new(), Some(c.clone())),
        })
    }
}

/// A role by its name (any case), for step targets given as text.
pub fn role_named(name: &str) -> Option<Role> {
    name.trim().to_ascii_uppercase().parse::<Role>().ok()
}
