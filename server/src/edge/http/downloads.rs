//! Downloads: an incident's postmortem as a Markdown file, for a session or an API token.

use axum::extract::Path;

use super::*;

/// `GET /api/v1/incidents/{id}/postmortem.md`: the same Markdown as `Incident.postmortem`.
pub(super) async fn postmortem(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if !signed_in(&request) {
        return unauthorized();
    }
    let Ok(id) = id.parse::<i32>() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("`{id}` is not an incident id")})),
        )
            .into_response();
    };
    match crate::services::knowledge::postmortem_of(
        &state.db,
        state.approvals.knowledge().retrieval(),
        id,
    )
    .await
    {
        Ok(Some(markdown)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/markdown; charset=utf-8".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"incident-{id}-postmortem.md\""),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            markdown,
        )
            .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no incident {id}")})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(incident = id, error = %e, "postmortem download failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the database did not answer; try again"})),
            )
                .into_response()
        }
    }
}
