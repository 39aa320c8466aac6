//! The dashboard: the headline tiles (open incidents, pending approvals and what they wait
//! for, monthly waste, the latest executions — each linking to its page), who is signed in,
//! the server's vital signs, and a live heartbeat that proves the subscription pipe.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::approval::quorum;
use crate::components::status::short_time;
use crate::graphql::{self, Decision, ExecutionStatus, dashboard_tiles, server_info};

type TileApproval = dashboard_tiles::TileApproval;

fn action_of(a: &TileApproval) -> String {
    format!("{} {}", a.action.kind, a.action.target)
}

/// What a pending approval waits for.
fn waits_for(a: &TileApproval) -> String {
    let roles = |r: &[dashboard_tiles::Role]| -> Vec<String> {
        r.iter().map(|r| format!("{r:?}")).collect()
    };
    let approved = a
        .signatures
        .iter()
        .filter(|s| s.decision == Decision::Approve)
        .count();
    quorum(
        approved,
        a.required_signatures,
        &roles(&a.required_roles),
        &roles(&a.mandatory_roles),
    )
}

/// The newest finished executions, successes and failures together.
fn latest_executions(mut all: Vec<TileApproval>, n: usize) -> Vec<TileApproval> {
    let finished = |a: &TileApproval| {
        a.execution
            .as_ref()
            .and_then(|e| e.finished_at.clone())
            .unwrap_or_default()
    };
    all.sort_by_key(|a| std::cmp::Reverse(finished(a)));
    all.truncate(n);
    all
}

/// The four headline tiles. The waste tile reads on its own: a cluster without usage data
/// must not blank the others.
#[component]
fn HeadlineTiles() -> impl IntoView {
    let transport = graphql::use_transport();
    let waste_transport = transport.clone();
    let tiles = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::DashboardTiles>(dashboard_tiles::Variables {})
                    .await
            }
        },
    );
    let waste = Resource::new(
        || (),
        move |_| {
            let transport = waste_transport.clone();
            async move {
                transport?
                    .run::<graphql::DashboardWaste>(graphql::dashboard_waste::Variables {})
                    .await
            }
        },
    );
    view! {
        <div class="tiles headline" data-testid="headline-tiles">
            <Suspense fallback=|| view! { <div class="tile muted">"Loading…"</div> }>
                {move || Suspend::new(async move {
                    match tiles.await {
                        Ok(d) => {
                            let open = d.open.total_count + d.analyzing.total_count
                                + d.awaiting.total_count + d.mitigating.total_count;
                            let pending: Vec<TileApproval> =
                                d.pending.edges.into_iter().map(|e| e.node).collect();
                            let executions = latest_executions(
                                d.executed.edges.into_iter().map(|e| e.node).chain(d.failed.edges.into_iter().map(|e| e.node)).collect(),
                                3,
                            );
                            view! {
                                <a class="tile tile-link" href="/incidents" data-testid="tile-incidents">
                                    <h3>"Open incidents"</h3>
                                    <p class="tile-amount" data-testid="open-incidents">{open}</p>
                                    <p class="muted small">{format!("{} awaiting approval · {} mitigating", d.awaiting.total_count, d.mitigating.total_count)}</p>
                                </a>
                                <div class="tile" data-testid="tile-approvals">
                                    <h3><a href="/approvals">"Pending approvals"</a></h3>
                                    <p class="tile-amount" data-testid="pending-approvals">{d.pending.total_count}</p>
                                    <ul class="tile-list">
                                        {pending.iter().map(|a| view! {
                                            <li data-testid="pending-approval">
                                                <a href=format!("/approvals/{}", a.id) class="mono">{format!("#{} {}", a.id, action_of(a))}</a>
                                                <span class="muted small">{format!(" — {}", waits_for(a))}</span>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                </div>
                                {executions_tile(&executions)}
                                {key_times_tile(&d.key_times)}
                                {silences_tile(&d.silences)}
                                {on_call_tile(&d.schedules)}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| view! { <div class="tile muted">"Loading…"</div> }>
                {move || Suspend::new(async move {
                    let body = match waste.await {
                        Ok(d) => view! {
                            <p class="tile-amount" data-testid="tile-waste-amount">{format!("${}/mo", d.finops_report.monthly_waste)}</p>
                            <p class="muted small">{d.finops_report.currency}</p>
                        }.into_any(),
                        Err(e) => view! { <p class="muted small">{e.to_string()}</p> }.into_any(),
                    };
                    view! {
                        <a class="tile tile-link" href="/finops" data-testid="tile-waste">
                            <h3>"Monthly waste"</h3>
                            {body}
                        </a>
                    }
                })}
            </Suspense>
        </div>
    }
}

/// `1h 02m`, `4m 05s`, `6s`, or `—`.
fn took(seconds: Option<i64>) -> String {
    let Some(total) = seconds else {
        return "—".to_owned();
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

/// Medians of the key times over the incidents resolved in the last 30 days.
fn key_times_tile(k: &dashboard_tiles::DashboardTilesKeyTimes) -> impl IntoView + use<> {
    let rows = [
        ("detect", k.time_to_detect),
        ("propose", k.time_to_propose),
        ("approve", k.time_to_approve),
        ("mitigate", k.time_to_mitigate),
        ("resolve", k.time_to_resolve),
    ];
    view! {
        <div class="tile" data-testid="tile-key-times">
            <h3>"Median time to…"</h3>
            <dl class="facts small">
                {rows.into_iter().map(|(name, value)| view! {
                    <dt>{name}</dt>
                    <dd class="mono" data-testid=format!("key-time-{name}")>{took(value)}</dd>
                }).collect_view()}
            </dl>
            <p class="muted small">{format!("{} incident(s) resolved in 30 days", k.incidents)}</p>
        </div>
    }
}

/// Who is on call now, per schedule.
fn on_call_tile(schedules: &[dashboard_tiles::DashboardTilesSchedules]) -> impl IntoView + use<> {
    view! {
        <div class="tile" data-testid="tile-on-call">
            <h3><a href="/oncall">"On call now"</a></h3>
            {if schedules.is_empty() {
                view! { <p class="muted">"No schedule"</p> }.into_any()
            } else {
                view! {
                    <ul class="tile-list">
                        {schedules.iter().map(|s| view! {
                            <li><span class="muted">{format!("{}: ", s.name)}</span>
                                <strong>{s.on_call_now.clone().unwrap_or_else(|| "nobody".into())}</strong></li>
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </div>
    }
}

/// The silences holding alerts back now.
fn silences_tile(silences: &[dashboard_tiles::DashboardTilesSilences]) -> impl IntoView + use<> {
    view! {
        <div class="tile" data-testid="tile-silences">
            <h3><a href="/silences">{format!("Active silences ({})", silences.len())}</a></h3>
            {if silences.is_empty() {
                view! { <p class="muted">"Nothing is silenced"</p> }.into_any()
            } else {
                view! {
                    <ul class="tile-list">
                        {silences.iter().map(|s| view! {
                            <li>
                                <span class="mono">{s.name.clone().unwrap_or_else(|| s.matchers.clone())}</span>
                                {s.ends_at.as_deref().map(|e| view! { <span class="muted">{format!(" until {}", short_time(e))}</span> })}
                            </li>
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </div>
    }
}

/// The latest executions, each with how it ended.
fn executions_tile(executions: &[TileApproval]) -> impl IntoView + use<> {
    view! {
                <div class="tile" data-testid="tile-executions">
                    <h3><a href="/audit">"Latest executions"</a></h3>
                    {if executions.is_empty() {
                        view! { <p class="muted">"None yet"</p> }.into_any()
                    } else {
                        view! {
                            <ul class="tile-list">
                                {executions.iter().map(|a| {
                                    let (status, at) = a.execution.as_ref()
                                        .map(|e| (Some(e.status), e.finished_at.as_deref().map(short_time).unwrap_or_default()))
                                        .unwrap_or_default();
                                    view! {
                                        <li data-testid="latest-execution">
                                            <a href=format!("/approvals/{}", a.id) class="mono">{format!("#{} {}", a.id, action_of(a))}</a>
                                            <span class=format!("pill {}", if status == Some(ExecutionStatus::Succeeded) { "pill-ok" } else { "pill-failed" })>{status.map(ExecutionStatus::as_str)}</span>
                                            <span class="muted small">{format!(" {at}")}</span>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </div>
    }
}

/// `--demo` only: fires the seed's 3 AM scenario and links to what it opened.
#[island]
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
        <HeadlineTiles/>
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
#[island]
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
    use super::*;

    #[test]
    fn key_times_read_like_durations() {
        assert_eq!(took(None), "—");
        assert_eq!(took(Some(6)), "6s");
        assert_eq!(took(Some(245)), "4m 05s");
        assert_eq!(took(Some(3_723)), "1h 02m");
    }

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

    fn approval(
        id: &str,
        finished: Option<&str>,
        roles: &[&str],
        mandatory: &[&str],
    ) -> TileApproval {
        serde_json::from_value(serde_json::json!({
            "id": id, "requiredSignatures": 2, "requiredRoles": roles, "mandatoryRoles": mandatory,
            "action": {"kind": "resize_node", "target": "w"},
            "signatures": [{"decision": "APPROVE"}, {"decision": "REJECT"}],
            "execution": finished.map(|at| serde_json::json!({"status": "SUCCEEDED", "finishedAt": at})),
        }))
        .unwrap()
    }

    #[test]
    fn the_tiles_say_what_approvals_wait_for_and_list_the_newest_executions() {
        let a = approval("3", None, &["ADMIN", "DEVOPS", "SRE"], &[]);
        assert_eq!(waits_for(&a), "1 of 2 signatures · from ADMIN, DEVOPS, SRE");
        assert_eq!(action_of(&a), "resize_node w");
        let b = approval("4", None, &["CTO", "CISO"], &["CTO", "CISO"]);
        assert_eq!(
            waits_for(&b),
            "1 of 2 signatures · CTO and CISO must each sign"
        );
        let newest = latest_executions(
            vec![
                approval("1", Some("2026-12-01T10:00:00Z"), &[], &[]),
                approval("2", Some("2026-12-02T09:00:00Z"), &[], &[]),
                approval("5", Some("2026-11-30T08:00:00Z"), &[], &[]),
            ],
            2,
        );
        let ids: Vec<&str> = newest.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["2", "1"]);
    }
}
