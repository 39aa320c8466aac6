//! The approvals queue and one approval: cards rendered on the server, then kept live by the
//! `approvalUpdates` subscription (a signature in another session shows up without a reload).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::approval::{ApprovalCard, Card, answers, upsert};
use crate::graphql::{self, ApiError};
use serde::{Deserialize, Serialize};

async fn load_list(transport: Result<graphql::Transport, ApiError>) -> Result<Vec<Card>, ApiError> {
    let data = transport?
        .run_as::<graphql::ApprovalList, answers::List>(graphql::approval_list::Variables {
            status: None,
            first: 50,
        })
        .await?;
    Ok(data
        .approvals
        .edges
        .into_iter()
        .map(|edge| edge.node)
        .collect())
}

async fn load_one(
    transport: Result<graphql::Transport, ApiError>,
    id: String,
) -> Result<Vec<Card>, ApiError> {
    let data = transport?
        .run_as::<graphql::ApprovalOne, answers::One>(graphql::approval_one::Variables { id })
        .await?;
    Ok(data.approval.into_iter().collect())
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
                    Ok(cards) => view! { <LiveBoard cards scope=Scope::All/> }.into_any(),
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
                    Ok(cards) => view! { <LiveBoard cards scope=Scope::One(id)/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Which approvals a board shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// The queue: every approval.
    All,
    /// One approval.
    One(String),
    /// An incident's (and those merged into it) that wait or run — and any card once shown,
    /// so a signer sees how it ended.
    Incident { id: String, family: Vec<String> },
}

impl Scope {
    /// Whether a card that changed joins (or stays on) a board showing `shown`.
    pub fn admits(&self, card: &Card, shown: &[Card]) -> bool {
        match self {
            Scope::All => true,
            Scope::One(id) => *id == card.id,
            Scope::Incident { family, .. } => {
                shown.iter().any(|c| c.id == card.id)
                    || (card.is_open()
                        && card
                            .incident
                            .as_ref()
                            .is_some_and(|i| family.contains(&i.id)))
            }
        }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    async fn load(
        &self,
        transport: Result<graphql::Transport, ApiError>,
    ) -> Result<Vec<Card>, ApiError> {
        match self {
            Scope::All => load_list(transport).await,
            Scope::One(id) => load_one(transport, id.clone()).await,
            Scope::Incident { id, .. } => load_incident(transport, id.clone()).await,
        }
    }
}

/// An incident's approvals (those of incidents merged into it too), newest first.
pub async fn load_incident(
    transport: Result<graphql::Transport, ApiError>,
    id: String,
) -> Result<Vec<Card>, ApiError> {
    let data = transport?
        .run_as::<graphql::IncidentApprovals, answers::OfIncident>(
            graphql::incident_approvals::Variables { id },
        )
        .await?;
    Ok(data.incident.map(|i| i.approvals).unwrap_or_default())
}

/// The approvals pages' island: a board of the cards the server read, live in the browser.
#[island]
fn LiveBoard(cards: Vec<Card>, scope: Scope) -> impl IntoView {
    view! { <ApprovalBoard cards=RwSignal::new(cards) scope/> }
}

/// Cards kept current: by the caller's own decisions, and by everyone else's over the
/// subscription, within `scope`. The caller owns `cards`, so they outlive a re-render of the
/// board (a card a person just signed stays in view).
#[component]
pub fn ApprovalBoard(cards: RwSignal<Vec<Card>>, scope: Scope) -> impl IntoView {
    let accept = {
        let scope = scope.clone();
        move |card: Card| {
            if cards.with_untracked(|shown| scope.admits(&card, shown)) {
                cards.update(|cards| upsert(cards, card));
            }
        }
    };

    #[cfg(feature = "hydrate")]
    {
        use crate::graphql::ws::{SubscriptionEvent, subscribe_as};
        let transport = graphql::use_transport();
        let accept = accept.clone();
        let scope = scope.clone();
        let started = subscribe_as::<graphql::ApprovalLive, answers::Live, _>(
            graphql::approval_live::Variables {},
            move |event| match event {
                // Catch up on whatever changed between the server render and now.
                SubscriptionEvent::Connected => {
                    let transport = transport.clone();
                    let scope = scope.clone();
                    let accept = accept.clone();
                    leptos::task::spawn_local(async move {
                        for card in scope.load(transport).await.unwrap_or_default() {
                            accept(card);
                        }
                    });
                }
                SubscriptionEvent::Data(data) => accept(data.approval_updates),
                _ => {}
            },
        );
        if let Ok(subscription) = started {
            let subscription = send_wrapper::SendWrapper::new(subscription);
            on_cleanup(move || drop(subscription));
        }
    }

    let on_change = Callback::new(accept);
    let empty = match scope {
        Scope::Incident { .. } => "No proposal waits for a signature.",
        _ => "Nothing waits for a signature.",
    };
    view! {
        <Show
            when=move || !cards.read().is_empty()
            fallback=move || view! { <p class="panel muted" data-testid="no-approvals">{empty}</p> }
        >
            <div class="cards">
                <For
                    each=move || cards.get()
                    key=|card| card.clone()
                    // Erased: a card's view type is deep enough to overflow the compiler's
                    // limit inside the pages that embed a board.
                    children=move |card| view! { <ApprovalCard card on_change/> }.into_any()
                />
            </div>
        </Show>
    }
}
