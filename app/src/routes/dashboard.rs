//! The dashboard: who is signed in, the server's vital signs, and a live heartbeat that proves
//! the subscription pipe end to end.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::graphql::{self, server_info};

/// `--demo` only: fires the seed's 3 AM scenario and links to what it opened.
#[component]
fn ScenarioButton() -> impl IntoView {
    let transport = graphql::use_transport().ok();
    let result = RwSignal::new(None::<Result<Vec<(String, String)>, String>>);
    let busy = RwSignal::new(false);
    let fire = move |_| {
        let Some(transport) = transport.clone() else {
            return;
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let fired = transport
                .run::<graphql::FireDemoScenario>(graphql::fire_demo_scenario::Variables {})
                .await
                .map(|data| {
                    data.fire_demo_scenario
                        .into_iter()
                        .map(|i| (i.id, i.title))
                        .collect()
                })
                .map_err(|e| e.to_string());
            busy.set(false);
            result.set(Some(fired));
        });
    };
    view! {
        <div class="scenario">
            <button class="btn btn-primary" data-testid="fire-scenario" on:click=fire disabled=move || busy.get()>
                "Fire the 3 AM scenario"
            </button>
            <p class="muted small">"postgres-db runs out of connections; the frontend's error rate climbs."</p>
            {move || result.get().map(|r| match r {
                Ok(incidents) => view! {
                    <ul class="actions" data-testid="scenario-incidents">
                        {incidents.into_iter().map(|(id, title)| view! {
                            <li><a href=format!("/incidents/{id}")>{format!("#{id} {title}")}</a></li>
                        }).collect_view()}
                    </ul>
                }.into_any(),
                Err(e) => view! { <p class="form-error" role="alert">{e}</p> }.into_any(),
            })}
        </div>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let transport = graphql::use_transport();
    let info = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::ServerInfo>(server_info::Variables {})
                    .await
            }
        },
    );

    view! {
        <Title text="Dashboard"/>
        <h1 class="page-title">"Dashboard"</h1>
        <div class="grid">
            <section class="panel">
                <h2>"Server"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match info.await {
                            Ok(data) => {
                                let who = data
                                    .me
                                    .map(|me| format!("{} ({:?})", me.username, me.role))
                                    .unwrap_or_default();
                                let demo = data.server_info.demo.then(|| view! { <ScenarioButton/> });
                                view! {
                                    {demo}
                                    <dl class="facts" data-testid="server-info">
                                        <dt>"Version"</dt>
                                        <dd data-testid="version">{data.server_info.version}</dd>
                                        <dt>"Database"</dt>
                                        <dd data-testid="database">{data.server_info.database}</dd>
                                        <dt>"Uptime"</dt>
                                        <dd>{format_uptime(data.server_info.uptime_seconds)}</dd>
                                        <dt>"Signed in as"</dt>
                                        <dd data-testid="whoami">{who}</dd>
                                    </dl>
                                }
                                .into_any()
                            }
                            Err(error) => {
                                view! { <p class="form-error" role="alert">{error.to_string()}</p> }
                                    .into_any()
                            }
                        }
                    })}
                </Suspense>
            </section>
            <HeartbeatPanel/>
        </div>
    }
}

/// `3d 4h 12m`, `5m 3s`.
pub fn format_uptime(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// Counts `heartbeat` events from the live subscription (browser only; SSR shows a dash).
#[component]
fn HeartbeatPanel() -> impl IntoView {
    let (beats, set_beats) = signal(None::<i64>);
    let (status, set_status) = signal("connecting");

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe};
        let started =
            subscribe::<graphql::Heartbeat, _>(graphql::heartbeat::Variables {}, move |event| {
                match event {
                    SubscriptionEvent::Connected => set_status.set("live"),
                    SubscriptionEvent::Data(data) => set_beats.set(Some(data.heartbeat.seq)),
                    SubscriptionEvent::Error(_) => set_status.set("error"),
                    SubscriptionEvent::Closed => set_status.set("disconnected"),
                }
            });
        match started {
            Ok(subscription) => {
                let subscription = send_wrapper::SendWrapper::new(subscription);
                on_cleanup(move || drop(subscription));
            }
            Err(_) => set_status.set("error"),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_beats, set_status);

    view! {
        <section class="panel">
            <h2>"Heartbeat"</h2>
            <p class="heartbeat">
                <span class=move || format!("dot dot-{}", status.get())></span>
                <span class="mono big" data-testid="heartbeat-count">
                    {move || beats.get().map(|n| n.to_string()).unwrap_or_else(|| "—".into())}
                </span>
            </p>
            <p class="muted" data-testid="heartbeat-status">{move || status.get()}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::format_uptime;

    #[test]
    fn uptime_reads_like_a_clock() {
        for (secs, expect) in [
            (0, "0m 0s"),
            (303, "5m 3s"),
            (3_600, "1h 0m"),
            (273_120, "3d 3h 52m"),
        ] {
            assert_eq!(format_uptime(secs), expect, "{secs}");
        }
    }
}
