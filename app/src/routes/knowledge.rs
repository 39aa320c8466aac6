//! The knowledge base: search what past incidents taught, with links to the incident and the
//! approval each entry came from. A plain GET form, so it works before hydration too.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::status::short_time;
use crate::graphql::{self, FixOutcome};

#[component]
pub fn KnowledgePage() -> impl IntoView {
    let query = use_query_map();
    let text = move || query.read().get("q").unwrap_or_default();
    let transport = graphql::use_transport();
    let results = Resource::new(text, move |q| {
        let transport = transport.clone();
        async move {
            if q.trim().is_empty() {
                return Ok(None);
            }
            transport?
                .run::<graphql::Knowledge>(graphql::knowledge::Variables {
                    query: q,
                    first: 20,
                })
                .await
                .map(Some)
        }
    });
    view! {
        <Title text="Knowledge"/>
        <h1 class="page-title">"Knowledge"</h1>
        <section class="panel">
            <p class="muted">"What resolved incidents and executed fixes taught, ranked by the database's full-text search. The Brain reads the same entries before every analysis."</p>
            <form method="get" action="/knowledge" class="search-form">
                <input type="search" name="q" data-testid="knowledge-query" placeholder="service, alert name, root cause…" value=text aria-label="Search the knowledge base"/>
                <button class="btn btn-primary" type="submit">"Search"</button>
            </form>
        </section>
        <Suspense fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || Suspend::new(async move {
                match results.await {
                    Ok(None) => view! { <p class="muted">"Type what you are looking for."</p> }.into_any(),
                    Ok(Some(data)) if data.knowledge.is_empty() => {
                        view! { <p class="muted" data-testid="knowledge-empty">"Nothing learned matches."</p> }.into_any()
                    }
                    Ok(Some(data)) => view! {
                        <div class="panel table-wrap">
                            <table class="table">
                                <thead><tr><th>"Entry"</th><th>"Path"</th><th>"Fix"</th><th>"Root cause"</th><th>"Links"</th><th>"When"</th></tr></thead>
                                <tbody>
                                    {data.knowledge.into_iter().map(|e| {
                                        let incident = format!("/incidents/{}", e.incident_id);
                                        let approval = e.related_approval_id.clone().map(|a| (format!("/approvals/{a}"), format!("approval #{a}")));
                                        let outcome_class = if e.outcome == Some(FixOutcome::Worked) { "pill pill-ok" } else { "pill pill-failed" };
                                        view! {
                                            <tr data-testid="knowledge-row">
                                                <td><strong>{e.title}</strong><br/><span class="muted">{e.body}</span></td>
                                                <td><code>{e.path_type}</code></td>
                                                <td>{e.action.unwrap_or_default()}" "{e.outcome.map(|o| view! { <span class=outcome_class>{o.as_str()}</span> })}</td>
                                                <td>{e.root_cause.unwrap_or_default()}</td>
                                                <td>
                                                    <a href=incident>{format!("incident #{}", e.incident_id)}</a>
                                                    {approval.map(|(href, label)| view! { " · " <a href=href>{label}</a> })}
                                                </td>
                                                <td>{short_time(&e.created_at)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
