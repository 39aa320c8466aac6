//! Sign-in. Works as a plain form before hydration (`POST /auth/login`); once hydrated it
//! uses the `login` mutation, which sets the same HttpOnly session cookie.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::graphql::{self, ApiError};

#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let failed = query.read_untracked().get("error").is_some();
    view! {
        <Title text="Sign in"/>
        <LoginForm failed/>
    }
}

/// The page's island: `failed` when the plain form's sign-in was refused.
#[island]
fn LoginForm(failed: bool) -> impl IntoView {
    let initial_error = move || failed.then(|| "Invalid username or password.".to_owned());
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        set_busy.set(true);
        set_error.set(None);
        let variables = graphql::login::Variables {
            username: username.get_untracked(),
            password: password.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            let result = match graphql::use_transport() {
                Ok(transport) => transport.run::<graphql::Login>(variables).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => go_home(),
                Err(ApiError { message, .. }) => {
                    set_error.set(Some(message));
                    set_busy.set(false);
                }
            }
        });
    };

    view! {
        <div class="login-page">
            <form class="panel login-card" method="post" action="/auth/login" on:submit=submit>
                <div class="brand brand-large">
                    <span class="brand-mark">"AWOOOI"</span>
                    <span class="brand-tag">"Zero-touch ops. Human-centric decisions."</span>
                </div>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required=true
                    on:input=move |ev| set_username.set(event_target_value(&ev))/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password"
                    required=true on:input=move |ev| set_password.set(event_target_value(&ev))/>
                <Show when=move || error.get().or_else(initial_error).is_some()>
                    <p class="form-error" role="alert">{move || error.get().or_else(initial_error)}</p>
                </Show>
                <button type="submit" class="btn btn-primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </div>
    }
}

fn go_home() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign("/");
    }
}
