//! The generic webhook: the event as JSON, signed with HMAC-SHA256 of the body.
//!
//! Headers: `X-Awoooi-Signature: sha256=<hex>` (the same scheme AWOOOI accepts on its own
//! webhook), `X-Awoooi-Event`, and `X-Awoooi-Idempotency-Key` (the same on every retry).

use super::BoxFuture;
use super::{Channel, ChannelConfig, ChannelKind, Message, Secret};
use crate::base::signing;

pub struct WebhookChannel {
    url: reqwest::Url,
    secret: Option<Secret>,
    http: reqwest::Client,
}

impl WebhookChannel {
    pub fn new(config: &ChannelConfig, http: reqwest::Client) -> Result<WebhookChannel, String> {
        Ok(WebhookChannel {
            url: super::required_url(&config.url, "where the JSON is posted")?,
            secret: config.secret.clone(),
            http,
        })
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn describe(&self) -> String {
        let signed = if self.secret.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        format!(
            "{}://{}{} ({signed})",
            self.url.scheme(),
            self.url.host_str().unwrap_or("?"),
            self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&serde_json::json!({
                "id": message.key,
                "event": message.payload.event,
                "summary": message.payload.summary(),
                "link": message.link,
                "payload": message.payload,
            }))
            .expect("JSON serialises");
            let mut request = self
                .http
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("x-awoooi-event", message.payload.event.as_str())
                .header("x-awoooi-idempotency-key", message.key);
            if let Some(secret) = &self.secret {
                request = request.header(
                    "x-awoooi-signature",
                    signing::body_signature(&secret.0, &body),
                );
            }
            super::http_outcome(request.body(body).send().await)
                .await
                .map(drop)
        })
    }
}
