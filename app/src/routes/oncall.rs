//! On call: the schedules (who is on call now, the rotation, overrides) and the escalation
//! policies (which incidents, whom each step pages, how long it waits), with forms for both.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::action::{run_action, text_field};
use crate::components::status::short_time;
use crate::graphql::{self, Severity, oncall_page};

#[component]
pub fn OncallPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let page = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::OncallPage>(oncall_page::Variables {})
                    .await
            }
        },
    );
    view! {
        <Title text="On call"/>
        <h1 class="page-title">"On call"</h1>
        <p class="muted">"An incident a policy's route takes pages each step in turn until someone acknowledges it. A schedule step pages whoever is on call at that moment."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(data) => view! {
                        <section class="panel" data-testid="schedules">
                            <h2>"Schedules"</h2>
                            {if data.schedules.is_empty() {
                                view! { <p class="muted">"No schedule yet."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="table">
                                        <thead><tr><th>"Schedule"</th><th>"On call now"</th><th>"Rotation"</th><th>"Hand-over"</th><th>"Overrides"</th></tr></thead>
                                        <tbody>
                                            {data.schedules.into_iter().map(|s| view! {
                                                <tr data-testid="schedule">
                                                    <td>{s.name}</td>
                                                    <td data-testid="on-call-now"><strong>{s.on_call_now.unwrap_or_else(|| "nobody".into())}</strong></td>
                                                    <td>{s.participants.join(" → ")}</td>
                                                    <td class="mono">{format!("{} {} {}", s.handover_day, s.handover_time, s.time_zone)}</td>
                                                    <td class="small">{s.overrides.into_iter().map(|o| format!("{} {} → {}; ", o.user, short_time(&o.starts_at), short_time(&o.ends_at))).collect::<String>()}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                        </section>
                        <section class="panel" data-testid="policies">
                            <h2>"Escalation policies"</h2>
                            {if data.escalation_policies.is_empty() {
                                view! { <p class="muted">"No policy yet: nothing escalates."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="plain">
                                        {data.escalation_policies.into_iter().map(|p| {
                                            let route = [
                                                p.route.severities.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>().join("/"),
                                                p.route.services.join("/"),
                                                p.route.namespaces.join("/"),
                                            ].into_iter().filter(|x| !x.is_empty()).collect::<Vec<_>>().join(" · ");
                                            view! {
                                                <li data-testid="policy">
                                                    <strong>{p.name}</strong>
                                                    <span class="muted">{format!(" for {}", if route.is_empty() { "every incident".to_owned() } else { route })}</span>
                                                    <ol>
                                                        {p.steps.into_iter().map(|s| view! {
                                                            <li>{format!("page {} {}, then wait {} min", s.kind.to_lowercase(), s.name, s.wait_minutes)}</li>
                                                        }).collect_view()}
                                                    </ol>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </section>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <div class="grid">
            <NewSchedule/>
            <NewPolicy/>
        </div>
    }
}

/// An island: the form, which reloads the page once the schedule exists.
#[island]
fn NewSchedule() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let people = RwSignal::new(String::new());
    let day = RwSignal::new("MON".to_owned());
    let time = RwSignal::new("09:00".to_owned());
    let zone = RwSignal::new("UTC".to_owned());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let vars = graphql::create_schedule::Variables {
            name: name.get_untracked(),
            participants: people
                .get_untracked()
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            handover_day: day.get_untracked(),
            handover_time: time.get_untracked(),
            time_zone: zone.get_untracked(),
        };
        run_action(error, busy, graphql::reload_page, move |t| async move {
            t.run::<graphql::CreateSchedule>(vars).await.map(drop)
        })
    };
    view! {
        <form class="panel form" data-testid="new-schedule" on:submit=submit>
            <h2>"New schedule"</h2>
            {text_field("Name", "schedule-name", name)}
            {text_field("People, in order (comma-separated)", "schedule-people", people)}
            {text_field("Hand-over day (MON … SUN)", "schedule-day", day)}
            {text_field("Hand-over time (HH:MM)", "schedule-time", time)}
            {text_field("Time zone", "schedule-zone", zone)}
            <button class="btn btn-primary" type="submit" data-testid="create-schedule" disabled=move || busy.get()>"Add schedule"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
}

/// One step per line: `KIND NAME WAIT`, e.g. `schedule primary 5`.
fn parse_steps(
    text: &str,
) -> Result<Vec<graphql::create_escalation_policy::EscalationStepInput>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [kind, name, wait] => Ok(graphql::create_escalation_policy::EscalationStepInput {
                    kind: kind.to_ascii_uppercase(),
                    name: (*name).to_owned(),
                    wait_minutes: wait.parse().map_err(|_| {
                        format!("line {}: `{wait}` is not a number of minutes", i + 1)
                    })?,
                }),
                _ => Err(format!(
                    "line {}: write `kind name minutes`, e.g. `schedule primary 5`",
                    i + 1
                )),
            }
        })
        .collect()
}

/// An island: the form, which reloads the page once the policy exists.
#[island]
fn NewPolicy() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let critical_only = RwSignal::new(true);
    let services = RwSignal::new(String::new());
    let steps = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed = match parse_steps(&steps.get_untracked()) {
            Ok(parsed) => parsed,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        let vars = graphql::create_escalation_policy::Variables {
            name: name.get_untracked(),
            steps: parsed,
            severities: if critical_only.get_untracked() {
                vec![Severity::Critical]
            } else {
                Vec::new()
            },
            services: services
                .get_untracked()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        run_action(error, busy, graphql::reload_page, move |t| async move {
            t.run::<graphql::CreateEscalationPolicy>(vars)
                .await
                .map(drop)
        })
    };
    view! {
        <form class="panel form" data-testid="new-policy" on:submit=submit>
            <h2>"New escalation policy"</h2>
            {text_field("Name", "policy-name", name)}
            <label class="inline">
                <input type="checkbox" data-testid="policy-critical" prop:checked=move || critical_only.get()
                    on:change=move |_| critical_only.update(|c| *c = !*c)/>
                "CRITICAL incidents only"
            </label>
            {text_field("Services (empty: any)", "policy-services", services)}
            <label>"Steps, one per line: user|role|schedule|channel NAME MINUTES"
                <textarea rows="4" data-testid="policy-steps" placeholder="schedule primary 5\nuser alice 10\nrole CTO 0"
                    prop:value=move || steps.get() on:input=move |ev| steps.set(event_target_value(&ev))></textarea>
            </label>
            <button class="btn btn-primary" type="submit" data-testid="create-policy" disabled=move || busy.get()>"Add policy"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_read_one_per_line_and_bad_lines_are_named() {
        let steps = parse_steps("schedule primary 5\n\n  user alice 10 \nrole cto 0").unwrap();
        let read: Vec<(&str, &str, i64)> = steps
            .iter()
            .map(|s| (s.kind.as_str(), s.name.as_str(), s.wait_minutes))
            .collect();
        assert_eq!(
            read,
            [
                ("SCHEDULE", "primary", 5),
                ("USER", "alice", 10),
                ("ROLE", "cto", 0)
            ]
        );
        assert_eq!(
            parse_steps("user alice").map(drop).unwrap_err(),
            "line 1: write `kind name minutes`, e.g. `schedule primary 5`"
        );
        assert!(
            parse_steps("user alice soon")
                .map(drop)
                .unwrap_err()
                .contains("`soon` is not a number")
        );
    }
}
