//! One click, one mutation: what every button that changes something does the same way.

use leptos::prelude::*;

use crate::graphql;

/// Runs `run` with the page's transport in the background: `busy` while it runs, then `done`
/// on success or the server's words in `error`.
pub fn run_action<F>(
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
    done: impl Fn() + 'static,
    run: impl FnOnce(graphql::Transport) -> F + 'static,
) where
    F: std::future::Future<Output = Result<(), graphql::ApiError>> + 'static,
{
    let Ok(transport) = graphql::use_transport() else {
        error.set(Some("no connection to the server".into()));
        return;
    };
    busy.set(true);
    error.set(None);
    leptos::task::spawn_local(async move {
        let result = run(transport).await;
        busy.set(false);
        match result {
            Ok(()) => done(),
            Err(e) => error.set(Some(e.message)),
        }
    });
}

/// A labelled text input bound to `value`.
pub fn text_field(
    label: &'static str,
    testid: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>{label}
            <input type="text" data-testid=testid prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))/>
        </label>
    }
}
