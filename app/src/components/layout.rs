//! The console frame: header with the product mark, navigation, who is signed in, sign-out.

use leptos::prelude::*;
use leptos_router::components::A;

const NAV: [(&str, &str); 11] = [
    ("/", "Dashboard"),
    ("/incidents", "Incidents"),
    ("/approvals", "Approvals"),
    ("/silences", "Silences"),
    ("/oncall", "On call"),
    ("/topology", "Topology"),
    ("/knowledge", "Knowledge"),
    ("/finops", "FinOps"),
    ("/trust", "Trust"),
    ("/audit", "Audit"),
    ("/settings", "Settings"),
];

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <div class="console">
            <header class="topbar">
                <a class="brand" href="/">
                    <span class="brand-mark">"AWOOOI"</span>
                    <span class="brand-tag">"ops console"</span>
                </a>
                <nav class="nav" aria-label="Main">
                    {NAV
                        .into_iter()
                        .map(|(href, label)| view! { <A href=href exact=true>{label}</A> })
                        .collect_view()}
                </nav>
                <form class="signout" method="post" action="/auth/logout">
                    <button type="submit" class="btn btn-ghost">"Sign out"</button>
                </form>
            </header>
            <main class="content">{children()}</main>
        </div>
    }
}
