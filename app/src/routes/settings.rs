//! Settings (ADMIN): notification channels and routing rules as configured, a test message per
//! channel, recent deliveries, and the dead letters with re-drive.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::short_time;
use crate::graphql::{self, notification_settings as q};

/// What a button does: one mutation, its outcome as text for people.
type Run = std::sync::Arc<
    dyn Fn(
            graphql::Transport,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>>>>
        + Send
        + Sync,
>;

fn status_class(status: &q::DeliveryStatus) -> &'static str {
    match status {
        q::DeliveryStatus::DELIVERED => "pill pill-ok",
        q::DeliveryStatus::DEAD => "pill pill-failed",
        _ => "pill risk-medium",
    }
}

fn any_or(list: &[String]) -> String {
    if list.is_empty() {
        "any".into()
    } else {
        list.join(", ")
    }
}

/// What the page tells after a button ran (kept above the tables, which reload).
type Notice = RwSignal<Option<Result<String, String>>>;

/// A button that runs one mutation, says how it went, then asks the page to reload.
#[component]
fn ActionButton(
    label: &'static str,
    testid: String,
    run: Run,
    refresh: RwSignal<u32>,
    notice: Notice,
) -> impl IntoView {
    let transport = graphql::use_transport().ok();
    let busy = RwSignal::new(false);
    let click = move |_| {
        let Some(transport) = transport.clone() else {
            return;
        };
        let run = run.clone();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = run(transport).await;
            busy.set(false);
            notice.set(Some(result));
            refresh.update(|n| *n += 1);
        });
    };
    view! {
        <button class="btn btn-small" data-testid=testid on:click=click disabled=move || busy.get()>{label}</button>
    }
}

/// Deliveries as a table; `redrive`: each row with its re-drive button (the dead letters).
fn delivery_table(
    rows: Vec<q::DeliveryRow>,
    refresh: RwSignal<u32>,
    notice: Notice,
    redrive: bool,
) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|d| {
            let id = d.id.clone();
            let button = redrive.then(|| {
                let run: Run = std::sync::Arc::new(move |transport: graphql::Transport| {
                    let id = id.clone();
                    Box::pin(async move {
                        transport
                            .run::<graphql::RedriveNotification>(graphql::redrive_notification::Variables { id })
                            .await
                            .map(|d| format!("delivery {} is {:?} again", d.redrive_notification.id, d.redrive_notification.status))
                            .map_err(|e| e.message)
                    })
                });
                view! { <ActionButton label="Re-drive" testid=format!("redrive-{}", d.id) run refresh notice/> }
            });
            view! {
                <tr data-testid=if redrive { "dead-letter" } else { "delivery" }>
                    <td class="mono">{d.id.clone()}</td>
                    <td class="mono muted">{short_time(&d.created_at)}</td>
                    <td>{d.channel.clone()}</td>
                    <td class="mono small">{d.event.clone()}</td>
                    <td>{d.summary.clone()}</td>
                    <td><span class=status_class(&d.status)>{format!("{:?}", d.status)}</span></td>
                    <td class="mono">{d.attempts}</td>
                    <td class="small">{d.last_error.clone().unwrap_or_default()}</td>
                    <td class="mono muted small">{d.idempotency_key.clone()}</td>
                    <td>{button}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap"><table class="table">
            <thead><tr><th>"#"</th><th>"When"</th><th>"Channel"</th><th>"Event"</th><th>"What"</th><th>"Status"</th><th>"Tries"</th><th>"Last error"</th><th>"Key"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
}

/// The routing rules as configured (every event to every channel when there are none).
fn routes_panel(routes: Vec<q::NotificationSettingsNotificationRoutes>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Routing rules"</h2>
            {if routes.is_empty() {
                view! { <p class="muted" data-testid="routes">"No rules: every event goes to every channel."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-testid="routes">
                        <thead><tr><th>"Events"</th><th>"Severities"</th><th>"Services"</th><th>"Namespaces"</th><th>"Channels"</th></tr></thead>
                        <tbody>
                            {routes.into_iter().map(|r| view! {
                                <tr>
                                    <td class="mono small">{any_or(&r.events)}</td>
                                    <td>{any_or(&r.severities)}</td>
                                    <td>{any_or(&r.services)}</td>
                                    <td>{any_or(&r.namespaces)}</td>
                                    <td>{r.channels.join(", ")}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <h1 class="page-title">"Settings"</h1>
        <SettingsPanel/>
    }
}

/// The page's island: its buttons report above the tables and re-read them in place.
#[island]
fn SettingsPanel() -> impl IntoView {
    let transport = graphql::use_transport();
    let refresh = RwSignal::new(0u32);
    let settings = Resource::new(
        move || refresh.get(),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::NotificationSettings>(q::Variables {})
                    .await
            }
        },
    );
    let notice: Notice = RwSignal::new(None);
    view! {
        {move || notice.get().map(|n| match n {
            Ok(text) => view! { <p class="pill-ok" data-testid="action-outcome">{text}</p> }.into_any(),
            Err(text) => view! { <p class="form-error" role="alert" data-testid="action-outcome">{text}</p> }.into_any(),
        })}
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(e) if e.code.as_deref() == Some("FORBIDDEN") => view! {
                        <p class="panel muted" data-testid="admins-only">"Settings are for admins: notification channels and their dead letters are managed by the ADMIN role."</p>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(data) => {
                        let counts = data.notification_counts;
                        view! {
                            <section class="panel">
                                <h2>"Notification channels"</h2>
                                <p class="muted" data-testid="counts">{format!(
                                    "{} pending · {} delivered · {} dead-lettered",
                                    counts.pending, counts.delivered, counts.dead
                                )}</p>
                                {if data.notification_channels.is_empty() {
                                    view! { <p class="muted">"No channel is configured: add [[notifications.channels]] to the configuration file."</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap"><table class="table">
                                            <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Where"</th><th></th></tr></thead>
                                            <tbody>
                                                {data.notification_channels.into_iter().map(|c| {
                                                    let name = c.name.clone();
                                                    let run: Run = std::sync::Arc::new(move |transport: graphql::Transport| {
                                                        let channel = name.clone();
                                                        Box::pin(async move {
                                                            transport
                                                                .run::<graphql::SendTestNotification>(graphql::send_test_notification::Variables { channel })
                                                                .await
                                                                .map(|d| format!("queued as delivery {}", d.send_test_notification.id))
                                                                .map_err(|e| e.message)
                                                        })
                                                    });
                                                    view! {
                                                        <tr data-testid="channel">
                                                            <td>{c.name.clone()}</td>
                                                            <td class="mono">{format!("{:?}", c.kind)}</td>
                                                            <td class="mono small">{c.target}</td>
                                                            <td><ActionButton label="Send test" testid=format!("test-{}", c.name) run refresh notice/></td>
                                                        </tr>
                                                    }
                                                }).collect_view()}
                                            </tbody>
                                        </table></div>
                                    }.into_any()
                                }}
                            </section>
                            {routes_panel(data.notification_routes)}
                            <section class="panel">
                                <h2>"Dead letters"</h2>
                                {if data.dead.is_empty() {
                                    view! { <p class="muted" data-testid="no-dead-letters">"None: everything was delivered or is still being tried."</p> }.into_any()
                                } else {
                                    view! {
                                        <p class="muted">"These ran out of attempts. Fix the receiver, then re-drive: the attempts start again, with the same idempotency key."</p>
                                        {delivery_table(data.dead, refresh, notice, true)}
                                    }.into_any()
                                }}
                            </section>
                            <section class="panel">
                                <h2>"Recent deliveries"</h2>
                                <button class="btn btn-ghost btn-small" data-testid="reload" on:click=move |_| refresh.update(|n| *n += 1)>"Reload"</button>
                                {delivery_table(data.recent, refresh, notice, false)}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
