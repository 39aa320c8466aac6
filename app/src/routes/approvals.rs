//! The approvals queue and one approval: cards rendered on the server, then kept live by the
//! `approvalUpdates` subscription (a signature in another session shows up without a reload).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::approval::{ApprovalCard, Card, upsert};
use crate::graphql::{self, ApiError};

async fn load_list(transport: Result<graphql::Transport, ApiError>) -> Result<Vec<Card>, ApiError> {
    let data = transport?
        .run::<graphql::ApprovalList>(graphql::approval_list::Variables {
            status: None,
            first: 50,
        })
        .await?;
    data.approvals
        .edges
        .into_iter()
        .map(|edge| Card::from_generated(edge.node))
        .collect()
}

async fn load_one(
    transport: Result<graphql::Transport, ApiError>,
    id: String,
) -> Result<Vec<Card>, ApiError> {
    let data = transport?
        .run::<graphql::ApprovalOne>(graphql::approval_one::Variables { id })
        .await?;
    data.approval
        .map(Card::from_generated)
        .into_iter()
        .collect()
}

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let list = Resource::new(|| (), move |_| load_list(transport.clone()));
    view! {
        <Title text="Approvals"/>
        <h1 class="page-title">"Approvals"</h1>
        <p class="muted">"Every proposed action, newest first. Humans sign; AWOOOI re-checks and executes."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(cards) => view! { <ApprovalBoard initial=cards only=None/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn ApprovalPage() -> impl IntoView {
    let params = use_params_map();
    let transport = graphql::use_transport();
    let one = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        move |id| load_one(transport.clone(), id),
    );
    view! {
        <Title text="Approval"/>
        <p><a href="/approvals">"← All approvals"</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let id = params.read_untracked().get("id").unwrap_or_default();
                match one.await {
                    Ok(cards) if cards.is_empty() => view! { <p class="panel">"No such approval."</p> }.into_any(),
                    Ok(cards) => view! { <ApprovalBoard initial=cards only=Some(id)/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Cards kept current: by the caller's own decisions, and by everyone else's over the
/// subscription. `only` keeps the board to one approval.
#[component]
fn ApprovalBoard(initial: Vec<Card>, only: Option<String>) -> impl IntoView {
    let cards = RwSignal::new(initial);
    let accept = {
        let only = only.clone();
        move |card: Card| {
            if only.as_ref().is_none_or(|id| *id == card.id) {
                cards.update(|cards| upsert(cards, card));
            }
        }
    };

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe};
        let transport = graphql::use_transport();
        let accept = accept.clone();
        let only = only.clone();
        let started = subscribe::<graphql::ApprovalLive, _>(
            graphql::approval_live::Variables {},
            move |event| match event {
                // Catch up on whatever changed between the server render and now.
                SubscriptionEvent::Connected => {
                    let transport = transport.clone();
                    let only = only.clone();
                    let accept = accept.clone();
                    leptos::task::spawn_local(async move {
                        let fresh = match only {
                            Some(id) => load_one(transport, id).await,
                            None => load_list(transport).await,
                        };
                        for card in fresh.unwrap_or_default() {
                            accept(card);
                        }
                    });
                }
                SubscriptionEvent::Data(data) => {
                    if let Ok(card) = Card::from_generated(data.approval_updates) {
                        accept(card);
                    }
                }
                _ => {}
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
    }

    let on_change = Callback::new(accept);
    view! {
        <Show
            when=move || !cards.read().is_empty()
            fallback=|| view! { <p class="panel muted" data-testid="no-approvals">"Nothing waits for a signature."</p> }
        >
            <div class="cards">
                <For
                    each=move || cards.get()
                    key=|card| card.clone()
                    children=move |card| view! { <ApprovalCard card on_change/> }
                />
            </div>
        </Show>
    }
}
