//! Policy, exactly (PRODUCT.md): the risk of an action, trust per action pattern, the
//! signatures each effective risk needs, and the approval lifecycle with four-eyes. No IO:
//! stores apply these decisions with conditional updates.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "LOW",
            RiskLevel::Medium => "MEDIUM",
            RiskLevel::High => "HIGH",
            RiskLevel::Critical => "CRITICAL",
        }
    }

    /// One level up (CRITICAL stays).
    pub fn raised(self) -> RiskLevel {
        match self {
            RiskLevel::Low => RiskLevel::Medium,
            RiskLevel::Medium => RiskLevel::High,
            RiskLevel::High | RiskLevel::Critical => RiskLevel::Critical,
        }
    }
}

crate::stored_as_text!(
    RiskLevel,
    [
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::Critical
    ]
);

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone asks AWOOOI to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub kind: String,
    pub target: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub params: serde_json::Value,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub requested_by: String,
}

/// The policy table: default risk per action kind, and what raises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTable {
    pub risks: BTreeMap<String, RiskLevel>,
    /// Kinds not in the table.
    pub unknown: RiskLevel,
    /// Namespaces where every action is one level riskier.
    pub raise_namespaces: Vec<String>,
    /// Labels (`key=value`) that make an action one level riskier.
    pub raise_labels: BTreeMap<String, String>,
}

impl Default for PolicyTable {
    fn default() -> Self {
        use RiskLevel::*;
        let risks = [
            ("run_diagnostics", Low),
            ("get_logs", Low),
            ("describe", Low),
            ("restart_deployment", Medium),
            ("restart_pod", Medium),
            ("delete_pod", Medium),
            ("scale_deployment", Medium),
            ("rollback_deployment", High),
            ("delete_pvc", High),
            ("resize_node", High),
            ("cordon_node", High),
            ("drain_node", High),
            ("delete_namespace", Critical),
            ("drop_table", Critical),
        ]
        .into_iter()
        .map(|(k, r)| (k.to_owned(), r))
        .collect();
        PolicyTable {
            risks,
            unknown: High,
            raise_namespaces: vec!["production".into(), "prod".into()],
            raise_labels: BTreeMap::new(),
        }
    }
}

impl PolicyTable {
    /// The table's risk of `kind`: its own entry, else the longest `prefix*` entry it starts
    /// with (`ansible:*`, `mcp:ops/*` — how executors' declared risks are listed), else
    /// `unknown`.
    pub fn risk_of(&self, kind: &str) -> RiskLevel {
        if let Some(risk) = self.risks.get(kind) {
            return *risk;
        }
        self.risks
            .iter()
            .filter_map(|(key, risk)| {
                let prefix = key.strip_suffix('*')?;
                kind.starts_with(prefix).then_some((prefix.len(), *risk))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, risk)| risk)
            .unwrap_or(self.unknown)
    }

    /// The table's risk, raised one level for production namespaces or raising labels — never
    /// for a read-only action, and never to CRITICAL: CRITICAL is only for what the table
    /// itself calls irreversible (dropping a table, deleting a namespace), so a production
    /// rollback needs HIGH's signatures and trust can still lower it.
    pub fn base_risk(&self, request: &ActionRequest) -> RiskLevel {
        let risk = self.risk_of(&request.kind);
        if risk == RiskLevel::Critical || crate::dryrun::read_only(&request.kind) {
            return risk;
        }
        let production = request
            .namespace
            .as_ref()
            .is_some_and(|ns| self.raise_namespaces.iter().any(|r| r == ns));
        let labelled = self
            .raise_labels
            .iter()
            .any(|(k, v)| request.labels.get(k) == Some(v));
        if production || labelled {
            risk.raised().min(RiskLevel::High)
        } else {
            risk
        }
    }
}

/// The trust pattern of a request: `kind:target`, with generated suffixes (pod hashes,
/// replica-set ids) replaced by `*`, e.g. `restart_pod:nginx-*`.
pub fn trust_pattern(kind: &str, target: &str) -> String {
    let generated = |s: &str| {
        (s.len() == 5 || (8..=10).contains(&s.len()))
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().any(|c| c.is_ascii_digit())
    };
    let parts: Vec<&str> = target.split('-').collect();
    let keep = parts
        .iter()
        .rposition(|p| !generated(p))
        .map_or(0, |i| i + 1);
    if keep == parts.len() {
        format!("{kind}:{target}")
    } else {
        format!("{kind}:{}-*", parts[..keep].join("-"))
    }
}

/// Trust lowers risk by one level at most: HIGH counts as MEDIUM from 10 approvals, MEDIUM as
/// LOW from 5; CRITICAL never moves.
pub fn effective_risk(base: RiskLevel, trust: u32) -> RiskLevel {
    match base {
        RiskLevel::High if trust >= 10 => RiskLevel::Medium,
        RiskLevel::Medium if trust >= 5 => RiskLevel::Low,
        other => other,
    }
}

/// Trust after a decision: approve +1, reject → 0.
pub fn next_trust(score: u32, approved: bool) -> u32 {
    if approved { score.saturating_add(1) } else { 0 }
}

/// What an effective risk needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub signatures: usize,
    pub eligible: Vec<Role>,
    /// Roles that must each sign once (CRITICAL: CTO and CISO).
    pub mandatory: Vec<Role>,
}

/// The risk matrix.
pub fn requirement(risk: RiskLevel) -> Requirement {
    let operators = vec![Role::Admin, Role::Devops, Role::Sre];
    match risk {
        RiskLevel::Low => Requirement {
            signatures: 0,
            eligible: vec![],
            mandatory: vec![],
        },
        RiskLevel::Medium => Requirement {
            signatures: 1,
            eligible: operators,
            mandatory: vec![],
        },
        RiskLevel::High => Requirement {
            signatures: 2,
            eligible: operators,
            mandatory: vec![],
        },
        RiskLevel::Critical => Requirement {
            signatures: 2,
            eligible: vec![Role::Cto, Role::Ciso],
            mandatory: vec![Role::Cto, Role::Ciso],
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Executing,
    Executed,
    Failed,
    Rejected,
    Voided,
    Expired,
    /// A newer analysis of the incident proposed something else; never executed.
    Superseded,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "PENDING",
            ApprovalStatus::Approved => "APPROVED",
            ApprovalStatus::Executing => "EXECUTING",
            ApprovalStatus::Executed => "EXECUTED",
            ApprovalStatus::Failed => "FAILED",
            ApprovalStatus::Rejected => "REJECTED",
            ApprovalStatus::Voided => "VOIDED",
            ApprovalStatus::Expired => "EXPIRED",
            ApprovalStatus::Superseded => "SUPERSEDED",
        }
    }
}

crate::stored_as_text!(
    ApprovalStatus,
    [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Executing,
        ApprovalStatus::Executed,
        ApprovalStatus::Failed,
        ApprovalStatus::Rejected,
        ApprovalStatus::Voided,
        ApprovalStatus::Expired,
        ApprovalStatus::Superseded
    ]
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "APPROVE",
            Decision::Reject => "REJECT",
        }
    }
}

crate::stored_as_text!(Decision, [Decision::Approve, Decision::Reject]);

/// One person's decision on an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub signer: String,
    pub role: Role,
    pub decision: Decision,
    pub at: DateTime<Utc>,
}

/// Why a signature or transition was refused — worded for the person who tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("this approval is {0} and takes no more signatures")]
    Closed(&'static str),
    #[error("you requested this action; someone else must sign (four-eyes)")]
    OwnRequest,
    #[error("you have already signed this approval")]
    AlreadySigned,
    #[error("{risk} needs a signature from {needed}; you are {role}")]
    NotEligible {
        risk: RiskLevel,
        needed: String,
        role: Role,
    },
    #[error("this approval expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("cannot go from {from} to {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
}

/// An approval as the policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub request: ActionRequest,
    pub pattern: String,
    pub base_risk: RiskLevel,
    pub effective_risk: RiskLevel,
    pub trust: u32,
    pub status: ApprovalStatus,
    pub signatures: Vec<Signature>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn role_list(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [] => "nobody".into(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl Approval {
    /// A new approval for `request` with the pattern's current `trust`. LOW is approved by the
    /// system at once (still dry-run, TOCTOU-checked and audited by the caller).
    pub fn new(
        request: ActionRequest,
        policy: &PolicyTable,
        trust: u32,
        now: DateTime<Utc>,
        expiry: Duration,
    ) -> Approval {
        let base_risk = policy.base_risk(&request);
        let effective_risk = effective_risk(base_risk, trust);
        let status = if requirement(effective_risk).signatures == 0 {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Pending
        };
        Approval {
            pattern: trust_pattern(&request.kind, &request.target),
            request,
            base_risk,
            effective_risk,
            trust,
            status,
            signatures: Vec::new(),
            created_at: now,
            expires_at: now + expiry,
        }
    }

    pub fn requirement(&self) -> Requirement {
        requirement(self.effective_risk)
    }

    fn approvals(&self) -> impl Iterator<Item = &Signature> {
        self.signatures
            .iter()
            .filter(|s| s.decision == Decision::Approve)
    }

    /// Whether `signer` with `role` may sign now, and why not.
    pub fn may_sign(
        &self,
        signer: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), PolicyError> {
        if self.status != ApprovalStatus::Pending {
            return Err(PolicyError::Closed(self.status.as_str()));
        }
        if now >= self.expires_at {
            return Err(PolicyError::Expired(self.expires_at));
        }
        if signer == self.request.requested_by {
            return Err(PolicyError::OwnRequest);
        }
        if self.signatures.iter().any(|s| s.signer == signer) {
            return Err(PolicyError::AlreadySigned);
        }
        let needed = self.requirement();
        if !needed.eligible.contains(&role) {
            return Err(PolicyError::NotEligible {
                risk: self.effective_risk,
                needed: role_list(&needed.eligible),
                role,
            });
        }
        // Mandatory roles sign once each: a second CTO cannot stand in for the CISO.
        if needed.mandatory.contains(&role) && self.approvals().any(|s| s.role == role) {
            let missing: Vec<Role> = needed
                .mandatory
                .iter()
                .copied()
                .filter(|r| !self.approvals().any(|s| s.role == *r))
                .collect();
            return Err(PolicyError::NotEligible {
                risk: self.effective_risk,
                needed: role_list(&missing),
                role,
            });
        }
        Ok(())
    }

    /// Records a decision; a reject by an eligible signer ends the approval, enough approvals
    /// make it APPROVED.
    pub fn sign(
        &mut self,
        signer: &str,
        role: Role,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<ApprovalStatus, PolicyError> {
        if self.status == ApprovalStatus::Pending && now >= self.expires_at {
            self.status = ApprovalStatus::Expired;
        }
        self.may_sign(signer, role, now)?;
        self.signatures.push(Signature {
            signer: signer.to_owned(),
            role,
            decision,
            at: now,
        });
        let needed = self.requirement();
        self.status = match decision {
            Decision::Reject => ApprovalStatus::Rejected,
            Decision::Approve => {
                let count = self.approvals().count();
                let mandatory_met = needed
                    .mandatory
                    .iter()
                    .all(|r| self.approvals().any(|s| s.role == *r));
                if count >= needed.signatures && mandatory_met {
                    ApprovalStatus::Approved
                } else {
                    ApprovalStatus::Pending
                }
            }
        };
        Ok(self.status)
    }

    /// PENDING past its expiry → EXPIRED. True if it changed.
    pub fn expire_if_due(&mut self, now: DateTime<Utc>) -> bool {
        if self.status == ApprovalStatus::Pending && now >= self.expires_at {
            self.status = ApprovalStatus::Expired;
            true
        } else {
            false
        }
    }

    fn transition(&mut self, from: ApprovalStatus, to: ApprovalStatus) -> Result<(), PolicyError> {
        if self.status != from {
            return Err(PolicyError::Transition {
                from: self.status.as_str(),
                to: to.as_str(),
            });
        }
        self.status = to;
        Ok(())
    }

    /// APPROVED → EXECUTING (the TOCTOU re-check passed).
    pub fn start_execution(&mut self) -> Result<(), PolicyError> {
        self.transition(ApprovalStatus::Approved, ApprovalStatus::Executing)
    }

    /// APPROVED → VOIDED (the state changed since the dry-run, or a check now fails).
    pub fn void(&mut self) -> Result<(), PolicyError> {
        self.transition(ApprovalStatus::Approved, ApprovalStatus::Voided)
    }

    /// EXECUTING → EXECUTED | FAILED.
    pub fn finish(&mut self, succeeded: bool) -> Result<(), PolicyError> {
        let to = if succeeded {
            ApprovalStatus::Executed
        } else {
            ApprovalStatus::Failed
        };
        self.transition(ApprovalStatus::Executing, to)
    }
}

#[cfg(test)]
mod tests;
