//! The incident list: rendered on the server, then kept live by the `incidentUpdates`
//! subscription — new incidents appear and changed ones update without a reload.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::status::{Pill, short_time};
use crate::graphql::{self, IncidentStatus, Severity, incidents};

/// One line of the list, from the query or from a live update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncidentRow {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub service: Option<String>,
    pub created_at: String,
    /// Alerts absorbed (repeats included).
    pub alert_count: i64,
    pub merged_into: Option<String>,
}

/// The same fields come from the list query and from the live subscription, as two generated
/// types; this turns either into a row.
macro_rules! row_from {
    ($n:expr) => {{
        let n = $n;
        IncidentRow {
            id: n.id,
            title: n.title,
            severity: n.severity,
            status: n.status,
            service: n.service,
            created_at: n.created_at,
            alert_count: n.alert_count,
            merged_into: n.merged_into,
        }
    }};
}

/// Inserts or replaces `row`, keeping newest (highest id) first.
pub fn upsert(rows: &mut Vec<IncidentRow>, row: IncidentRow) {
    match rows.iter_mut().find(|r| r.id == row.id) {
        Some(existing) => *existing = row,
        None => rows.push(row),
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.id.parse::<i64>().unwrap_or(0)));
}

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let list = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                let variables = incidents::Variables {
                    status: None,
                    first: 50,
                    after: None,
                };
                transport?.run::<graphql::Incidents>(variables).await
            }
        },
    );
    view! {
        <Title text="Incidents"/>
        <h1 class="page-title">"Incidents"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(data) => {
                        let rows = data
                            .incidents
                            .edges
                            .into_iter()
                            .map(|edge| row_from!(edge.node))
                            .collect::<Vec<_>>();
                        view! { <IncidentTable initial=rows/> }.into_any()
                    }
                    Err(error) => {
                        view! { <p class="form-error" role="alert">{error.to_string()}</p> }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn IncidentTable(initial: Vec<IncidentRow>) -> impl IntoView {
    let rows = RwSignal::new(initial);

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe};
        let started = subscribe::<graphql::IncidentUpdates, _>(
            graphql::incident_updates::Variables {},
            move |event| {
                if let SubscriptionEvent::Data(data) = event {
                    let row = row_from!(data.incident_updates);
                    rows.update(|rows| upsert(rows, row));
                }
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
    }

    view! {
        <Show
            when=move || !rows.read().is_empty()
            fallback=|| view! { <p class="panel muted" data-testid="no-incidents">"No incidents. A quiet night."</p> }
        >
            <div class="panel table-wrap">
                <table class="table">
                    <thead>
                        <tr>
                            <th>"Severity"</th>
                            <th>"Incident"</th>
                            <th>"Service"</th>
                            <th>"Status"</th>
                            <th>"Alerts"</th>
                            <th>"Opened"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || rows.get()
                            key=|r| r.clone()
                            children=move |row| {
                                view! {
                                    <tr data-testid="incident-row">
                                        <td><Pill value=row.severity.as_str() prefix="sev"/></td>
                                        <td><a href=format!("/incidents/{}", row.id)>{row.title.clone()}</a></td>
                                        <td class="mono">{row.service.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td>
                                            <Pill value=row.status.as_str() prefix="st"/>
                                            {row.merged_into.clone().map(|into| view! {
                                                " " <a href=format!("/incidents/{into}") data-testid="merged-into">{format!("into #{into}")}</a>
                                            })}
                                        </td>
                                        <td class="mono" data-testid="alert-count">{row.alert_count}</td>
                                        <td class="mono muted">{short_time(&row.created_at)}</td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: IncidentStatus) -> IncidentRow {
        IncidentRow {
            id: id.into(),
            title: "t".into(),
            severity: Severity::Critical,
            status,
            service: None,
            created_at: String::new(),
            alert_count: 1,
            merged_into: None,
        }
    }

    #[test]
    fn live_updates_insert_newest_first_and_replace_in_place() {
        use IncidentStatus::{Open, Resolved};
        let mut rows = vec![row("2", Open), row("1", Open)];
        upsert(&mut rows, row("3", Open));
        upsert(&mut rows, row("1", Resolved));
        let ids: Vec<_> = rows.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(ids, [("3", Open), ("2", Open), ("1", Resolved)]);
    }
}
