//! What an LLM brain is told, within a token budget, and how its answer becomes a
//! [`Proposal`]. Everything in the prompt comes from the pseudonymised [`Investigation`].

use super::{Investigation, PROPOSAL_SCHEMA, Proposal, ProposalError};

/// Upper bound for one investigation's prompt (system + user), in estimated tokens.
pub const PROMPT_BUDGET_TOKENS: usize = 8_000;

/// A rough token count: ~4 characters per token for English and JSON.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// The two messages of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    pub fn estimated_tokens(&self) -> usize {
        estimate_tokens(&self.system) + estimate_tokens(&self.user)
    }
}

pub fn system_prompt() -> String {
    format!(
        "You are AWOOOI's incident investigator. Values such as [IP_1] or [EMAIL_2] are \
         pseudonyms: use them as they are. Think step by step in short lines, then end with \
         one JSON object, valid against this JSON Schema, and nothing after it:\n{PROPOSAL_SCHEMA}"
    )
}

/// Builds the prompt, dropping the least useful facts until it fits `budget` tokens: alert
/// descriptions first, then all but the nearest blast-radius entries, then the oldest half of
/// the alerts (repeatedly), then all but the top root causes.
pub fn build(input: &Investigation, budget: usize) -> Prompt {
    let system = system_prompt();
    let mut facts = input.clone();
    loop {
        let user = format!(
            "Investigate this incident and propose a remediation.\n{}",
            serde_json::to_string_pretty(&facts).expect("investigation serialises")
        );
        let prompt = Prompt {
            system: system.clone(),
            user,
        };
        if prompt.estimated_tokens() <= budget {
            return prompt;
        }
        if facts.alerts.iter().any(|a| a.description.is_some()) {
            for alert in &mut facts.alerts {
                alert.description = None;
            }
        } else if facts.blast_radius.len() > 5 {
            facts.blast_radius.truncate(5);
        } else if facts.alerts.len() > 1 {
            // Keep the newest half.
            let drop = facts.alerts.len() / 2;
            facts.alerts.drain(..drop);
        } else if facts.root_causes.len() > 3 {
            facts.root_causes.truncate(3);
        } else {
            // Nothing left to drop: cut the text itself.
            let mut prompt = prompt;
            let keep = budget.saturating_sub(estimate_tokens(&prompt.system)) * 4;
            prompt.user.truncate(prompt.user.floor_char_boundary(keep));
            return prompt;
        }
    }
}

/// The last JSON object in a model's answer, as a validated proposal.
pub fn parse_answer(text: &str) -> Result<Proposal, ProposalError> {
    let end = text
        .rfind('}')
        .ok_or_else(|| ProposalError::Invalid("no JSON object in the answer".into()))?;
    // Try each '{' from the right until one parses: the proposal is the last object.
    let mut starts: Vec<usize> = text[..end].match_indices('{').map(|(i, _)| i).collect();
    while let Some(start) = starts.pop() {
        if let Ok(proposal) = serde_json::from_str::<Proposal>(&text[start..=end]) {
            proposal.validate()?;
            return Ok(proposal);
        }
    }
    Err(ProposalError::Invalid(
        "the answer's JSON does not match the proposal schema".into(),
    ))
}

/// The message sent back once when the answer was unusable.
pub fn repair_request(error: &ProposalError) -> String {
    format!(
        "Your answer could not be used ({error}). Reply with only the JSON object, exactly in \
         the format described, nothing else."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brain::{AlertFacts, GraphFact};
    use crate::topology::ServiceKind;

    fn big_investigation(alerts: usize) -> Investigation {
        Investigation {
            incident_title: "t".into(),
            service: Some("frontend".into()),
            service_kind: Some(ServiceKind::Service),
            alerts: (0..alerts)
                .map(|i| AlertFacts {
                    name: format!("Alert{i}"),
                    severity: "CRITICAL".into(),
                    service: Some("frontend".into()),
                    description: Some("x".repeat(400)),
                    count: 1,
                })
                .collect(),
            root_causes: vec![GraphFact {
                service: "postgres-db".into(),
                kind: ServiceKind::Database,
                depth: 2,
            }],
            blast_radius: (0..50)
                .map(|i| GraphFact {
                    service: format!("svc-{i}"),
                    kind: ServiceKind::Service,
                    depth: 1,
                })
                .collect(),
            history: Vec::new(),
            workloads: None,
            diagnostics: Vec::new(),
        }
    }

    #[test]
    fn prompts_fit_the_budget_and_keep_the_root_cause() {
        for alerts in [1, 10, 200, 2_000] {
            let prompt = build(&big_investigation(alerts), PROMPT_BUDGET_TOKENS);
            assert!(
                prompt.estimated_tokens() <= PROMPT_BUDGET_TOKENS,
                "{alerts} alerts"
            );
            assert!(prompt.user.contains("postgres-db"), "{alerts} alerts");
        }
        let small = build(&big_investigation(1), PROMPT_BUDGET_TOKENS);
        assert!(
            small.user.contains(&"x".repeat(400)),
            "nothing dropped when it fits"
        );
    }

    #[test]
    fn answers_parse_from_the_last_json_object() {
        let answer = "Thinking {not json}.\nThe DB is out of connections.\n\
            {\"summary\": \"db\", \"root_cause\": \"postgres-db\", \"confidence\": 0.9, \
             \"actions\": [{\"kind\": \"restart_deployment\", \"target\": \"pgbouncer\", \
             \"namespace\": null, \"params\": {}, \"rationale\": \"leaked connections\"}]}";
        let proposal = parse_answer(answer).unwrap();
        assert_eq!(proposal.actions[0].target, "pgbouncer");
        for bad in [
            "no json at all",
            "{\"summary\": 3}",
            "{\"summary\": \"s\", \"root_cause\": null, \
            \"confidence\": 7, \"actions\": []}",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
        assert!(repair_request(&parse_answer("nope").unwrap_err()).contains("no JSON object"));
    }
}
