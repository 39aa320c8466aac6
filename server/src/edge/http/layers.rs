//! The layers every request passes: CORS, security headers and CSP, the cross-site refusal,
//! the per-caller rate limit, authentication (bearer or session cookie) and the page guard.

use super::*;

/// CORS for the configured origins: bearer tokens only (no credentials mode, so browsers never
/// send the session cookie cross-origin). No origins configured: no CORS headers at all.
pub(super) fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// The console's Content-Security-Policy: scripts, styles and connections from this origin
/// only (the hydration bootstrap is inline; the WASM bundle needs `wasm-unsafe-eval`), no
/// framing, forms post only here.
pub(super) const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response; the CSP on HTML pages (GraphiQL, which loads its
/// scripts from a CDN, gets framing protection only); HSTS when cookies are `Secure`, i.e.
/// the console is served over HTTPS.
pub(super) async fn security_headers(
    State(https): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let graphiql = request.uri().path() == "/graphql";
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if html && !graphiql {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// CSRF protection: a state-changing request that carries the session cookie (or signs in)
/// must come from this origin. Browsers always send `Origin` on cross-site POSTs; clients
/// without one (curl, integrations) use bearer tokens and are not affected.
pub(super) async fn refuse_cross_site(
    State(secure): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let changes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let cookie = request.extensions().get::<CredentialSource>() == Some(&CredentialSource::Cookie);
    let signs_in = request.uri().path() == "/auth/login";
    if changes && (cookie || signs_in) && !same_origin(request.headers(), secure) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "cross-site request refused: the session cookie is accepted only from this origin"})),
        )
            .into_response();
    }
    next.run(request).await
}

/// The rate-limit key of a request: its credential (hashed), else its client address.
pub(super) fn caller_key(request: &Request) -> String {
    if let Some(token) = bearer_token(request.headers()).or_else(|| cookie_token(request.headers()))
    {
        return format!("t:{}", &auth::token_hash(&token)[..16]);
    }
    match request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        Some(info) => format!("ip:{}", info.0.ip()),
        None => "anonymous".to_owned(),
    }
}

/// Per-caller request rate on the API routes: over it, `429` with `Retry-After`.
pub(super) async fn rate_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Unlimited (`rate_per_minute = 0`): no key is worked out (it hashes the credential).
    if state.rate.is_unlimited() {
        return next.run(request).await;
    }
    let key = caller_key(&request);
    match state.rate.check(&key).await {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs() + 1;
            metrics::counter!("awoooi_rate_limited_total").increment(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.to_string())],
                Json(json!({"errors": [{
                    "message": format!("rate limit exceeded: retry in {seconds} s"),
                    "extensions": {"code": "RATE_LIMITED"},
                }]})),
            )
                .into_response()
        }
    }
}

pub(super) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

pub(super) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Resolves the caller once per request into a `RequestAuth` extension. Health and metrics
/// endpoints skip it so that they answer while the database is down.
pub(super) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/pkg/") {
        return next.run(request).await;
    }
    let (token, source) = match bearer_token(request.headers()) {
        Some(token) => (Some(token), CredentialSource::Bearer),
        None => match cookie_token(request.headers()) {
            Some(token) => (Some(token), CredentialSource::Cookie),
            None => (None, CredentialSource::None),
        },
    };
    if token.is_some() && !state.health.is_up() {
        // The credential cannot be checked now; answer at once instead of after the pool's
        // acquire timeout.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"error": "storage unavailable, try again"})),
        )
            .into_response();
    }
    let principal = match &token {
        Some(token) => match state.credentials.resolve(&state.db, token).await {
            Ok(principal) => principal,
            Err(error) => {
                tracing::error!(%error, "cannot resolve credentials: database unavailable");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "storage unavailable, try again"})),
                )
                    .into_response();
            }
        },
        None => None,
    };
    request.extensions_mut().insert(source);
    request
        .extensions_mut()
        .insert(RequestAuth { principal, token });
    next.run(request).await
}

/// `/mcp` takes bearer tokens only (API or session tokens; never the cookie).
pub(super) async fn require_bearer(request: Request, next: Next) -> Response {
    let bearer = request.extensions().get::<CredentialSource>() == Some(&CredentialSource::Bearer);
    if bearer && signed_in(&request) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "send Authorization: Bearer <token> (an API or session token)"})),
        )
            .into_response()
    }
}

pub(super) fn signed_in(request: &Request) -> bool {
    request
        .extensions()
        .get::<RequestAuth>()
        .is_some_and(|auth| auth.principal.is_some())
}

/// UI pages other than the login page need a session; otherwise go sign in.
pub(super) async fn require_page_session(request: Request, next: Next) -> Response {
    if request.uri().path() == "/login" || signed_in(&request) {
        next.run(request).await
    } else {
        Redirect::to("/login").into_response()
    }
}
