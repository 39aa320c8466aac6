//! `POST /graphql` from the browser, with the session cookie (same origin).

use send_wrapper::SendWrapper;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::{ApiError, GraphqlTransport, TransportFuture};

pub struct FetchTransport;

impl GraphqlTransport for FetchTransport {
    fn execute(&self, body: String) -> TransportFuture {
        // The browser is single-threaded; SendWrapper satisfies Leptos' `Send` bound.
        Box::pin(SendWrapper::new(async move { post(body).await }))
    }
}

async fn post(body: String) -> Result<String, ApiError> {
    let js_err = |what: &str| {
        let what = what.to_owned();
        move |e: wasm_bindgen::JsValue| ApiError {
            message: format!("{what}: {e:?}"),
            code: None,
        }
    };
    let window = web_sys::window().ok_or_else(|| ApiError {
        message: "no window".into(),
        code: None,
    })?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    init.set_body(&wasm_bindgen::JsValue::from_str(&body));
    let request = web_sys::Request::new_with_str_and_init("/graphql", &init)
        .map_err(js_err("cannot build request"))?;
    request
        .headers()
        .set("content-type", "application/json")
        .map_err(js_err("cannot set header"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_err("network error"))?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(js_err("cannot read body"))?)
        .await
        .map_err(js_err("cannot read body"))?
        .as_string()
        .unwrap_or_default();
    // A GraphQL answer is a JSON object; anything else (a proxy's error page) is reported
    // with the status, as `decode` would not say where it came from.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError {
            message: format!("HTTP {}: not a GraphQL response", response.status()),
            code: None,
        });
    }
    Ok(text)
}
