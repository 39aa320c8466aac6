//! The incident's on-call strip: acknowledge, assign (to me, to someone, or nobody), and the
//! comments with a box to add one. Each action calls its mutation and then `changed`, which
//! re-reads the page (the `incidentUpdates` subscription does too, for other viewers).

use leptos::prelude::*;

use crate::components::action::run_action;
use crate::components::status::short_time;
use crate::graphql::{self, incident};

/// What the strip shows of the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageFacts {
    pub id: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub assignee: Option<String>,
    /// Resolved or merged: nothing left to acknowledge.
    pub closed: bool,
    /// Where its escalation stands, if a policy took it: one line.
    pub escalation: Option<String>,
    pub comments: Vec<incident::IncidentIncidentComments>,
}

#[component]
pub fn TriagePanel(facts: TriageFacts, changed: Callback<()>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let assignee = RwSignal::new(facts.assignee.clone().unwrap_or_default());
    let body = RwSignal::new(String::new());
    let id = facts.id.clone();

    let done = move || changed.run(());
    let acknowledge = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            run_action(error, busy, done, move |t| async move {
                t.run::<graphql::AcknowledgeIncident>(graphql::acknowledge_incident::Variables {
                    id,
                })
                .await
                .map(drop)
            })
        }
    };
    let assign = {
        let id = id.clone();
        move |to: Option<String>| {
            let id = id.clone();
            run_action(error, busy, done, move |t| async move {
                t.run::<graphql::AssignIncident>(graphql::assign_incident::Variables {
                    id,
                    assignee: to,
                })
                .await
                .map(drop)
            })
        }
    };
    let assign_typed = {
        let assign = assign.clone();
        move |_| {
            let name = assignee.get_untracked().trim().to_owned();
            assign((!name.is_empty()).then_some(name))
        }
    };
    let comment = {
        let id = id.clone();
        move |_| {
            let text = body.get_untracked();
            if text.trim().is_empty() {
                error.set(Some("Write something first.".into()));
                return;
            }
            let id = id.clone();
            let done = move || {
                body.set(String::new());
                done();
            };
            run_action(error, busy, done, move |t| async move {
                t.run::<graphql::CommentOnIncident>(graphql::comment_on_incident::Variables {
                    id,
                    body: text,
                })
                .await
                .map(drop)
            })
        }
    };

    let ack_view = match (&facts.acknowledged_by, facts.closed) {
        (Some(by), _) => view! {
            <span data-testid="acknowledged">
                {format!("Acknowledged by {by}")}
                {facts.acknowledged_at.as_ref().map(|at| format!(" at {}", short_time(at)))}
            </span>
        }
        .into_any(),
        (None, true) => view! { <span class="muted">"Not acknowledged"</span> }.into_any(),
        (None, false) => view! {
            <button class="btn btn-primary" data-testid="acknowledge" on:click=acknowledge
                disabled=move || busy.get()>"Acknowledge"</button>
        }
        .into_any(),
    };
    let comments = facts.comments.clone();
    view! {
        <section class="panel triage" data-testid="triage">
            <div class="facts-row">
                {ack_view}
                <span data-testid="assignee">
                    {match &facts.assignee {
                        Some(who) => format!("Assigned to {who}"),
                        None => "Unassigned".to_owned(),
                    }}
                </span>
                <label class="inline">
                    <span class="sr-only">"Assign to"</span>
                    <input type="text" placeholder="user name" data-testid="assignee-input"
                        prop:value=move || assignee.get()
                        on:input=move |ev| assignee.set(event_target_value(&ev))/>
                </label>
                <button class="btn" data-testid="assign" on:click=assign_typed
                    disabled=move || busy.get()>"Assign"</button>
            </div>
            {facts.escalation.clone().map(|line| view! { <p class="muted small" data-testid="escalation">{line}</p> })}
            <h2>{format!("Comments ({})", comments.len())}</h2>
            <ol class="comments" data-testid="comments">
                {comments.into_iter().map(|c| view! {
                    <li data-testid="comment">
                        <p class="muted small">{format!("{} · {}", c.author, short_time(&c.created_at))}</p>
                        <p class="comment-body">{c.body}</p>
                    </li>
                }).collect_view()}
            </ol>
            <label>
                <span class="sr-only">"Comment"</span>
                <textarea rows="3" placeholder="Add a comment (Markdown)" data-testid="comment-input"
                    prop:value=move || body.get()
                    on:input=move |ev| body.set(event_target_value(&ev))></textarea>
            </label>
            <button class="btn" data-testid="comment-submit" on:click=comment
                disabled=move || busy.get()>"Comment"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </section>
    }
}

/// One line on an incident's escalation: the policy, and the next step or why it stopped.
pub fn escalation_line(e: &incident::IncidentIncidentEscalation) -> String {
    match e.status.as_str() {
        "ACTIVE" if e.next_step <= e.steps => format!(
            "Escalating by {}: step {} of {} at {}",
            e.policy,
            e.next_step,
            e.steps,
            short_time(&e.next_at)
        ),
        "ACTIVE" | "EXHAUSTED" => format!("Escalation {}: every step paged", e.policy),
        "ACKNOWLEDGED" => format!("Escalation {}: stopped at the acknowledgement", e.policy),
        _ => format!("Escalation {}: stopped at the resolution", e.policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation(status: &str, next_step: i64) -> incident::IncidentIncidentEscalation {
        incident::IncidentIncidentEscalation {
            policy: "critical".into(),
            next_step,
            steps: 3,
            next_at: "2026-12-06T03:05:00+00:00".into(),
            status: status.into(),
        }
    }

    #[test]
    fn the_escalation_line_says_the_next_step_or_why_it_stopped() {
        let line = escalation_line(&escalation("ACTIVE", 2));
        assert!(
            line.starts_with("Escalating by critical: step 2 of 3 at "),
            "{line}"
        );
        assert_eq!(
            escalation_line(&escalation("ACTIVE", 4)),
            "Escalation critical: every step paged"
        );
        assert_eq!(
            escalation_line(&escalation("ACKNOWLEDGED", 3)),
            "Escalation critical: stopped at the acknowledgement"
        );
        assert_eq!(
            escalation_line(&escalation("RESOLVED", 2)),
            "Escalation critical: stopped at the resolution"
        );
    }
}
