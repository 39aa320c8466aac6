//! Pages whose features have not landed yet say so plainly.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ComingSoon(page: &'static str, what: &'static str) -> impl IntoView {
    view! {
        <Title text=page/>
        <section class="panel coming-soon">
            <h1>{page}</h1>
            <p class="muted">{what}</p>
            <p class="pill pill-info">"Coming soon"</p>
        </section>
    }
}
