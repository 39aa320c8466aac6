//! The ApprovalCard: what would be done and why, the risk (base → effective, with the trust
//! that moved it), who must sign and who has, every dry-run check, the TOCTOU re-check and the
//! outcome — with Approve / Reject for those who may, disabled with the reason for the others.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::status::Pill;
use crate::graphql::{self, ApprovalStatus, Decision, ExecutionStatus, RiskLevel};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardIncident {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardAction {
    pub kind: String,
    pub target: String,
    pub namespace: Option<String>,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardSignature {
    pub signer: String,
    pub role: String,
    pub decision: Decision,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardDryRun {
    pub passed: bool,
    pub state_fingerprint: String,
    pub blast_radius: i64,
    pub checks: Vec<CardCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardRecheck {
    pub passed: bool,
    pub state_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardExecution {
    pub status: ExecutionStatus,
    pub output: String,
}

/// The approval that replaced a SUPERSEDED one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardReplacement {
    pub id: String,
    pub action: CardReplacementAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardReplacementAction {
    pub kind: String,
    pub target: String,
}

/// What a FinOps fix saves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardSaving {
    pub recommendation: String,
    pub monthly: String,
    pub annual: String,
    pub currency: String,
}

impl CardSaving {
    /// "Saves $340.00/mo ($4080.00/yr)"; other currencies by code.
    pub fn line(&self) -> String {
        let sign = if self.currency == "USD" {
            "$".to_owned()
        } else {
            format!("{} ", self.currency)
        };
        format!("Saves {sign}{}/mo ({sign}{}/yr)", self.monthly, self.annual)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardPermission {
    pub allowed: bool,
    pub reason: Option<String>,
}

/// One approval as the card shows it. Every operation (list, one, live, approve, reject)
/// selects the same fragment (`CardFields`), and each answer is decoded straight into this
/// type ([`answers`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub id: String,
    pub status: ApprovalStatus,
    pub base_risk: RiskLevel,
    pub effective_risk: RiskLevel,
    pub trust: i64,
    pub pattern: String,
    pub required_signatures: i64,
    pub required_roles: Vec<String>,
    pub mandatory_roles: Vec<String>,
    pub requested_by: String,
    pub void_reason: Option<String>,
    pub created_at: String,
    pub incident: Option<CardIncident>,
    pub action: CardAction,
    pub signatures: Vec<CardSignature>,
    pub dry_run: CardDryRun,
    pub recheck: Option<CardRecheck>,
    pub execution: Option<CardExecution>,
    /// FinOps fixes only.
    #[serde(default)]
    pub finops_saving: Option<CardSaving>,
    /// SUPERSEDED: what a newer analysis proposed instead.
    #[serde(default)]
    pub superseded_by: Option<CardReplacement>,
    pub viewer_can_sign: CardPermission,
    pub viewer_can_reject: CardPermission,
}

impl Card {
    /// Still waiting or running (PENDING, APPROVED, EXECUTING).
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            ApprovalStatus::Pending | ApprovalStatus::Approved | ApprovalStatus::Executing
        )
    }

    fn numeric_id(&self) -> i64 {
        self.id.parse().unwrap_or(0)
    }

    fn approvals(&self) -> usize {
        self.signatures
            .iter()
            .filter(|s| s.decision == Decision::Approve)
            .count()
    }

    /// "1 of 2 signatures" and who may give them.
    pub fn quorum(&self) -> String {
        quorum(
            self.approvals(),
            self.required_signatures,
            &self.required_roles,
            &self.mandatory_roles,
        )
    }

    /// The re-check made right before execution, in one line, once there was one.
    pub fn recheck_line(&self) -> Option<String> {
        self.recheck.as_ref().map(|r| {
            let same = r.state_fingerprint == self.dry_run.state_fingerprint;
            format!(
                "Re-checked before execution: {} · fingerprint {} ({})",
                if r.passed {
                    "all checks pass"
                } else {
                    "a check fails"
                },
                short_fingerprint(&r.state_fingerprint),
                if same { "unchanged" } else { "changed" }
            )
        })
    }

    /// How trust moved the risk, if it did.
    pub fn trust_note(&self) -> String {
        if self.base_risk == self.effective_risk {
            format!("trust {} on {}", self.trust, self.pattern)
        } else {
            format!("lowered by trust {} on {}", self.trust, self.pattern)
        }
    }
}

/// The approval operations' answers, shaped as their documents in `approvals.graphql` select
/// them, with a [`Card`] wherever they select `CardFields`: decoded with
/// `Transport::run_as`, so the browser carries the card's decoder once rather than a generated
/// decoder per operation (and an encoder back to reach the card).
pub mod answers {
    use serde::Deserialize;

    use super::Card;

    /// `ApprovalList`.
    #[derive(Debug, Deserialize)]
    pub struct List {
        pub approvals: Edges,
    }

    #[derive(Debug, Deserialize)]
    pub struct Edges {
        pub edges: Vec<Edge>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Edge {
        pub node: Card,
    }

    /// `ApprovalOne`.
    #[derive(Debug, Deserialize)]
    pub struct One {
        pub approval: Option<Card>,
    }

    /// `ApprovalLive`.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Live {
        pub approval_updates: Card,
    }

    /// `ApproveCard`.
    #[derive(Debug, Deserialize)]
    pub struct Approved {
        pub approve: Card,
    }

    /// `RejectCard`.
    #[derive(Debug, Deserialize)]
    pub struct Rejected {
        pub reject: Card,
    }

    /// `IncidentApprovals`.
    #[derive(Debug, Deserialize)]
    pub struct OfIncident {
        pub incident: Option<IncidentCards>,
    }

    #[derive(Debug, Deserialize)]
    pub struct IncidentCards {
        pub approvals: Vec<Card>,
    }
}

/// "1 of 2 signatures · from ADMIN, DEVOPS, SRE": what an approval waits for.
pub fn quorum(
    approved: usize,
    required: i64,
    required_roles: &[String],
    mandatory_roles: &[String],
) -> String {
    if required == 0 {
        return "LOW: approved by the system (still dry-run, re-checked and audited)".into();
    }
    let who = if mandatory_roles.is_empty() {
        format!("from {}", required_roles.join(", "))
    } else {
        format!("{} must each sign", mandatory_roles.join(" and "))
    };
    format!("{approved} of {required} signatures · {who}")
}

/// Inserts or replaces `card`, newest first.
pub fn upsert(cards: &mut Vec<Card>, card: Card) {
    match cards.iter_mut().find(|c| c.id == card.id) {
        Some(existing) => *existing = card,
        None => cards.push(card),
    }
    cards.sort_by_key(|c| std::cmp::Reverse(c.numeric_id()));
}

fn short_fingerprint(fingerprint: &str) -> String {
    fingerprint.get(..12).unwrap_or(fingerprint).to_owned()
}

#[component]
pub fn ApprovalCard(card: Card, on_change: Callback<Card>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let transport = graphql::use_transport().ok();
    let id = card.id.clone();

    let decide = move |approve: bool| {
        let Some(transport) = transport.clone() else {
            return;
        };
        let id = id.clone();
        let why = reason.get_untracked();
        if !approve && why.trim().is_empty() {
            error.set(Some("Say why you reject it.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let result = if approve {
                transport
                    .run_as::<graphql::ApproveCard, answers::Approved>(
                        graphql::approve_card::Variables {
                            id,
                            comment: (!why.trim().is_empty()).then_some(why),
                        },
                    )
                    .await
                    .map(|data| data.approve)
            } else {
                transport
                    .run_as::<graphql::RejectCard, answers::Rejected>(
                        graphql::reject_card::Variables { id, reason: why },
                    )
                    .await
                    .map(|data| data.reject)
            };
            busy.set(false);
            match result {
                Ok(card) => on_change.run(card),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let approve = {
        let decide = decide.clone();
        move |_| decide(true)
    };
    let reject = move |_| decide(false);

    let pending = card.status == ApprovalStatus::Pending;
    let can_approve = card.viewer_can_sign.clone();
    let can_reject = card.viewer_can_reject.clone();
    let namespace = card
        .action
        .namespace
        .clone()
        .map(|ns| format!(" in {ns}"))
        .unwrap_or_default();
    let incident = card.incident.clone();
    view! {
        <article
            class="panel approval-card"
            data-testid="approval-card"
            data-approval=card.id.clone()
            data-status=card.status.as_str()
        >
            <header class="card-head">
                <span class="mono muted">{format!("#{}", card.id)}</span>
                <h3 class="mono">{format!("{} {}{namespace}", card.action.kind, card.action.target)}</h3>
                <span data-testid="approval-status"><Pill value=card.status.as_str() prefix="ap"/></span>
            </header>
            <p class="muted">
                {incident.map(|i| view! {
                    "For "<a href=format!("/incidents/{}", i.id)>{i.title}</a>" · "
                })}
                {format!("requested by {}", card.requested_by)}
            </p>
            {card.finops_saving.clone().map(|s| view! {
                <p class="saving" data-testid="saving"><strong>{s.line()}</strong></p>
            })}
            {(!card.action.rationale.is_empty()).then(|| view! { <p>{card.action.rationale.clone()}</p> })}
            <p class="risk-line" data-testid="risk">
                <span class=format!("pill risk-{}", card.base_risk.as_str().to_ascii_lowercase())>{card.base_risk.as_str()}</span>
                {(card.base_risk != card.effective_risk).then(|| view! {
                    " → "<span class=format!("pill risk-{}", card.effective_risk.as_str().to_ascii_lowercase())>{card.effective_risk.as_str()}</span>
                })}
                <span class="muted">{format!(" {}", card.trust_note())}</span>
            </p>
            <p data-testid="quorum">{card.quorum()}</p>
            {evidence(&card).into_any()}
            {pending.then(|| sign_controls(reason, busy, can_approve, can_reject, approve, reject))}
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </article>
    }
}

/// The comment box and the Approve and Reject buttons, each enabled as the server says.
fn sign_controls(
    reason: RwSignal<String>,
    busy: RwSignal<bool>,
    can_approve: CardPermission,
    can_reject: CardPermission,
    approve: impl Fn(leptos::ev::MouseEvent) + 'static,
    reject: impl Fn(leptos::ev::MouseEvent) + 'static,
) -> impl IntoView {
    let blocked = (!can_approve.allowed).then(|| can_approve.reason.clone().unwrap_or_default());
    view! {
        <div class="card-actions">
            <input
                type="text"
                aria-label="Comment or reason"
                placeholder="Comment (required to reject)"
                data-testid="sign-reason"
                prop:value=move || reason.get()
                on:input=move |ev| reason.set(event_target_value(&ev))
                disabled=!(can_approve.allowed || can_reject.allowed)
            />
            <button
                class="btn btn-primary"
                data-testid="approve"
                title=can_approve.reason.clone().unwrap_or_default()
                disabled=move || !can_approve.allowed || busy.get()
                on:click=approve
            >"Approve"</button>
            <button
                class="btn btn-danger"
                data-testid="reject"
                title=can_reject.reason.clone().unwrap_or_default()
                disabled=move || !can_reject.allowed || busy.get()
                on:click=reject
            >"Reject"</button>
        </div>
        {blocked.clone().map(|why| view! { <p class="muted small" data-testid="sign-blocked">{why}</p> })}
    }
}

/// What the card rests on: who signed, the dry-run checks and fingerprint, the re-check, why it
/// was voided, and what the execution said.
fn evidence(card: &Card) -> impl IntoView + use<> {
    let recheck = card.recheck_line();
    view! {
            {(!card.signatures.is_empty()).then(|| view! {
                <ul class="signatures" data-testid="signatures">
                    {card.signatures.iter().map(|s| {
                        let mark = if s.decision == Decision::Approve { "✔" } else { "✘" };
                        let comment = s.comment.clone().map(|c| format!(" — {c}")).unwrap_or_default();
                        view! { <li>{format!("{mark} {} ({}){comment}", s.signer, s.role)}</li> }
                    }).collect_view()}
                </ul>
            })}
            <table class="table checks" data-testid="dry-run">
                <tbody>
                    {card.dry_run.checks.iter().map(|c| {
                        let (class, verdict) = if c.passed { ("pill pill-ok", "PASS") } else { ("pill pill-failed", "FAIL") };
                        view! {
                            <tr data-check=c.name.clone()>
                                <td class="mono">{c.name.clone()}</td>
                                <td><span class=class>{verdict}</span></td>
                                <td>{c.detail.clone()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="mono muted small">
                {format!(
                    "dry-run fingerprint {} · blast radius {} service(s)",
                    short_fingerprint(&card.dry_run.state_fingerprint),
                    card.dry_run.blast_radius
                )}
            </p>
            {recheck.map(|text| view! { <p class="small" data-testid="recheck">{text}</p> })}
            {(card.status == ApprovalStatus::Superseded).then(|| view! {
                <p class="muted" data-testid="superseded-by">
                    "Superseded by a newer analysis, never executed"
                    {card.superseded_by.clone().map(|r| view! {
                        ": "<a href=format!("/approvals/{}", r.id)>{format!("#{} {} {}", r.id, r.action.kind, r.action.target)}</a>
                    })}
                </p>
            })}
            {card.void_reason.clone().map(|why| view! {
                <p class="form-error" data-testid="void-reason">{format!("Voided, never executed: {why}")}</p>
            })}
            {card.execution.clone().map(|e| view! {
                <div data-testid="execution">
                    <p class="small">{format!("Execution {}", e.status.as_str())}</p>
                    <pre class="output">{e.output}</pre>
                </div>
            })}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A card for tests: PENDING-shaped, of no incident.
    pub(crate) fn card(id: &str, status: ApprovalStatus) -> Card {
        Card {
            id: id.into(),
            status,
            base_risk: RiskLevel::High,
            effective_risk: RiskLevel::Medium,
            trust: 10,
            pattern: "restart_deployment:web".into(),
            required_signatures: 1,
            required_roles: vec!["ADMIN".into(), "DEVOPS".into(), "SRE".into()],
            mandatory_roles: vec![],
            requested_by: "awoooi".into(),
            void_reason: None,
            created_at: String::new(),
            incident: None,
            action: CardAction {
                kind: "restart_deployment".into(),
                target: "web".into(),
                namespace: None,
                rationale: String::new(),
            },
            signatures: vec![],
            dry_run: CardDryRun {
                passed: true,
                state_fingerprint: "ab".repeat(32),
                blast_radius: 0,
                checks: vec![],
            },
            recheck: None,
            execution: None,
            finops_saving: None,
            superseded_by: None,
            viewer_can_sign: CardPermission {
                allowed: true,
                reason: None,
            },
            viewer_can_reject: CardPermission {
                allowed: true,
                reason: None,
            },
        }
    }

    #[test]
    fn live_updates_replace_cards_in_place_newest_first() {
        let mut cards = vec![
            card("2", ApprovalStatus::Pending),
            card("1", ApprovalStatus::Pending),
        ];
        upsert(&mut cards, card("10", ApprovalStatus::Pending));
        upsert(&mut cards, card("2", ApprovalStatus::Executed));
        let seen: Vec<_> = cards.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(
            seen,
            [
                ("10", ApprovalStatus::Pending),
                ("2", ApprovalStatus::Executed),
                ("1", ApprovalStatus::Pending)
            ]
        );
    }

    #[test]
    fn the_card_says_who_must_sign_and_what_trust_did() {
        let mut c = card("1", ApprovalStatus::Pending);
        assert_eq!(c.quorum(), "0 of 1 signatures · from ADMIN, DEVOPS, SRE");
        assert_eq!(
            c.trust_note(),
            "lowered by trust 10 on restart_deployment:web"
        );
        c.mandatory_roles = vec!["CTO".into(), "CISO".into()];
        c.required_signatures = 2;
        c.signatures.push(CardSignature {
            signer: "carol".into(),
            role: "CTO".into(),
            decision: Decision::Approve,
            comment: None,
        });
        assert_eq!(
            c.quorum(),
            "1 of 2 signatures · CTO and CISO must each sign"
        );
        c.required_signatures = 0;
        assert!(c.quorum().starts_with("LOW: approved by the system"));
    }

    #[test]
    fn cards_decode_from_the_fragments_json() {
        let fragment = serde_json::json!({
            "id": "7", "status": "PENDING", "baseRisk": "HIGH", "effectiveRisk": "HIGH",
            "trust": 0, "pattern": "p", "requiredSignatures": 2,
            "requiredRoles": ["ADMIN"], "mandatoryRoles": [], "requestedBy": "awoooi",
            "voidReason": null, "createdAt": "2026-11-25T03:00:00Z",
            "incident": {"id": "1", "title": "t"},
            "action": {"kind": "k", "target": "t", "namespace": "prod", "rationale": "r"},
            "signatures": [],
            "dryRun": {"passed": true, "stateFingerprint": "f", "blastRadius": 3, "checks": []},
            "recheck": null, "execution": null,
            "finopsSaving": {"recommendation": "Resize node 'w'", "monthly": "340.00",
                             "annual": "4080.00", "currency": "USD"},
            "viewerCanSign": {"allowed": false, "reason": "no"},
            "viewerCanReject": {"allowed": false, "reason": "no"}
        });
        let card: Card = serde_json::from_value(fragment).unwrap();
        assert_eq!(card.dry_run.blast_radius, 3);
        assert_eq!(card.viewer_can_sign.reason.as_deref(), Some("no"));
        let mut saving = card.finops_saving.clone().unwrap();
        assert_eq!(saving.line(), "Saves $340.00/mo ($4080.00/yr)");
        saving.currency = "EUR".into();
        assert_eq!(saving.line(), "Saves EUR 340.00/mo (EUR 4080.00/yr)");
        assert!(serde_json::from_value::<Card>(serde_json::json!({"id": 1})).is_err());
    }
}
