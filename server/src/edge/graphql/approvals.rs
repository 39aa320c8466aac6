//! Approvals over GraphQL: propose, approve, reject, the queue, trust scores, live updates.
//! The rules live in `engine::policy`; errors say which rule refused and why.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use engine::Role;
use engine::policy::{self, Decision};
use entity::{approval, incident, trust_score};
use futures_util::{Stream, StreamExt};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::auth::RoleEnum;
use super::incidents::{CountFields, Incident};
use super::{ApiError, principal, require_role};
use crate::services::approvals::{ApprovalError, ApprovalView, Approvals, NewApproval};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::policy::RiskLevel")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// One signer's decision.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::policy::Decision", name = "Decision")]
pub enum DecisionEnum {
    Approve,
    Reject,
}

/// Where an approval's one execution stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::execution::ExecutionStatus")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::policy::ApprovalStatus")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Executing,
    Executed,
    Failed,
    Rejected,
    Voided,
    Expired,
    Superseded,
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> Self {
        match error {
            ApprovalError::NotFound(_) | ApprovalError::IncidentNotFound(_) => {
                ApiError::NotFound(error.to_string())
            }
            ApprovalError::Forbidden(m) => ApiError::Forbidden(m),
            ApprovalError::Conflict(m) => ApiError::Conflict(m),
            ApprovalError::Invalid(m) => ApiError::BadUserInput(m),
            ApprovalError::Db(e) => ApiError::internal(e),
        }
    }
}

/// An action to propose, e.g. `{kind: "rollback_deployment", target: "order-api"}`.
#[derive(InputObject)]
pub struct ActionInput {
    kind: String,
    target: String,
    /// Defaults to the target service's namespace in the topology.
    namespace: Option<String>,
    params: Option<Json<serde_json::Value>>,
    /// Labels that may raise the risk (policy `raise_labels`).
    labels: Option<Json<std::collections::BTreeMap<String, String>>>,
    /// Why, for the people who sign.
    rationale: Option<String>,
}

/// An action on a target: what an approval would do, or what the Brain proposes.
#[derive(SimpleObject)]
pub struct Action {
    pub kind: String,
    pub target: String,
    pub namespace: Option<String>,
    pub params: Json<serde_json::Value>,
    pub rationale: String,
}

#[derive(SimpleObject)]
pub struct SignatureRecord {
    signer: String,
    role: RoleEnum,
    decision: DecisionEnum,
    comment: Option<String>,
    at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct DryRunCheck {
    /// RBAC, SYNTAX, RESOURCE_EXISTS, PDB or BLAST_RADIUS.
    name: String,
    passed: bool,
    detail: String,
}

#[derive(SimpleObject)]
pub struct DryRunReport {
    passed: bool,
    checks: Vec<DryRunCheck>,
    state_fingerprint: String,
    /// How many services depend on the target.
    blast_radius: i32,
}

impl From<engine::dryrun::DryRunReport> for DryRunReport {
    fn from(report: engine::dryrun::DryRunReport) -> Self {
        DryRunReport {
            passed: report.passed,
            checks: report
                .checks
                .into_iter()
                .map(|c| DryRunCheck {
                    name: serde_json::to_value(c.name)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    passed: c.passed,
                    detail: c.detail,
                })
                .collect(),
            state_fingerprint: report.state_fingerprint,
            blast_radius: i32::try_from(report.blast_radius).unwrap_or(i32::MAX),
        }
    }
}

#[derive(SimpleObject)]
pub struct Execution {
    executor: String,
    status: ExecutionStatus,
    /// Pseudonymised.
    output: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// Whether the caller may sign now, and if not, why (for disabled buttons).
#[derive(SimpleObject)]
pub struct SignPermission {
    allowed: bool,
    reason: Option<String>,
}

impl From<Result<(), String>> for SignPermission {
    fn from(result: Result<(), String>) -> Self {
        SignPermission {
            allowed: result.is_ok(),
            reason: result.err(),
        }
    }
}

pub struct Approval(pub ApprovalView);

#[Object]
impl Approval {
    async fn id(&self) -> ID {
        self.0.row.id.into()
    }
    async fn incident(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Incident>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(incident::Entity::find_by_id(self.0.row.incident_id)
            .one(db)
            .await
            .map_err(ApiError::internal)?
            .map(Incident::from))
    }
    async fn incident_id(&self) -> ID {
        self.0.row.incident_id.into()
    }
    async fn action(&self) -> Action {
        let row = &self.0.row;
        Action {
            kind: row.kind.clone(),
            target: row.target.clone(),
            namespace: row.namespace.clone(),
            params: Json(serde_json::from_str(&row.params).unwrap_or_default()),
            rationale: row.rationale.clone(),
        }
    }
    async fn requested_by(&self) -> &str {
        &self.0.row.requested_by
    }
    /// The trust pattern, e.g. `restart_pod:nginx-*`.
    async fn pattern(&self) -> &str {
        &self.0.row.pattern
    }
    /// The pattern's trust when this approval was made.
    async fn trust(&self) -> i32 {
        self.0.row.trust
    }
    async fn base_risk(&self) -> RiskLevel {
        self.0.row.base_risk.into()
    }
    async fn effective_risk(&self) -> RiskLevel {
        self.0.row.effective_risk.into()
    }
    async fn required_signatures(&self) -> i32 {
        self.0.policy().requirement().signatures as i32
    }
    /// Who may sign.
    async fn required_roles(&self) -> Vec<RoleEnum> {
        roles(self.0.policy().requirement().eligible)
    }
    /// Roles that must each sign (CRITICAL: CTO and CISO).
    async fn mandatory_roles(&self) -> Vec<RoleEnum> {
        roles(self.0.policy().requirement().mandatory)
    }
    async fn signatures(&self) -> Vec<SignatureRecord> {
        self.0
            .signatures
            .iter()
            .map(|s| SignatureRecord {
                signer: s.signer.clone(),
                role: s.role.into(),
                decision: s.decision.into(),
                comment: s.comment.clone(),
                at: s.at,
            })
            .collect()
    }
    async fn status(&self) -> ApprovalStatus {
        self.0.row.status.into()
    }
    /// The dry-run made when it was proposed.
    async fn dry_run(&self) -> DryRunReport {
        self.0.dry_run().into()
    }
    /// The dry-run made again right before execution (TOCTOU), once it ran.
    async fn recheck(&self) -> Option<DryRunReport> {
        self.0.recheck().map(Into::into)
    }
    /// Why it was voided instead of executed.
    async fn void_reason(&self) -> Option<&str> {
        self.0.row.void_reason.as_deref()
    }
    /// SUPERSEDED: the approval a newer analysis proposed instead (none when the newer
    /// analysis proposed no action).
    async fn superseded_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Approval>> {
        let Some(id) = self.0.row.superseded_by else {
            return Ok(None);
        };
        let approvals = ctx.data::<Approvals>()?;
        Ok(Some(Approval(
            approvals.load(id).await.map_err(ApiError::from)?,
        )))
    }
    /// What the knowledge base recorded of this approval: its execution's entry and its
    /// incident's resolution (path A), which both point back here.
    async fn knowledge_entries(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::knowledge::KnowledgeEntry>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(super::knowledge::entries_of_approval(db, self.0.row.id).await?)
    }
    /// For a FinOps fix: what it saves.
    async fn finops_saving(&self) -> Option<super::finops::FinopsSaving> {
        super::finops::saving_of(&self.0.row)
    }

    async fn execution(&self) -> Option<Execution> {
        self.0.execution.as_ref().map(|e| Execution {
            executor: e.executor.clone(),
            status: e.status.into(),
            output: e.output.clone(),
            started_at: e.started_at,
            finished_at: e.finished_at,
        })
    }
    /// May the caller reject now? (Also possible when the dry-run fails.)
    async fn viewer_can_reject(&self, ctx: &Context<'_>) -> async_graphql::Result<SignPermission> {
        let who = principal(ctx)?;
        Ok(SignPermission::from(
            self.0
                .policy()
                .may_sign(&who.name, who.role, Utc::now())
                .map_err(|e| e.to_string()),
        ))
    }
    /// May the caller approve now?
    async fn viewer_can_sign(&self, ctx: &Context<'_>) -> async_graphql::Result<SignPermission> {
        let who = principal(ctx)?;
        let may = self
            .0
            .policy()
            .may_sign(&who.name, who.role, Utc::now())
            .map_err(|e| e.to_string());
        Ok(SignPermission::from(may.and_then(|()| {
            if self.0.dry_run().passed {
                Ok(())
            } else {
                Err("the dry-run fails; it can only be rejected".to_owned())
            }
        })))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.row.expires_at
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.row.decided_at
    }
}

#[derive(SimpleObject)]
pub struct TrustScore {
    pattern: String,
    score: i32,
    base_risk: RiskLevel,
    effective_risk: RiskLevel,
}

fn roles(roles: Vec<Role>) -> Vec<RoleEnum> {
    roles.into_iter().map(Into::into).collect()
}

/// The approvals of some incidents, newest first.
pub async fn approvals_of(
    ctx: &Context<'_>,
    incident_ids: &[i32],
) -> async_graphql::Result<Vec<Approval>> {
    let db = ctx.data::<DatabaseConnection>()?;
    let approvals = ctx.data::<Approvals>()?;
    let rows = approval::Entity::find()
        .filter(approval::Column::IncidentId.is_in(incident_ids.iter().copied()))
        .order_by_desc(approval::Column::Id)
        .limit(50)
        .all(db)
        .await
        .map_err(ApiError::internal)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(Approval(
            approvals.load(row.id).await.map_err(ApiError::from)?,
        ));
    }
    Ok(out)
}

fn parse_id(id: &ID, what: &str) -> Result<i32, ApiError> {
    id.parse::<i32>()
        .map_err(|_| ApiError::BadUserInput(format!("{what}: `{}` is not an id", id.as_str())))
}

#[derive(Default)]
pub struct ApprovalQuery;

#[Object]
impl ApprovalQuery {
    /// Approvals, newest first, optionally only those in one status.
    async fn approvals(
        &self,
        ctx: &Context<'_>,
        status: Option<ApprovalStatus>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Approval, CountFields>> {
        principal(ctx)?;
        let page = super::Page::new(first, 200, after.as_deref())?;
        let db = ctx.data::<DatabaseConnection>()?;
        let approvals = ctx.data::<Approvals>()?;
        let mut query = approval::Entity::find();
        if let Some(status) = status {
            let status: policy::ApprovalStatus = status.into();
            query = query.filter(approval::Column::Status.eq(status.as_str()));
        }
        let total_count = query.clone().count(db).await.map_err(ApiError::internal)?;
        if let Some(after_id) = page.after {
            query = query.filter(approval::Column::Id.lt(after_id));
        }
        let rows = query
            .order_by_desc(approval::Column::Id)
            .limit(page.limit())
            .all(db)
            .await
            .map_err(ApiError::internal)?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(approvals.load(row.id).await.map_err(ApiError::from)?);
        }
        Ok(page.connection(views, total_count, |v| i64::from(v.row.id), Approval))
    }

    async fn approval(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Approval>> {
        principal(ctx)?;
        let id = parse_id(&id, "id")?;
        match ctx.data::<Approvals>()?.load(id).await {
            Ok(view) => Ok(Some(Approval(view))),
            Err(ApprovalError::NotFound(_)) => Ok(None),
            Err(e) => Err(ApiError::from(e).into()),
        }
    }

    /// Every action pattern's trust, highest first.
    async fn trust_scores(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TrustScore>> {
        principal(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let rows = trust_score::Entity::find()
            .order_by_desc(trust_score::Column::Score)
            .order_by_asc(trust_score::Column::Pattern)
            .all(db)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let base = row.base_risk;
                let score = u32::try_from(row.score).unwrap_or(0);
                TrustScore {
                    pattern: row.pattern,
                    score: row.score,
                    base_risk: base.into(),
                    effective_risk: policy::effective_risk(base, score).into(),
                }
            })
            .collect())
    }
}

/// Who may propose actions: the operators.
const PROPOSERS: &[Role] = &[Role::Admin, Role::Devops, Role::Sre, Role::Cto, Role::Ciso];

#[derive(Default)]
pub struct ApprovalMutation;

#[Object]
impl ApprovalMutation {
    /// Proposes an action for an incident: risk, dry-run, and an approval waiting for the
    /// signatures its risk needs (LOW runs at once). The caller is the requester and cannot
    /// sign it.
    async fn propose_action(
        &self,
        ctx: &Context<'_>,
        incident_id: ID,
        action: ActionInput,
    ) -> async_graphql::Result<Approval> {
        let who = require_role(ctx, PROPOSERS)?;
        let incident_id = parse_id(&incident_id, "incidentId")?;
        let request = policy::ActionRequest {
            kind: action.kind,
            target: action.target,
            namespace: action.namespace,
            params: action.params.map_or(serde_json::json!({}), |p| p.0),
            labels: action.labels.map(|l| l.0).unwrap_or_default(),
            requested_by: who.name.clone(),
        };
        let view = ctx
            .data::<Approvals>()?
            .propose(NewApproval {
                incident_id,
                request,
                rationale: action.rationale.unwrap_or_default(),
                finops: None,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(Approval(view))
    }

    /// Signs an approval. Refused (FORBIDDEN) for the requester and for roles the risk does not
    /// admit; refused (CONFLICT) when already signed by the caller or no longer pending.
    async fn approve(
        &self,
        ctx: &Context<'_>,
        approval_id: ID,
        comment: Option<String>,
    ) -> async_graphql::Result<Approval> {
        decide(ctx, approval_id, Decision::Approve, comment).await
    }

    /// Rejects an approval; any eligible signer's reject ends it and resets the pattern's trust.
    async fn reject(
        &self,
        ctx: &Context<'_>,
        approval_id: ID,
        reason: String,
    ) -> async_graphql::Result<Approval> {
        if reason.trim().is_empty() {
            return Err(ApiError::BadUserInput("reason: say why you reject".into()).into());
        }
        decide(ctx, approval_id, Decision::Reject, Some(reason)).await
    }
}

async fn decide(
    ctx: &Context<'_>,
    approval_id: ID,
    decision: Decision,
    comment: Option<String>,
) -> async_graphql::Result<Approval> {
    let who = principal(ctx)?;
    let id = parse_id(&approval_id, "approvalId")?;
    let view = ctx
        .data::<Approvals>()?
        .sign(id, &who.name, who.role, decision, comment)
        .await
        .map_err(ApiError::from)?;
    Ok(Approval(view))
}

/// Changed approvals, each read once per process for every `approvalUpdates` subscriber.
pub type ApprovalFeed = super::feed::Feed<ApprovalView>;

/// The approval feed over what the approvals service changes.
pub fn approval_feed(approvals: &Approvals) -> ApprovalFeed {
    let service = approvals.clone();
    ApprovalFeed::start(approvals.subscribe(), "approval", move |id| {
        let service = service.clone();
        async move {
            match service.load(id).await {
                Ok(view) => Ok(Some(view)),
                Err(crate::services::approvals::ApprovalError::NotFound(_)) => Ok(None),
                Err(error) => Err(error),
            }
        }
    })
}

#[derive(Default)]
pub struct ApprovalSubscription;

#[Subscription]
impl ApprovalSubscription {
    /// Every approval as it is proposed or changes (after the change is committed).
    async fn approval_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Approval> + use<>> {
        principal(ctx)?;
        let feed = ctx.data::<ApprovalFeed>()?;
        Ok(feed.subscribe().map(|view| Approval((*view).clone())))
    }
}
