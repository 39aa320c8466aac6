//! The audit trail (newest first, with a chain check anyone can run) and the trust each action
//! pattern has earned.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::short_time;
use crate::graphql::{self, ApiError, RiskLevel};

#[component]
pub fn AuditPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let trail = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::AuditTrail>(graphql::audit_trail::Variables {
                        first: 200,
                        after: None,
                    })
                    .await
            }
        },
    );
    view! {
        <Title text="Audit"/>
        <h1 class="page-title">"Audit"</h1>
        <VerifyChain/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trail.await {
                    Ok(data) => view! {
                        <p class="muted">{format!("{} event(s); the newest 200 are shown.", data.audit_events.total_count)}</p>
                        <div class="panel table-wrap">
                            <table class="table">
                                <thead><tr><th>"#"</th><th>"When"</th><th>"Who"</th><th>"What"</th><th>"On"</th><th>"Details"</th><th>"Hash"</th></tr></thead>
                                <tbody>
                                    {data.audit_events.edges.into_iter().map(|edge| {
                                        let e = edge.node;
                                        view! {
                                            <tr data-testid="audit-row">
                                                <td class="mono">{e.id}</td>
                                                <td class="mono muted">{short_time(&e.at)}</td>
                                                <td>{e.actor}</td>
                                                <td class="mono">{e.action}</td>
                                                <td class="mono">{e.subject}</td>
                                                <td class="mono small">{e.details.to_string()}</td>
                                                <td class="mono muted small">{e.hash.get(..12).unwrap_or_default().to_owned()}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The page's island: checks the chain on request and says what it found.
#[island]
fn VerifyChain() -> impl IntoView {
    let verdict = RwSignal::new(None::<Result<String, String>>);
    let checking = RwSignal::new(false);
    let check_transport = graphql::use_transport().ok();
    let verify = move |_| {
        let Some(transport) = check_transport.clone() else {
            return;
        };
        checking.set(true);
        leptos::task::spawn_local(async move {
            let result = transport
                .run::<graphql::AuditCheck>(graphql::audit_check::Variables {})
                .await;
            checking.set(false);
            verdict.set(Some(match result {
                Ok(data) => match data.audit_verify.first_broken_id {
                    None => Ok(format!(
                        "Chain intact: {} event(s) checked.",
                        data.audit_verify.checked
                    )),
                    Some(id) => Err(format!(
                        "Chain broken at event {id}: it was edited, removed or reordered ({} checked).",
                        data.audit_verify.checked
                    )),
                },
                Err(e) => Err(e.to_string()),
            }));
        });
    };
    view! {
        <section class="panel">
            <p class="muted">"Append-only and hash-chained: every event carries the hash of the one before. Anyone can check it."</p>
            <button class="btn btn-primary" data-testid="verify" on:click=verify disabled=move || checking.get()>
                "Verify the chain"
            </button>
            {move || verdict.get().map(|v| match v {
                Ok(text) => view! { <p class="pill-ok" data-testid="verdict">{text}</p> }.into_any(),
                Err(text) => view! { <p class="form-error" role="alert" data-testid="verdict">{text}</p> }.into_any(),
            })}
        </section>
    }
}

/// How many more approvals until trust lowers the risk one level, if it can.
pub fn next_step(base_risk: RiskLevel, score: i64) -> String {
    let threshold = match base_risk {
        RiskLevel::High => Some((10, "MEDIUM")),
        RiskLevel::Medium => Some((5, "LOW")),
        _ => None,
    };
    match threshold {
        None if base_risk == RiskLevel::Critical => "CRITICAL never moves".into(),
        None => "already LOW".into(),
        Some((at, _)) if score >= at => format!("lowered one level (from {at})"),
        Some((at, to)) => format!("{} more approval(s) to count as {to}", at - score),
    }
}

#[component]
pub fn TrustPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let scores = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::TrustList>(graphql::trust_list::Variables {})
                    .await
                    .map(|data| data.trust_scores)
            }
        },
    );
    view! {
        <Title text="Trust"/>
        <h1 class="page-title">"Trust"</h1>
        <p class="muted">"Per action pattern: +1 for each approval, back to 0 on a reject. HIGH counts as MEDIUM from 10, MEDIUM as LOW from 5; one step at most; CRITICAL never moves."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let rows: Result<_, ApiError> = scores.await;
                match rows {
                    Ok(rows) if rows.is_empty() => view! { <p class="panel muted">"No pattern has been decided yet."</p> }.into_any(),
                    Ok(rows) => view! {
                        <div class="panel table-wrap">
                            <table class="table">
                                <thead><tr><th>"Pattern"</th><th>"Score"</th><th>"Risk"</th><th>"Next"</th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|t| {
                                        let (base, effective) = (t.base_risk.as_str(), t.effective_risk.as_str());
                                        let risk = if base == effective { base.to_owned() } else { format!("{base} → {effective}") };
                                        view! {
                                            <tr data-testid="trust-row">
                                                <td class="mono">{t.pattern}</td>
                                                <td class="mono">{t.score}</td>
                                                <td>{risk}</td>
                                                <td class="muted">{next_step(t.base_risk, t.score)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::next_step;
    use crate::graphql::RiskLevel;

    #[test]
    fn the_next_trust_step_is_spelled_out() {
        assert_eq!(
            next_step(RiskLevel::High, 9),
            "1 more approval(s) to count as MEDIUM"
        );
        assert_eq!(
            next_step(RiskLevel::High, 10),
            "lowered one level (from 10)"
        );
        assert_eq!(
            next_step(RiskLevel::Medium, 4),
            "1 more approval(s) to count as LOW"
        );
        assert_eq!(next_step(RiskLevel::Critical, 50), "CRITICAL never moves");
        assert_eq!(next_step(RiskLevel::Low, 0), "already LOW");
    }
}
