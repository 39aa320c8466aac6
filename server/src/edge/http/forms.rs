//! The sign-in and sign-out forms (the console works without JavaScript).

use super::*;

#[derive(Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: String,
}

/// Sign-in for browsers without JavaScript (the hydrated page uses the `login` mutation).
pub(super) async fn form_login(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Response {
    let ttl = chrono::Duration::minutes(i64::from(state.config.auth.session_ttl_minutes));
    match auth::login(
        &state.db,
        &state.lockout,
        form.username.trim(),
        &form.password,
        ttl,
    )
    .await
    {
        Ok(session) => {
            tracing::info!(user = %session.user.username, "signed in");
            crate::base::audit::record_or_log(
                &state.db,
                &session.user.username,
                "user.login",
                &format!("user:{}", session.user.username),
                json!({"via": "form"}),
            )
            .await;
            let cookie = auth::session_cookie(
                &session.token,
                ttl.num_seconds(),
                state.config.auth.cookie_secure,
            );
            redirect_with_cookie("/", &cookie)
        }
        Err(auth::AuthError::InvalidCredentials | auth::AuthError::InvalidInput(_)) => {
            Redirect::to("/login?error=1").into_response()
        }
        Err(auth::AuthError::Locked(_)) => Redirect::to("/login?error=locked").into_response(),
        Err(error) => {
            tracing::error!(%error, "sign-in failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable, try again",
            )
                .into_response()
        }
    }
}

pub(super) async fn form_logout(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
) -> Response {
    if let Some(token) = auth.token {
        if let Err(error) = auth::logout(&state.db, &token).await {
            tracing::error!(%error, "sign-out failed");
        }
        state.credentials.forget_all();
    }
    redirect_with_cookie(
        "/login",
        &auth::clear_session_cookie(state.config.auth.cookie_secure),
    )
}

pub(super) fn redirect_with_cookie(to: &str, cookie: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
