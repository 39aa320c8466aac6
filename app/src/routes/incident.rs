//! One incident: what fired, how often, with which (pseudonymised) labels and annotations.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::approval::{Card, upsert};
use crate::components::graph::TopologyGraph;
use crate::components::status::{Pill, short_time};
use crate::components::terminal::{Line, ThinkingTerminal};
use crate::components::triage::{TriageFacts, TriagePanel};
use crate::graphql::{self, incident};
use crate::routes::approvals::{ApprovalBoard, Scope, load_incident};

#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let transport = graphql::use_transport();
    let detail = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        move |id| {
            let transport = transport.clone();
            async move {
                let transport = transport?;
                let found = transport
                    .run::<graphql::Incident>(incident::Variables { id: id.clone() })
                    .await?;
                let cards = load_incident(Ok(transport), id.clone()).await;
                Ok::<_, graphql::ApiError>((id, found, cards))
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok((id, initial, cards)) => match &initial.incident {
                        Some(found) => view! {
                            <Title text=found.title.clone()/>
                            <LiveIncident id initial cards/>
                        }
                        .into_any(),
                        None => view! {
                            <Title text="Not found"/>
                            <p class="panel">"No such incident."</p>
                        }
                        .into_any(),
                    },
                    Err(error) => {
                        view! { <p class="form-error" role="alert">{error.to_string()}</p> }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The page's island: the incident and its approvals (`cards`) as the server read them, then
/// re-read in the browser whenever they change.
#[island]
fn LiveIncident(
    id: String,
    initial: incident::ResponseData,
    cards: Result<Vec<Card>, graphql::ApiError>,
) -> impl IntoView {
    // Bumped when the incident changes, to re-read it (analysis, status, alerts).
    let version = RwSignal::new(0u32);
    // The proposal cards shown, and why they could not be read, if they could not.
    let board = RwSignal::new(Vec::<Card>::new());
    let board_error = RwSignal::new(None::<String>);
    let family = initial.incident.as_ref().map(family_of).unwrap_or_default();
    take_cards(board, board_error, &family, cards);
    let detail = RwSignal::new(initial);
    // What "silence alerts like this" said, by alert: the detail below is rendered again on
    // every change of the incident, and an answer must outlive that.
    provide_context(Silenced(RwSignal::new(Vec::new())));

    // One subscription for the page's lifetime: on connecting, re-read once (covering changes
    // between the server render and now); afterwards, re-read on every update of this incident.
    #[cfg(feature = "hydrate")]
    {
        use crate::components::approval::answers;
        use crate::graphql::ws::{SubscriptionEvent, subscribe, subscribe_as};
        let current = id.clone();
        let started = subscribe::<graphql::IncidentUpdates, _>(
            graphql::incident_updates::Variables {},
            move |event| match event {
                SubscriptionEvent::Connected => version.update(|v| *v += 1),
                SubscriptionEvent::Data(data) if data.incident_updates.id == current => {
                    version.update(|v| *v += 1)
                }
                _ => {}
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
        // The timeline records every signature and execution: re-read on this incident's
        // approval updates too.
        let current = id.clone();
        let started = subscribe_as::<graphql::ApprovalLive, answers::Live, _>(
            graphql::approval_live::Variables {},
            move |event| {
                if let SubscriptionEvent::Data(data) = event
                    && data
                        .approval_updates
                        .incident
                        .is_some_and(|i| i.id == current)
                {
                    version.update(|v| *v += 1);
                }
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
        // Each bump re-reads; an answer that a later bump overtook is dropped.
        let transport = graphql::use_transport();
        Effect::new(move |_| {
            let wanted = version.get();
            if wanted == 0 {
                return;
            }
            let (Ok(transport), id) = (transport.clone(), id.clone()) else {
                return;
            };
            leptos::task::spawn_local(async move {
                let read = transport
                    .run::<graphql::Incident>(incident::Variables { id: id.clone() })
                    .await;
                let cards = load_incident(Ok(transport), id).await;
                if let Ok(fresh) = read
                    && version.get_untracked() == wanted
                {
                    let family = fresh.incident.as_ref().map(family_of).unwrap_or_default();
                    take_cards(board, board_error, &family, cards);
                    detail.set(fresh);
                }
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
    move || {
        let incident::ResponseData { incident, topology } = detail.get();
        match incident {
            Some(found) => {
                view! { <IncidentDetail incident=found topology board board_error version/> }
                    .into_any()
            }
            None => view! { <p class="panel">"No such incident."</p> }.into_any(),
        }
    }
}

fn entries(map: &serde_json::Value) -> Vec<(String, String)> {
    map.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[component]
fn IncidentDetail(
    incident: incident::IncidentIncident,
    topology: incident::IncidentTopology,
    /// The proposal cards shown, owned by the page: they outlive this view's re-renders.
    board: RwSignal<Vec<Card>>,
    /// Why the cards could not be read the last time, if they could not.
    board_error: RwSignal<Option<String>>,
    /// Bumped to re-read the incident.
    version: RwSignal<u32>,
) -> impl IntoView {
    let triage = TriageFacts {
        id: incident.id.clone(),
        acknowledged_by: incident.acknowledged_by.clone(),
        acknowledged_at: incident.acknowledged_at.clone(),
        assignee: incident.assignee.clone(),
        closed: matches!(
            incident.status,
            graphql::IncidentStatus::Resolved | graphql::IncidentStatus::Merged
        ),
        comments: incident.comments.clone(),
        escalation: incident
            .escalation
            .as_ref()
            .map(crate::components::triage::escalation_line),
    };
    let triage = view! {
        <TriagePanel facts=triage changed=Callback::new(move |()| version.update(|v| *v += 1))/>
    }
    .into_any();
    let family = family_of(&incident);
    let alerts = incident.alerts;
    let lines: Vec<Line> = incident
        .thinking
        .into_iter()
        .map(|t| Line {
            seq: t.seq,
            kind: t.kind,
            text: t.text,
        })
        .collect();
    let analysis = incident.analysis;
    let root_causes: Vec<String> = analysis
        .as_ref()
        .map(|a| a.root_causes.iter().map(|c| c.service.clone()).collect())
        .unwrap_or_default();
    let blast: Vec<String> = analysis
        .as_ref()
        .map(|a| {
            a.blast_radius
                .affected
                .iter()
                .map(|s| s.service.clone())
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = topology.services.iter().map(|s| s.name.clone()).collect();
    let unhealthy: Vec<String> = topology
        .services
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.name.clone())
        .collect();
    let edges: Vec<(String, String)> = topology.edges.into_iter().map(|e| (e.from, e.to)).collect();
    let edges_for_paths = edges.clone();
    let in_topology = incident.service.as_ref().is_some_and(|s| names.contains(s));
    let graph = in_topology.then(|| {
        view! {
            <section class="panel">
                <h2>"Topology"</h2>
                <TopologyGraph names edges focus=incident.service.clone().unwrap_or_default()
                    root_causes=root_causes.clone() blast=blast.clone() unhealthy/>
                <p class="legend muted small">
                    <span class="swatch root-cause"></span>"root cause "
                    <span class="swatch blast"></span>"blast radius "
                    <span class="swatch focus"></span>"alerted service"
                </p>
            </section>
        }
    });
    let analysis_view = analysis.map(|a| analysis_panel(a, &root_causes, &blast).into_any());
    let approvals = approvals_panel(&incident.approvals).into_any();
    // Erased: the page's view type would otherwise nest too deep for the compiler.
    let act =
        view! { <ActOnIt id=incident.id.clone() family cards=board error=board_error/> }.into_any();
    let similar = similar_panel(&incident.similar_incidents);
    let timeline = timeline_panel(&incident.id, incident.timeline).into_any();
    let incident_id = incident.id.clone();
    view! {
        <p class="crumbs"><a href="/incidents">"Incidents"</a>" / #"{incident.id.clone()}</p>
        <h1 class="page-title" data-testid="incident-title">{incident.title.clone()}</h1>
        <div class="facts-row">
            <Pill value=incident.severity.as_str() prefix="sev"/>
            <Pill value=incident.status.as_str() prefix="st"/>
            <span class="mono">{incident.service.clone().unwrap_or_else(|| "no service".into())}</span>
            <span class="muted mono">"opened "{short_time(&incident.created_at)}</span>
            {incident.resolved_at.map(|t| view! { <span class="muted mono">"resolved "{short_time(&t)}</span> })}
            {incident.merged_into.clone().map(|into| view! {
                <a href=format!("/incidents/{into}") data-testid="merged-into">{format!("merged into #{into}")}</a>
            })}
            {(!incident.merged_from.is_empty()).then(|| view! {
                <span class="muted" data-testid="merged-from">"absorbed "
                    {incident.merged_from.iter().map(|id| view! {
                        <a href=format!("/incidents/{id}")>{format!("#{id} ")}</a>
                    }).collect_view()}
                </span>
            })}
        </div>
        {triage}
        {act}
        <div class="grid">
            <section class="panel">
                <h2>"Thinking"</h2>
                <ThinkingTerminal incident_id initial=lines/>
            </section>
            {analysis_view}
            {approvals}
            {similar}
        </div>
        {timeline}
        {graph}
        <h2>{format!("Alerts ({} absorbed)", incident.alert_count)}</h2>
        {alert_groups(alerts, incident.service.as_deref(), &edges_for_paths)}
    }
}

/// The incident and those merged into it: whose approvals its page shows.
fn family_of(incident: &incident::IncidentIncident) -> Vec<String> {
    std::iter::once(incident.id.clone())
        .chain(incident.merged_from.iter().cloned())
        .collect()
}

/// Takes a read of the incident's approvals into the cards shown: the open ones join, those
/// already shown are refreshed, cards of another incident leave. A failed read keeps the cards
/// and says why.
fn take_cards(
    board: RwSignal<Vec<Card>>,
    error: RwSignal<Option<String>>,
    family: &[String],
    read: Result<Vec<Card>, graphql::ApiError>,
) {
    match read {
        Ok(fresh) => {
            error.set(None);
            board.update(|shown| merge_cards(shown, family, fresh));
        }
        Err(e) => error.set(Some(e.to_string())),
    }
}

fn merge_cards(shown: &mut Vec<Card>, family: &[String], fresh: Vec<Card>) {
    shown.retain(|c| c.incident.as_ref().is_some_and(|i| family.contains(&i.id)));
    for card in fresh {
        if card.is_open() || shown.iter().any(|c| c.id == card.id) {
            upsert(shown, card);
        }
    }
}

/// The proposals that wait (or run) as live ApprovalCards: sign or reject here.
#[component]
fn ActOnIt(
    id: String,
    family: Vec<String>,
    cards: RwSignal<Vec<Card>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let scope = Scope::Incident { id, family };
    view! {
        <section class="act" data-testid="incident-act">
            <h2>"Proposed fix"</h2>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            <ApprovalBoard cards scope/>
        </section>
    }
}

/// The alerts, grouped by service along their path to the root cause.
fn alert_groups(
    alerts: Vec<incident::IncidentIncidentAlerts>,
    service: Option<&str>,
    edges: &[(String, String)],
) -> impl IntoView + use<> {
    view! {
        <div class="alert-list">
            {by_service(alerts, service, edges)
                .into_iter()
                .map(|(service, path, alerts)| view! {
                    <section class="alert-group" data-testid="alert-group">
                        <h3 class="mono" data-testid="alert-path">{match &path {
                            Some(p) if p.len() > 1 => p.join(" → "),
                            Some(_) => format!("{service} (root cause)"),
                            None => service.clone(),
                        }}</h3>
                        {alerts.into_iter().map(alert_card).collect_view()}
                    </section>
                })
                .collect_view()}
        </div>
    }
}

/// What the analysis found and proposed.
fn analysis_panel(
    a: incident::IncidentIncidentAnalysis,
    root_causes: &[String],
    blast: &[String],
) -> impl IntoView + use<> {
    let actions = a
        .proposal
        .map(|p| p.actions)
        .unwrap_or_default()
        .into_iter()
        .map(|act| {
            view! {
                <li><span class="mono">{act.kind}" "{act.target}</span>" — "<span class="muted">{act.rationale}</span></li>
            }
        })
        .collect_view();
    let causes = if root_causes.is_empty() {
        "none found".to_owned()
    } else {
        root_causes.join(", ")
    };
    let radius = if blast.is_empty() {
        "nothing else".to_owned()
    } else {
        blast.join(", ")
    };
    let workloads = (!a.workloads.is_empty()).then(|| {
        let items = a
            .workloads
            .iter()
            .map(|w| {
                let trouble = if w.crash_looping {
                    format!(", crash-looping, {} restart(s)", w.restarts)
                } else if w.restarts > 0 {
                    format!(", {} restart(s)", w.restarts)
                } else {
                    String::new()
                };
                let class = if w.ready < w.replicas {
                    "mono unhealthy"
                } else {
                    "mono"
                };
                view! {
                    <li data-testid="workload" class=class>
                        {format!("{} {}/{} ready{trouble}", w.name, w.ready, w.replicas)}
                    </li>
                }
            })
            .collect_view();
        view! {
            <dt>"Workloads"</dt>
            <dd><ul class="plain" data-testid="workloads">{items}</ul></dd>
        }
    });
    view! {
        <section class="panel" data-testid="analysis">
            <h2>"Analysis"</h2>
            {a.trigger.map(|why| view! {
                <p class="muted small" data-testid="analysis-trigger">
                    {format!("Run {}: {why}", a.runs.max(1))}
                </p>
            })}
            <p data-testid="analysis-summary">{a.summary}</p>
            <dl class="facts">
                <dt>"Root causes"</dt>
                <dd data-testid="root-causes">{causes}</dd>
                <dt>"Blast radius"</dt>
                <dd>{radius}</dd>
                {workloads}
                <dt>"Confidence"</dt>
                <dd>{format!("{:.0} % ({})", a.confidence * 100.0, a.brain)}</dd>
            </dl>
            <h3>"Proposed"</h3>
            <ul class="actions">{actions}</ul>
        </section>
    }
}

/// The incident's approvals, each with its risk and status.
fn approvals_panel(approvals: &[incident::IncidentIncidentApprovals]) -> impl IntoView + use<> {
    (!approvals.is_empty()).then(|| {
        let items = approvals
            .iter()
            .map(|a| {
                let risk = a.effective_risk.as_str();
                view! {
                    <li data-testid="incident-approval">
                        <a class="mono" href=format!("/approvals/{}", a.id)>{format!("#{} {} {}", a.id, a.action.kind, a.action.target)}</a>
                        " "<span class=format!("pill risk-{}", risk.to_ascii_lowercase())>{risk}</span>
                        " "<Pill value=a.status.as_str() prefix="ap"/>
                        {a.superseded_by.as_ref().map(|r| view! {
                            " "<span class="muted" data-testid="replaced-by">"replaced by "
                                <a href=format!("/approvals/{}", r.id)>{format!("#{}", r.id)}</a>
                            </span>
                        })}
                    </li>
                }
            })
            .collect_view();
        view! {
            <section class="panel" data-testid="incident-approvals">
                <h2>"Approvals"</h2>
                <ul class="actions">{items}</ul>
            </section>
        }
    })
}

/// Past incidents like this one, and how their fix went.
fn similar_panel(similar: &[incident::IncidentIncidentSimilarIncidents]) -> impl IntoView + use<> {
    (!similar.is_empty()).then(|| {
        let items = similar
            .iter()
            .map(|p| {
                let href = format!("/incidents/{}", p.incident_id);
                let fix = match (&p.action, p.worked) {
                    (Some(a), Some(true)) => format!("{a}: worked"),
                    (Some(a), Some(false)) => format!("{a}: failed"),
                    _ => "no fix recorded".to_owned(),
                };
                view! {
                    <li data-testid="similar-incident">
                        <a href=href>{format!("#{} {}", p.incident_id, p.title)}</a>
                        <span class="muted">" — "{fix}</span>
                    </li>
                }
            })
            .collect_view();
        view! {
            <section class="panel" data-testid="similar-incidents">
                <h2>"Similar past incidents"</h2>
                <ul class="actions">{items}</ul>
            </section>
        }
    })
}

/// One timeline row: when, what, who, the (pseudonymised) detail.
fn timeline_row(
    at: &str,
    kind: graphql::TimelineKind,
    actor: String,
    text: String,
) -> impl IntoView + use<> {
    view! {
        <tr data-testid="timeline-entry">
            <td class="mono small">{short_time(at)}</td>
            <td><Pill value=kind.as_str() prefix="tl"/></td>
            <td class="mono small">{actor}</td>
            <td>{text}</td>
        </tr>
    }
}

/// Everything that happened to the incident, oldest first (re-read with the page while the
/// incident or its approvals change), the next pages on demand, and the link to its
/// postmortem.
fn timeline_panel(id: &str, timeline: incident::IncidentIncidentTimeline) -> impl IntoView + use<> {
    let total = timeline.total_count;
    let after = timeline
        .page_info
        .has_next_page
        .then_some(timeline.page_info.end_cursor)
        .flatten();
    let rows = timeline
        .edges
        .into_iter()
        .map(|edge| {
            let e = edge.node;
            timeline_row(&e.at, e.kind, e.actor, e.text)
        })
        .collect_view();
    view! {
        <section class="panel" data-testid="timeline">
            <h2>{format!("Timeline ({total})")}</h2>
            <p>
                <a href=format!("/api/v1/incidents/{id}/postmortem.md") data-testid="postmortem-link"
                    download=format!("incident-{id}-postmortem.md")>"Postmortem (Markdown)"</a>
            </p>
            <table class="table">
                <thead><tr><th>"At"</th><th>"What"</th><th>"Who"</th><th>"Detail"</th></tr></thead>
                <tbody>{rows}</tbody>
                <TimelineMore id=id.to_owned() after/>
            </table>
        </section>
    }
}

/// The timeline's later pages, loaded by a button while there are more.
#[component]
fn TimelineMore(id: String, after: Option<String>) -> impl IntoView {
    let transport = graphql::use_transport().ok();
    let cursor = RwSignal::new(after);
    let rows = RwSignal::new(Vec::<(String, graphql::TimelineKind, String, String)>::new());
    let failed = RwSignal::new(None::<String>);
    let more = move |_| {
        let (Some(transport), Some(after)) = (transport.clone(), cursor.get_untracked()) else {
            return;
        };
        let id = id.clone();
        leptos::task::spawn_local(async move {
            let variables = graphql::incident_timeline::Variables {
                id,
                first: 100,
                after: Some(after),
            };
            match transport.run::<graphql::IncidentTimeline>(variables).await {
                Ok(data) => {
                    let Some(found) = data.incident else {
                        return;
                    };
                    let page = found.timeline;
                    rows.update(|r| {
                        r.extend(
                            page.edges
                                .into_iter()
                                .map(|e| (e.node.at, e.node.kind, e.node.actor, e.node.text)),
                        )
                    });
                    cursor.set(
                        page.page_info
                            .has_next_page
                            .then_some(page.page_info.end_cursor)
                            .flatten(),
                    );
                }
                Err(e) => failed.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <tbody>
            {move || rows.get().into_iter().map(|(at, kind, actor, text)| timeline_row(&at, kind, actor, text)).collect_view()}
        </tbody>
        <caption class="timeline-more">
            {move || cursor.get().is_some().then(|| view! {
                <button class="btn" data-testid="timeline-more" on:click=more.clone()>"Show more"</button>
            })}
            {move || failed.get().map(|e| view! { <span class="form-error" role="alert">{e}</span> })}
        </caption>
    }
}

/// Alerts by service, each service with its path down the topology to the root cause:
/// the root first, then the nearest to it; services with no path to it last.
pub fn by_service<A>(
    alerts: Vec<A>,
    root: Option<&str>,
    edges: &[(String, String)],
) -> Vec<(String, Option<Vec<String>>, Vec<A>)>
where
    A: HasService,
{
    let mut groups: Vec<(String, Option<Vec<String>>, Vec<A>)> = Vec::new();
    for alert in alerts {
        let service = alert.service().unwrap_or("—").to_owned();
        match groups.iter_mut().find(|g| g.0 == service) {
            Some(group) => group.2.push(alert),
            None => {
                let path = root.and_then(|r| path_to(edges, &service, r));
                groups.push((service, path, vec![alert]));
            }
        }
    }
    groups
        .sort_by_key(|(name, path, _)| (path.as_ref().map_or(usize::MAX, Vec::len), name.clone()));
    groups
}

/// An alert that names its service.
pub trait HasService {
    fn service(&self) -> Option<&str>;
}

impl HasService for incident::IncidentIncidentAlerts {
    fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }
}

/// The shortest dependency path from `from` down to `to` (`from` first), if any.
pub fn path_to(edges: &[(String, String)], from: &str, to: &str) -> Option<Vec<String>> {
    let mut previous: std::collections::HashMap<&str, &str> = Default::default();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen = std::collections::HashSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![to.to_owned()];
            let mut step = to;
            while let Some(p) = previous.get(step) {
                path.push((*p).to_owned());
                step = p;
            }
            path.reverse();
            return Some(path);
        }
        for (a, b) in edges {
            if a == at && seen.insert(b.as_str()) {
                previous.insert(b.as_str(), at);
                queue.push_back(b.as_str());
            }
        }
    }
    None
}

fn alert_card(alert: incident::IncidentIncidentAlerts) -> impl IntoView {
    let labels = entries(&alert.labels);
    let annotations = entries(&alert.annotations);
    view! {
        <article class="panel alert-card" data-testid="alert">
            <header class="alert-head">
                <Pill value=alert.severity.as_str() prefix="sev"/>
                <strong>{alert.name.clone()}</strong>
                <Pill value=alert.status.as_str() prefix="st"/>
                <span class="muted">"×"{alert.count}</span>
                <span class="muted mono">{alert.source.clone()}</span>
            </header>
            <dl class="facts">
                {annotations
                    .into_iter()
                    .map(|(k, v)| view! { <dt>{k}</dt><dd class="annotation">{v}</dd> })
                    .collect_view()}
            </dl>
            <ul class="chips">
                {labels
                    .into_iter()
                    .map(|(k, v)| view! { <li class="chip mono">{k}"="{v}</li> })
                    .collect_view()}
            </ul>
            <p class="muted mono small">
                "last seen "{short_time(&alert.last_seen)}
            </p>
            <SilenceLikeThis alert_id=alert.id.clone()/>
        </article>
    }
}

/// The answers of "silence alerts like this" on the incident page, by alert id.
#[derive(Clone, Copy)]
struct Silenced(RwSignal<Vec<(String, Result<String, String>)>>);

/// "Silence alerts like this for 2 h": a silence on this alert's name and labels.
#[component]
fn SilenceLikeThis(alert_id: String) -> impl IntoView {
    let transport = graphql::use_transport().ok();
    let answers = use_context::<Silenced>()
        .unwrap_or_else(|| Silenced(RwSignal::new(Vec::new())))
        .0;
    let said = {
        let alert_id = alert_id.clone();
        move || {
            answers.with(|answers| {
                answers
                    .iter()
                    .find(|(id, _)| *id == alert_id)
                    .map(|(_, said)| said.clone())
            })
        }
    };
    let silence = move |_| {
        let Some(transport) = transport.clone() else {
            return;
        };
        let alert_id = alert_id.clone();
        leptos::task::spawn_local(async move {
            let result = transport
                .run::<graphql::SilenceAlert>(graphql::silence_alert::Variables {
                    alert_id: alert_id.clone(),
                    duration_minutes: 120,
                    comment: "silenced from the incident page".into(),
                })
                .await;
            let said = match result {
                Ok(data) => Ok(format!(
                    "Silenced for 2 h (silence #{}).",
                    data.silence_alert.id
                )),
                Err(e) => Err(e.message),
            };
            answers.update(|answers| {
                answers.retain(|(id, _)| *id != alert_id);
                answers.push((alert_id, said));
            });
        });
    };
    view! {
        <p class="small">
            <button class="btn btn-small btn-ghost" data-testid="silence-like-this" on:click=silence>
                "Silence alerts like this for 2 h"
            </button>
            {move || said().map(|r| match r {
                Ok(text) => view! { <span class="muted" data-testid="silenced">" "{text}" "<a href="/silences">"Silences"</a></span> }.into_any(),
                Err(e) => view! { <span class="form-error" role="alert">{e}</span> }.into_any(),
            })}
        </p>
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn a_read_of_approvals_adds_open_cards_refreshes_shown_ones_and_drops_other_incidents() {
        use crate::components::approval::{CardIncident, tests::card};
        use crate::graphql::ApprovalStatus::{Executed, Pending, Rejected};
        let of = |id: &str, status, incident: &str| {
            let mut c = card(id, status);
            c.incident = Some(CardIncident {
                id: incident.into(),
                title: String::new(),
            });
            c
        };
        // Incident 1 absorbed incident 2; card 4 belongs to incident 9.
        let family = ["1".to_owned(), "2".to_owned()];
        let mut shown = vec![of("5", Pending, "1"), of("4", Pending, "9")];
        let fresh = vec![
            of("5", Executed, "1"),
            of("6", Pending, "2"),
            of("7", Rejected, "1"),
        ];
        merge_cards(&mut shown, &family, fresh);
        let seen: Vec<_> = shown.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(seen, [("6", Pending), ("5", Executed)]);
    }

    struct A(&'static str, u32);
    impl HasService for A {
        fn service(&self) -> Option<&str> {
            Some(self.0)
        }
    }

    fn edges() -> Vec<(String, String)> {
        [
            ("ingress", "frontend"),
            ("frontend", "order-api"),
            ("frontend", "auth-service"),
            ("order-api", "postgres-db"),
            ("auth-service", "postgres-db"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn alerts_are_grouped_by_service_along_the_path_to_the_root() {
        let alerts = vec![
            A("ingress", 1),
            A("postgres-db", 2),
            A("order-api", 3),
            A("ingress", 4),
            A("billing", 5),
        ];
        let groups = by_service(alerts, Some("postgres-db"), &edges());
        let shown: Vec<(String, Option<String>, Vec<u32>)> = groups
            .into_iter()
            .map(|(s, p, a)| (s, p.map(|p| p.join(" → ")), a.iter().map(|a| a.1).collect()))
            .collect();
        assert_eq!(
            shown,
            [
                ("postgres-db".into(), Some("postgres-db".into()), vec![2]),
                (
                    "order-api".into(),
                    Some("order-api → postgres-db".into()),
                    vec![3]
                ),
                (
                    "ingress".into(),
                    Some("ingress → frontend → order-api → postgres-db".into()),
                    vec![1, 4]
                ),
                ("billing".into(), None, vec![5]),
            ]
        );
    }
}
