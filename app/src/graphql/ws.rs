//! GraphQL subscriptions from the browser over `/graphql/ws` (`graphql-transport-ws`).
//!
//! The protocol is four messages deep (init → ack → subscribe → next…), so it is spoken here
//! directly over `web_sys::WebSocket` rather than through a client crate. The browser sends the
//! session cookie with the upgrade request, which is how the server knows who subscribes.

use graphql_client::GraphQLQuery;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use serde::Deserialize;

use super::{ApiError, first_error, from_response};

/// A protocol message's type; its payload is read once the type says what it holds.
#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// `next`: one GraphQL response.
#[derive(Deserialize)]
struct Next<T> {
    payload: graphql_client::Response<T>,
}

/// `error`: the operation failed with these errors.
#[derive(Deserialize)]
struct Failed {
    payload: Vec<graphql_client::Error>,
}

/// What a live subscription reports to its owner.
pub enum SubscriptionEvent<T> {
    Connected,
    Data(T),
    Error(ApiError),
    Closed,
}

/// A running subscription; dropping it closes the socket.
pub struct Subscription {
    socket: web_sys::WebSocket,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_close: Closure<dyn FnMut(web_sys::CloseEvent)>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

fn endpoint() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/graphql/ws", location.host().ok()?))
}

/// Starts operation `Q` and calls `on_event` for everything that happens to it.
pub fn subscribe<Q, F>(variables: Q::Variables, on_event: F) -> Result<Subscription, ApiError>
where
    Q: GraphQLQuery,
    Q::ResponseData: 'static,
    F: Fn(SubscriptionEvent<Q::ResponseData>) + 'static,
{
    subscribe_as::<Q, Q::ResponseData, F>(variables, on_event)
}

/// [`subscribe`], with each event's data decoded into `T` rather than `Q`'s generated type
/// (see `Transport::run_as`).
pub fn subscribe_as<Q, T, F>(variables: Q::Variables, on_event: F) -> Result<Subscription, ApiError>
where
    Q: GraphQLQuery,
    T: for<'de> Deserialize<'de> + 'static,
    F: Fn(SubscriptionEvent<T>) + 'static,
{
    let fail = |message: String| ApiError {
        message,
        code: None,
    };
    let url = endpoint().ok_or_else(|| fail("no window location".into()))?;
    let payload = serde_json::to_string(&Q::build_query(variables))
        .map_err(|e| fail(format!("cannot encode subscription: {e}")))?;
    let socket = web_sys::WebSocket::new_with_str(&url, "graphql-transport-ws")
        .map_err(|e| fail(format!("cannot open {url}: {e:?}")))?;
    let on_event = std::rc::Rc::new(on_event);

    let on_open = {
        let socket = socket.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let _ = socket.send_with_str(r#"{"type":"connection_init","payload":{}}"#);
        })
    };
    let on_message = {
        let socket = socket.clone();
        let on_event = on_event.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            let Ok(message) = serde_json::from_str::<Kind>(&text) else {
                return;
            };
            let unexpected = |e: serde_json::Error| fail(format!("unexpected message: {e}"));
            match &*message.kind {
                "connection_ack" => {
                    let subscribe =
                        format!(r#"{{"id":"1","type":"subscribe","payload":{payload}}}"#);
                    let _ = socket.send_with_str(&subscribe);
                    on_event(SubscriptionEvent::Connected);
                }
                "ping" => {
                    let _ = socket.send_with_str(r#"{"type":"pong"}"#);
                }
                "next" => match serde_json::from_str::<Next<T>>(&text) {
                    Ok(next) => match from_response(next.payload) {
                        Ok(data) => on_event(SubscriptionEvent::Data(data)),
                        Err(error) => on_event(SubscriptionEvent::Error(error)),
                    },
                    Err(e) => on_event(SubscriptionEvent::Error(unexpected(e))),
                },
                "error" => {
                    let error = match serde_json::from_str::<Failed>(&text) {
                        Ok(failed) => first_error(failed.payload).unwrap_or_else(|| {
                            fail("the subscription failed without an error".into())
                        }),
                        Err(e) => unexpected(e),
                    };
                    on_event(SubscriptionEvent::Error(error));
                }
                _ => {}
            }
        })
    };
    let on_close = {
        let on_event = on_event.clone();
        Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |_| on_event(SubscriptionEvent::Closed))
    };
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Ok(Subscription {
        socket,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
    })
}
