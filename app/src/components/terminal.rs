//! The ThinkingTerminal: the Brain's reasoning as it happens, rendered like a console.
//! Server-rendered with what was said so far; once hydrated, the `thinking` subscription
//! replays and continues — lines are keyed by sequence number, so none shows twice.

use leptos::prelude::*;

/// One line: sequence number, kind, text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    pub seq: i64,
    pub kind: String,
    pub text: String,
}

/// Appends `line` unless a line with its sequence number is already there.
pub fn append(lines: &mut Vec<Line>, line: Line) {
    if lines.iter().all(|l| l.seq != line.seq) {
        lines.push(line);
        lines.sort_by_key(|l| l.seq);
    }
}

#[component]
pub fn ThinkingTerminal(incident_id: String, initial: Vec<Line>) -> impl IntoView {
    let lines = RwSignal::new(initial);

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe};
        use crate::graphql::{self, thinking};
        let started = subscribe::<graphql::Thinking, _>(
            thinking::Variables {
                incident_id: incident_id.clone(),
            },
            move |event| {
                if let SubscriptionEvent::Data(data) = event {
                    let t = data.thinking;
                    lines.update(|lines| {
                        append(
                            lines,
                            Line {
                                seq: t.seq,
                                kind: t.kind,
                                text: t.text,
                            },
                        )
                    });
                }
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = &incident_id;

    view! {
        <div class="terminal" data-testid="thinking-terminal" aria-live="polite">
            <Show when=move || !lines.read().is_empty()
                fallback=|| view! { <p class="terminal-line muted">"waiting for the Brain…"</p> }>
                <For
                    each=move || lines.get()
                    key=|l| l.seq
                    children=move |l| {
                        let class = format!("terminal-line kind-{}", l.kind.to_ascii_lowercase().replace('_', "-"));
                        view! {
                            <p class=class data-seq=l.seq>
                                <span class="seq">{format!("{:>3}", l.seq)}</span>
                                <span class="kind">{l.kind.replace('_', " ")}</span>
                                <span class="text">{l.text.clone()}</span>
                            </p>
                        }
                    }
                />
            </Show>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: i64) -> Line {
        Line {
            seq,
            kind: "THOUGHT".into(),
            text: String::new(),
        }
    }

    #[test]
    fn replayed_lines_are_not_shown_twice() {
        let mut lines = vec![line(1), line(2)];
        append(&mut lines, line(2));
        append(&mut lines, line(4));
        append(&mut lines, line(3));
        let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
    }
}
