//! The whole service graph with health at a glance; click a service for its blast radius and
//! root causes.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::graph::TopologyGraph;
use crate::graphql::{self, blast_radius_of, topology_page};

#[derive(Debug, Clone, PartialEq, Default)]
struct Selection {
    service: String,
    blast: Vec<String>,
    causes: Vec<String>,
}

#[component]
pub fn TopologyPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let graph = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::TopologyPage>(topology_page::Variables {})
                    .await
            }
        },
    );
    view! {
        <Title text="Topology"/>
        <h1 class="page-title">"Topology"</h1>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match graph.await {
                    Ok(data) if data.topology.services.is_empty() => view! {
                        <p class="panel muted">"No topology loaded. Start with --topology FILE (or --demo)."</p>
                    }
                    .into_any(),
                    Ok(data) => view! { <Explorer topology=data.topology/> }.into_any(),
                    Err(error) => {
                        view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The page's island: the graph, and what a click on a service asks the server.
#[island]
fn Explorer(topology: topology_page::TopologyPageTopology) -> impl IntoView {
    let names: Vec<String> = topology.services.iter().map(|s| s.name.clone()).collect();
    let unhealthy: Vec<String> = topology
        .services
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.name.clone())
        .collect();
    let healthy_count = names.len() - unhealthy.len();
    let edges: Vec<(String, String)> = topology.edges.into_iter().map(|e| (e.from, e.to)).collect();
    let selection = RwSignal::new(None::<Selection>);
    let transport = graphql::use_transport().ok();

    let select = move |service: String| {
        let Some(transport) = transport.clone() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let variables = blast_radius_of::Variables {
                service: service.clone(),
            };
            if let Ok(data) = transport.run::<graphql::BlastRadiusOf>(variables).await {
                selection.set(Some(Selection {
                    service,
                    blast: data
                        .blast_radius
                        .affected
                        .into_iter()
                        .map(|a| a.service)
                        .collect(),
                    causes: data.root_causes.into_iter().map(|c| c.service).collect(),
                }));
            }
        });
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let service = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|e| e.closest("[data-service]").ok().flatten())
                .and_then(|e| e.get_attribute("data-service"));
            if let Some(service) = service {
                select(service);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &select);
    };

    view! {
        <p class="muted" data-testid="health-summary">
            {format!("{} services, {} healthy, {} unhealthy", names.len(), healthy_count, unhealthy.len())}
        </p>
        <section class="panel clickable" on:click=on_click>
            {move || {
                let current = selection.get().unwrap_or_default();
                view! {
                    <TopologyGraph names=names.clone() edges=edges.clone() unhealthy=unhealthy.clone()
                        focus=current.service.clone() blast=current.blast.clone()
                        root_causes=current.causes.clone()/>
                }
            }}
            <p class="legend muted small">"Click a service for its blast radius and root causes."</p>
        </section>
        {move || selection.get().map(|s| view! {
            <section class="panel" data-testid="selection">
                <h2>{s.service.clone()}</h2>
                <dl class="facts">
                    <dt>"Breaks with it"</dt>
                    <dd data-testid="selection-blast">{if s.blast.is_empty() { "nothing".to_owned() } else { s.blast.join(", ") }}</dd>
                    <dt>"Root causes"</dt>
                    <dd>{if s.causes.is_empty() { "none unhealthy".to_owned() } else { s.causes.join(", ") }}</dd>
                </dl>
            </section>
        })}
    }
}
