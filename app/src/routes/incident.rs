//! One incident: what fired, how often, with which (pseudonymised) labels and annotations.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::status::{Pill, short_time};
use crate::graphql::{self, incident};

#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let transport = graphql::use_transport();
    let detail = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        move |id| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::Incident>(incident::Variables { id })
                    .await
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(incident::ResponseData { incident: Some(found) }) => {
                        view! { <IncidentDetail incident=found/> }.into_any()
                    }
                    Ok(_) => view! {
                        <Title text="Not found"/>
                        <p class="panel">"No such incident."</p>
                    }
                    .into_any(),
                    Err(error) => {
                        view! { <p class="form-error" role="alert">{error.to_string()}</p> }
                            .into_any()
                    }
                }
            })}
        </Suspense>
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
fn IncidentDetail(incident: incident::IncidentIncident) -> impl IntoView {
    let alerts = incident.alerts;
    view! {
        <Title text=incident.title.clone()/>
        <p class="crumbs"><a href="/incidents">"Incidents"</a>" / #"{incident.id.clone()}</p>
        <h1 class="page-title" data-testid="incident-title">{incident.title.clone()}</h1>
        <div class="facts-row">
            <Pill value=format!("{:?}", incident.severity) prefix="sev"/>
            <Pill value=format!("{:?}", incident.status) prefix="st"/>
            <span class="mono">{incident.service.clone().unwrap_or_else(|| "no service".into())}</span>
            <span class="muted mono">"opened "{short_time(&incident.created_at)}</span>
            {incident.resolved_at.map(|t| view! { <span class="muted mono">"resolved "{short_time(&t)}</span> })}
        </div>
        <h2>"Alerts"</h2>
        <div class="alert-list">
            {alerts
                .into_iter()
                .map(|alert| {
                    let labels = entries(&alert.labels);
                    let annotations = entries(&alert.annotations);
                    view! {
                        <article class="panel alert-card" data-testid="alert">
                            <header class="alert-head">
                                <Pill value=format!("{:?}", alert.severity) prefix="sev"/>
                                <strong>{alert.name.clone()}</strong>
                                <Pill value=format!("{:?}", alert.status) prefix="st"/>
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
                        </article>
                    }
                })
                .collect_view()}
        </div>
    }
}
