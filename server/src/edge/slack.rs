//! Slack's interactions endpoint (`/api/v1/slack/interactions`): a button click, verified by
//! Slack's signature, signs an approval like a click in the console — the same roles,
//! four-eyes and policy — or acknowledges an incident as the mapped user.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::policy::Decision;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::edge::http::AppState;
use crate::services::notify::slack::{ACKNOWLEDGE, APPROVE, REJECT, Unverified, blocks, verify};
use crate::services::notify::{self, EventKind};

#[derive(Deserialize)]
struct Form {
    payload: String,
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    #[serde(default)]
    actions: Vec<Action>,
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct SlackUser {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
}

fn answer(status: StatusCode, ok: bool, text: &str) -> Response {
    (status, axum::Json(json!({"ok": ok, "text": text}))).into_response()
}

/// `POST /api/v1/slack/interactions`.
pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let config = &state.config.notifications.slack;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(refused) = verify(
        config.signing_secret.as_ref(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    ) {
        tracing::warn!(reason = %refused, "Slack interaction refused");
        metrics::counter!("awoooi_slack_interactions_total", "outcome" => "unverified")
            .increment(1);
        let status = if refused == Unverified::NotConfigured {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        };
        return answer(status, false, &refused.to_string());
    }
    let interaction = match serde_urlencoded::from_bytes::<Form>(&body)
        .map_err(|e| format!("the body is not a form with `payload`: {e}"))
        .and_then(|f| {
            serde_json::from_str::<Interaction>(&f.payload)
                .map_err(|e| format!("payload is not a Slack interaction: {e}"))
        }) {
        Ok(i) => i,
        Err(e) => return answer(StatusCode::BAD_REQUEST, false, &e),
    };
    let outcome = decide(&state, &interaction).await;
    let (ok, text) = match &outcome {
        Ok(Clicked::Signed(view)) => (
            true,
            format!(
                "approval {} is now {}",
                view.row.id,
                view.row.status.as_str()
            ),
        ),
        Ok(Clicked::Acknowledged(found)) => (
            true,
            format!(
                "incident {} acknowledged by {}",
                found.id,
                found.acknowledged_by.as_deref().unwrap_or("?")
            ),
        ),
        Err(reason) => (false, reason.clone()),
    };
    let counted = match &outcome {
        Ok(Clicked::Signed(_)) => "signed",
        Ok(Clicked::Acknowledged(_)) => "acknowledged",
        Err(_) => "refused",
    };
    metrics::counter!("awoooi_slack_interactions_total", "outcome" => counted).increment(1);
    // The outcome goes back to Slack through the click's response_url: the card replaced
    // with its new state, or the refusal shown to the one who clicked.
    if let Some(url) = interaction
        .response_url
        .as_deref()
        .filter(|u| u.starts_with(config.response_url_prefix()))
    {
        let update = match &outcome {
            Ok(Clicked::Signed(view)) => {
                let mut card = card_of(&state, view.row.id).await;
                card["replace_original"] = json!(true);
                card
            }
            Ok(Clicked::Acknowledged(found)) => {
                let mut card = incident_card_of(&state, found.id).await;
                card["replace_original"] = json!(true);
                card
            }
            Err(reason) => {
                let verb = if interaction
                    .actions
                    .iter()
                    .any(|a| a.action_id == ACKNOWLEDGE)
                {
                    "acknowledge"
                } else {
                    "sign"
                };
                json!({
                    "response_type": "ephemeral",
                    "replace_original": false,
                    "text": format!("AWOOOI did not {verb}: {reason}"),
                })
            }
        };
        let url = url.to_owned();
        tokio::spawn(async move {
            let sent = reqwest::Client::new()
                .post(&url)
                .timeout(std::time::Duration::from_secs(10))
                .json(&update)
                .send()
                .await;
            if let Err(e) = notify::http_outcome(sent).await {
                tracing::warn!(error = %e, "Slack message update failed");
            }
        });
    } else if interaction.response_url.is_some() {
        tracing::warn!("Slack response_url outside the allowed prefix; message not updated");
    }
    answer(StatusCode::OK, ok, &text)
}

/// What a click did.
enum Clicked {
    Signed(Box<crate::services::approvals::ApprovalView>),
    Acknowledged(Box<entity::incident::Model>),
}

/// Applies the click: who, which approval or incident, which decision; then the policy
/// decides (a VIEWER acknowledges nothing, as in the console).
async fn decide(state: &AppState, interaction: &Interaction) -> Result<Clicked, String> {
    if interaction.kind != "block_actions" {
        return Err(format!(
            "`{}` interactions are not handled",
            interaction.kind
        ));
    }
    let action = interaction
        .actions
        .iter()
        .find(|a| [APPROVE, REJECT, ACKNOWLEDGE].contains(&a.action_id.as_str()))
        .ok_or("no Approve, Reject or Acknowledge action in the payload")?;
    let id: i32 = action
        .value
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or("the button carries no id")?;
    let config = &state.config.notifications.slack;
    let name = config.users.get(&interaction.user.id).ok_or_else(|| {
        format!(
            "Slack user {} is not mapped to an AWOOOI user ([notifications.slack.users])",
            interaction.user.id
        )
    })?;
    let user = entity::user::Entity::find()
        .filter(entity::user::Column::Username.eq(name.as_str()))
        .one(&state.db)
        .await
        .map_err(|e| format!("cannot read users: {e}"))?
        .ok_or_else(|| {
            format!(
                "Slack user {} maps to `{name}`, who is not an AWOOOI user",
                interaction.user.id
            )
        })?;
    let principal = crate::services::auth::user_principal(&user)
        .ok_or_else(|| format!("`{name}` has an unknown role"))?;
    if action.action_id == ACKNOWLEDGE {
        if principal.role == engine::Role::Viewer {
            return Err(format!("`{name}` is a VIEWER and may not acknowledge"));
        }
        return state
            .oncall
            .acknowledge(id, &principal.name)
            .await
            .map(|found| Clicked::Acknowledged(Box::new(found)))
            .map_err(|e| e.to_string());
    }
    let (decision, comment) = if action.action_id == APPROVE {
        (Decision::Approve, Some("approved in Slack".to_owned()))
    } else {
        (Decision::Reject, Some("rejected in Slack".to_owned()))
    };
    state
        .approvals
        .sign(id, &principal.name, principal.role, decision, comment)
        .await
        .map(|view| Clicked::Signed(Box::new(view)))
        .map_err(|e| e.to_string())
}

/// The message of incident `id` as it is now (after an acknowledgement).
async fn incident_card_of(state: &AppState, id: i32) -> Value {
    match notify::payload_of(
        &state.db,
        EventKind::IncidentOpened,
        Some(id),
        None,
        "slack",
    )
    .await
    {
        Ok(payload) => {
            let link = payload.link(state.notifier.public_url());
            blocks(&payload, &link, &format!("incident {id}"))
        }
        Err(e) => json!({"text": format!("incident {id} changed; cannot read it: {e}")}),
    }
}

/// The card of approval `id` as it is now (for the message update).
async fn card_of(state: &AppState, id: i32) -> Value {
    let payload = match state.approvals.load(id).await {
        Ok(view) => {
            notify::payload_of(
                &state.db,
                EventKind::ApprovalSigned,
                Some(view.row.incident_id),
                Some(view.facts()),
                "slack",
            )
            .await
        }
        Err(e) => Err(sea_orm::DbErr::Custom(e.to_string())),
    };
    match payload {
        Ok(payload) => {
            let link = payload.link(state.notifier.public_url());
            blocks(&payload, &link, &format!("approval {id}"))
        }
        Err(e) => json!({"text": format!("approval {id} changed; cannot read it: {e}")}),
    }
}
