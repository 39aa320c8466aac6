//! The incident list: rendered on the server, then kept live in the browser (the table is an
//! island) by the `incidentUpdates` subscription — new incidents appear and changed ones update
//! without a reload. Filters (`?assignee=alice`, `?acknowledged=false`) are links, read by the
//! server and kept by the live rows too.

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
    pub assignee: Option<String>,
    pub acknowledged_by: Option<String>,
}

/// Which incidents the list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub assignee: Option<String>,
    pub acknowledged: Option<bool>,
}

impl Filter {
    /// From the page's query string (`assignee`, `acknowledged=true|false`).
    pub fn from_query(assignee: Option<String>, acknowledged: Option<String>) -> Filter {
        Filter {
            assignee: assignee.filter(|a| !a.trim().is_empty()),
            acknowledged: match acknowledged.as_deref() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        }
    }

    /// Whether `row` belongs in the list (a live update may move it out).
    pub fn keeps(&self, row: &IncidentRow) -> bool {
        self.assignee
            .as_ref()
            .is_none_or(|a| row.assignee.as_ref() == Some(a))
            && self
                .acknowledged
                .is_none_or(|a| row.acknowledged_by.is_some() == a)
    }
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
            assignee: n.assignee,
            acknowledged_by: n.acknowledged_by,
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
    let query = leptos_router::hooks::use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| Filter::from_query(q.get("assignee"), q.get("acknowledged")))
    });
    let me = Resource::new(|| (), {
        let transport = transport.clone();
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::Me>(graphql::me::Variables {})
                    .await
                    .map(|d| d.me.map(|m| m.username))
            }
        }
    });
    let list = Resource::new(
        move || filter.get(),
        move |filter| {
            let transport = transport.clone();
            async move {
                let variables = incidents::Variables {
                    status: None,
                    assignee: filter.assignee.clone(),
                    acknowledged: filter.acknowledged,
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
        <nav class="filters" data-testid="incident-filters">
            <a href="/incidents" class:active=move || filter.get() == Filter::default()>"All"</a>
            <a href="/incidents?acknowledged=false" data-testid="filter-unacknowledged"
                class:active=move || filter.get().acknowledged == Some(false)>"Unacknowledged"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    me.await.ok().flatten().map(|name| {
                        let href = format!("/incidents?assignee={name}");
                        view! {
                            <a href=href data-testid="filter-mine"
                                class:active=move || filter.get().assignee.as_deref() == Some(name.as_str())>
                                "Assigned to me"
                            </a>
                        }
                    })
                })}
            </Suspense>
        </nav>
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
                        view! { <IncidentTable initial=rows filter=filter.get_untracked()/> }.into_any()
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

/// The island of the page: the rows, kept live in the browser.
#[island]
fn IncidentTable(initial: Vec<IncidentRow>, filter: Filter) -> impl IntoView {
    let rows = RwSignal::new(initial);
    // Live rows are filtered in the browser; the server render is filtered by the query.
    #[cfg(not(feature = "hydrate"))]
    let _ = filter;

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe};
        let started = subscribe::<graphql::IncidentUpdates, _>(
            graphql::incident_updates::Variables {},
            move |event| {
                if let SubscriptionEvent::Data(data) = event {
                    let row = row_from!(data.incident_updates);
                    rows.update(|rows| {
                        if filter.keeps(&row) {
                            upsert(rows, row);
                        } else {
                            rows.retain(|r| r.id != row.id);
                        }
                    });
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
                            <th>"Owner"</th>
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
                                        <td data-testid="owner">
                                            {row.assignee.clone().unwrap_or_else(|| "—".into())}
                                            {match &row.acknowledged_by {
                                                Some(by) => view! { <span class="muted small">{format!(" · ack {by}")}</span> }.into_any(),
                                                None => view! { <span class="pill st-open small">" unacked"</span> }.into_any(),
                                            }}
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
            assignee: None,
            acknowledged_by: None,
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

    #[test]
    fn filters_read_the_query_and_keep_only_matching_rows() {
        let filter = Filter::from_query(Some("alice".into()), Some("false".into()));
        let mut r = row("1", IncidentStatus::Open);
        assert!(!filter.keeps(&r));
        r.assignee = Some("alice".into());
        assert!(filter.keeps(&r));
        r.acknowledged_by = Some("sam".into());
        assert!(!filter.keeps(&r));
        assert_eq!(
            Filter::from_query(Some(" ".into()), Some("maybe".into())),
            Filter::default()
        );
        assert!(Filter::default().keeps(&r));
    }
}
