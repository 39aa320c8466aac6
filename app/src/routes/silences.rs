//! Silences and maintenance windows: what holds alerts back now, the windows to come, what
//! ended (with what each held back), and forms to add either. Held-back alerts are stored and
//! counted; they open no incident and notify nobody; a digest follows each end.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::action::{run_action as act, text_field};
use crate::components::status::short_time;
use crate::graphql::{self, silence_list};

const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

type Row = silence_list::SilenceListSilences;

/// The whole minutes typed in `field`, or `None` with the error shown.
fn minutes_in(field: RwSignal<String>, error: RwSignal<Option<String>>) -> Option<i64> {
    let parsed = field.get_untracked().trim().parse::<i64>().ok();
    if parsed.is_none() {
        error.set(Some("Duration: a number of minutes.".into()));
    }
    parsed
}

#[component]
pub fn SilencesPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let list = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::SilenceList>(silence_list::Variables {})
                    .await
            }
        },
    );
    view! {
        <Title text="Silences"/>
        <h1 class="page-title">"Silences and maintenance windows"</h1>
        <p class="muted">"Alerts a silence matches are stored and counted, but open no incident, start no analysis and notify nobody. When a silence ends, a digest says what fired and what resolved meanwhile. Matchers use Alertmanager's syntax, e.g. "<code>"{alertname=\"DiskFull\", env=~\"stag.*\"}"</code>"."</p>
        <div class="grid">
            <NewSilence/>
            <NewWindow/>
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(data) => {
                        let (holding, rest): (Vec<Row>, Vec<Row>) =
                            data.silences.into_iter().partition(|s| s.holding);
                        let (waiting, ended): (Vec<Row>, Vec<Row>) = rest
                            .into_iter()
                            .partition(|s| s.expired_at.is_none() && s.next_start.is_some());
                        view! {
                            {section("Holding now", "silences-holding", holding)}
                            {section("Windows to come", "silences-waiting", waiting)}
                            {section("Ended", "silences-ended", ended.into_iter().take(20).collect())}
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn section(title: &'static str, id: &'static str, rows: Vec<Row>) -> impl IntoView {
    view! {
        <section class="panel" data-testid=id>
            <h2>{format!("{title} ({})", rows.len())}</h2>
            {if rows.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain silences">
                        {rows.into_iter().map(|row| view! { <SilenceItem row/> }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </section>
    }
}

#[component]
fn SilenceItem(row: Row) -> impl IntoView {
    let open = row.expired_at.is_none() && (row.holding || row.next_start.is_some());
    let when = match (&row.recurrence, &row.ends_at) {
        (Some(r), until) => format!(
            "{} at {} {} for {} min{}",
            r.days.join(" "),
            r.start,
            r.time_zone,
            r.duration_minutes,
            until
                .as_ref()
                .map(|u| format!(", until {}", short_time(u)))
                .unwrap_or_default()
        ),
        (None, Some(end)) => format!("{} → {}", short_time(&row.starts_at), short_time(end)),
        (None, None) => short_time(&row.starts_at),
    };
    let held: i64 = row.held_back.iter().map(|a| a.count).sum();
    view! {
        <li class="silence" data-testid="silence" data-silence=row.id.clone()>
            <p>
                <strong>{row.name.clone().unwrap_or_else(|| format!("#{}", row.id))}</strong>" "
                <code data-testid="silence-matchers">{row.matchers.clone()}</code>
            </p>
            <p class="muted small">
                {when}{format!(" · by {} · {}", row.created_by, row.comment)}
                {row.expired_by.clone().map(|by| format!(" · ended by {by}"))}
                {row.next_start.clone().filter(|_| !row.holding).map(|n| format!(" · next {}", short_time(&n)))}
            </p>
            <p class="small" data-testid="silence-held">
                {format!("{held} firing(s) held back")}
                {row.held_back.iter().map(|a| format!(" · {}{} ×{}{}",
                    a.name,
                    a.service.as_ref().map(|s| format!(" on {s}")).unwrap_or_default(),
                    a.count,
                    if a.firing { "" } else { " (resolved)" })).collect::<String>()}
            </p>
            {open.then(|| view! { <ExpireNow id=row.id.clone()/> })}
        </li>
    }
}

/// An island: ends a silence now, then reloads the page to show it ended.
#[island]
fn ExpireNow(id: String) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let expire = move |_| {
        let id = id.clone();
        act(error, busy, graphql::reload_page, move |t| async move {
            t.run::<graphql::ExpireSilence>(graphql::expire_silence::Variables { id })
                .await
                .map(drop)
        })
    };
    view! {
        <button class="btn btn-small" data-testid="expire-silence" on:click=expire
            disabled=move || busy.get()>"Expire now"</button>
        {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
    }
}

/// An island: the form, which reloads the page once the silence exists.
#[island]
fn NewSilence() -> impl IntoView {
    let matchers = RwSignal::new(String::new());
    let minutes = RwSignal::new("120".to_owned());
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(duration) = minutes_in(minutes, error) else {
            return;
        };
        let vars = graphql::create_silence::Variables {
            matchers: matchers.get_untracked(),
            comment: comment.get_untracked(),
            duration_minutes: Some(duration),
        };
        let done = move || {
            matchers.set(String::new());
            comment.set(String::new());
            graphql::reload_page();
        };
        act(error, busy, done, move |t| async move {
            t.run::<graphql::CreateSilence>(vars).await.map(drop)
        })
    };
    view! {
        <form class="panel form" data-testid="new-silence" on:submit=submit>
            <h2>"New silence"</h2>
            <label>"Matchers"
                <input type="text" data-testid="silence-matchers-input" placeholder="{alertname=\"DiskFull\", service=\"batch\"}"
                    prop:value=move || matchers.get() on:input=move |ev| matchers.set(event_target_value(&ev))/>
            </label>
            <label>"For (minutes)"
                <input type="number" min="1" data-testid="silence-minutes" prop:value=move || minutes.get()
                    on:input=move |ev| minutes.set(event_target_value(&ev))/>
            </label>
            {text_field("Why", "silence-comment", comment)}
            <button class="btn btn-primary" type="submit" data-testid="create-silence" disabled=move || busy.get()>"Silence"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
}

/// An island: the form, which reloads the page once the window exists.
#[island]
fn NewWindow() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let matchers = RwSignal::new(String::new());
    let days = RwSignal::new(Vec::<&'static str>::new());
    let start = RwSignal::new("02:00".to_owned());
    let zone = RwSignal::new("UTC".to_owned());
    let minutes = RwSignal::new("120".to_owned());
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(duration) = minutes_in(minutes, error) else {
            return;
        };
        let vars = graphql::create_maintenance_window::Variables {
            name: name.get_untracked(),
            matchers: matchers.get_untracked(),
            days: days.get_untracked().iter().map(|d| d.to_string()).collect(),
            start: start.get_untracked(),
            time_zone: zone.get_untracked(),
            duration_minutes: duration,
            comment: comment.get_untracked(),
        };
        act(error, busy, graphql::reload_page, move |t| async move {
            t.run::<graphql::CreateMaintenanceWindow>(vars)
                .await
                .map(drop)
        })
    };
    view! {
        <form class="panel form" data-testid="new-window" on:submit=submit>
            <h2>"New maintenance window"</h2>
            {text_field("Name", "window-name", name)}
            {text_field("Matchers", "window-matchers", matchers)}
            <fieldset class="days">
                <legend>"Days"</legend>
                {DAYS.into_iter().map(|d| view! {
                    <label class="inline">
                        <input type="checkbox" data-testid=format!("window-day-{d}")
                            prop:checked=move || days.read().contains(&d)
                            on:change=move |_| days.update(|list| {
                                if let Some(i) = list.iter().position(|x| *x == d) {
                                    list.remove(i);
                                } else {
                                    list.push(d);
                                }
                            })/>
                        {d}
                    </label>
                }).collect_view()}
            </fieldset>
            {text_field("Starts (HH:MM)", "window-start", start)}
            {text_field("Time zone", "window-zone", zone)}
            <label>"For (minutes)"
                <input type="number" min="1" data-testid="window-minutes" prop:value=move || minutes.get()
                    on:input=move |ev| minutes.set(event_target_value(&ev))/>
            </label>
            {text_field("Why", "window-comment", comment)}
            <button class="btn btn-primary" type="submit" data-testid="create-window" disabled=move || busy.get()>"Add window"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
}
