//! AWOOOI's web UI: the HTML shell, the app and its routes.
//!
//! Built twice: with `ssr` into the server (rendering) and with `hydrate` into the WASM bundle
//! (interactivity). Leptos runs in islands mode: pages are rendered by the server only, and
//! just the `#[island]` components (buttons, forms, live lists, the incident page) are
//! compiled into the bundle and hydrated in the browser, from props the server serialises.
//! Links are plain page loads. Pages read data only through [`graphql`].

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

pub mod components;
pub mod graphql;
pub mod routes;

use components::layout::Layout;
use routes::{
    approvals::{ApprovalPage, ApprovalsPage},
    audit::{AuditPage, TrustPage},
    dashboard::Dashboard,
    finops::FinopsPage,
    incident::IncidentPage,
    incidents::IncidentsPage,
    knowledge::KnowledgePage,
    login::Login,
    oncall::OncallPage,
    placeholder::ComingSoon,
    settings::SettingsPage,
    silences::SilencesPage,
    topology::TopologyPage,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark"/>
                <link rel="stylesheet" id="awoooi" href=format!("/pkg/{}.css", options.output_name)/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| format!("{page} · AWOOOI")/>
        <Router>
            <Routes fallback=|| view! { <Layout><ComingSoon page="Not found" what="There is no page at this address."/></Layout> }>
                <Route path=path!("/login") view=Login/>
                <Route path=path!("/") view=|| view! { <Layout><Dashboard/></Layout> }/>
                <Route path=path!("/incidents") view=|| view! { <Layout><IncidentsPage/></Layout> }/>
                <Route path=path!("/incidents/:id") view=|| view! { <Layout><IncidentPage/></Layout> }/>
                <Route path=path!("/approvals") view=|| view! { <Layout><ApprovalsPage/></Layout> }/>
                <Route path=path!("/approvals/:id") view=|| view! { <Layout><ApprovalPage/></Layout> }/>
                <Route path=path!("/trust") view=|| view! { <Layout><TrustPage/></Layout> }/>
                <Route path=path!("/topology") view=|| view! { <Layout><TopologyPage/></Layout> }/>
                <Route path=path!("/finops") view=|| view! { <Layout><FinopsPage/></Layout> }/>
                <Route path=path!("/audit") view=|| view! { <Layout><AuditPage/></Layout> }/>
                <Route path=path!("/knowledge") view=|| view! { <Layout><KnowledgePage/></Layout> }/>
                <Route path=path!("/settings") view=|| view! { <Layout><SettingsPage/></Layout> }/>
                <Route path=path!("/silences") view=|| view! { <Layout><SilencesPage/></Layout> }/>
                <Route path=path!("/oncall") view=|| view! { <Layout><OncallPage/></Layout> }/>
            </Routes>
        </Router>
        <HydrationMark/>
    }
}

/// The page's last island: the browser hydrates islands in document order, so when this one
/// runs the others have. It marks the page as hydrated (e2e tests wait for it).
#[island]
fn HydrationMark() -> impl IntoView {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
