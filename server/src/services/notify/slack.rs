//! Slack: Block Kit messages through an incoming webhook or `chat.postMessage`, and the
//! interactive Approve / Reject buttons and an open incident's Acknowledge button
//! (`POST /api/v1/slack/interactions`).
//!
//! A click reaches AWOOOI only as a request Slack signed with the app's signing secret
//! (<https://api.slack.com/authentication/verifying-requests-from-slack>): `v0=` HMAC-SHA256
//! of `v0:<timestamp>:<body>`, the timestamp within five minutes, compared in constant time.
//! The Slack user is mapped to an AWOOOI user by configuration, and the signature goes through
//! [`crate::services::approvals::Approvals::sign`] like a click in the console: the same roles, four-eyes
//! and CTO+CISO rules. The message is then replaced with the outcome through the click's
//! `response_url`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::BoxFuture;
use super::{Channel, ChannelConfig, ChannelKind, Message, Secret};
use crate::base::signing;

pub const APPROVE: &str = "awoooi_approve";
pub const REJECT: &str = "awoooi_reject";
pub const ACKNOWLEDGE: &str = "awoooi_acknowledge";

/// How far a request's timestamp may be from now.
pub const MAX_SKEW_SECONDS: i64 = 300;

enum Target {
    /// An incoming webhook (the URL is the credential).
    Webhook(reqwest::Url),
    /// `chat.postMessage` with a bot token.
    Api {
        base: String,
        token: Secret,
        channel: String,
    },
}

pub struct SlackChannel {
    target: Target,
    http: reqwest::Client,
}

impl SlackChannel {
    pub fn new(config: &ChannelConfig, http: reqwest::Client) -> Result<SlackChannel, String> {
        let target = match (&config.url, &config.token, &config.channel) {
            (Some(_), None, None) => Target::Webhook(super::required_url(&config.url, "")?),
            (None, Some(token), Some(channel)) => Target::Api {
                base: config
                    .api_url
                    .clone()
                    .unwrap_or_else(|| "https://slack.com/api".into())
                    .trim_end_matches('/')
                    .to_owned(),
                token: token.clone(),
                channel: channel.clone(),
            },
            _ => {
                return Err(
                    "give either `url` (an incoming webhook) or `token` and `channel` (chat.postMessage)"
                        .into(),
                );
            }
        };
        Ok(SlackChannel { target, http })
    }
}

fn plain(text: &str, max: usize) -> Value {
    json!({"type": "plain_text", "text": super::shorten(text, max), "emoji": true})
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message: a header, the facts, the buttons while an approval waits for signatures,
/// and a context line with the link and the idempotency key.
pub fn blocks(payload: &super::Payload, link: &str, key: &str) -> Value {
    let facts: String = payload
        .facts()
        .iter()
        .map(|(name, value)| format!("*{name}:* {}\n", escape(value)))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": plain(&payload.summary(), 150)}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": super::shorten(&facts, 2900)}}),
    ];
    if let Some(a) = &payload.approval
        && a.status == engine::policy::ApprovalStatus::Pending
    {
        let id = a.id.to_string();
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("awoooi_approval_{id}"),
            "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary",
                 "text": plain("Approve", 75), "value": id},
                {"type": "button", "action_id": REJECT, "style": "danger",
                 "text": plain("Reject", 75), "value": id,
                 "confirm": {"title": plain("Reject this action?", 100),
                             "text": plain("A rejection ends the approval and resets the pattern's trust.", 300),
                             "confirm": plain("Reject", 30), "deny": plain("Keep it", 30)}},
            ],
        }));
    }
    if payload.approval.is_none()
        && let Some(i) = &payload.incident
        && i.acknowledged_by.is_none()
        && !matches!(
            i.status,
            crate::base::incident::IncidentStatus::Resolved
                | crate::base::incident::IncidentStatus::Merged
        )
    {
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("awoooi_incident_{}", i.id),
            "elements": [
                {"type": "button", "action_id": ACKNOWLEDGE, "style": "primary",
                 "text": plain("Acknowledge", 75), "value": i.id.to_string()},
            ],
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("<{}|Open in AWOOOI> · {}", link, escape(key))}],
    }));
    json!({"text": super::shorten(&payload.summary(), 3000), "blocks": blocks})
}

impl Channel for SlackChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Webhook(url) => {
                format!("incoming webhook on {}", url.host_str().unwrap_or("?"))
            }
            Target::Api { base, channel, .. } => {
                format!("chat.postMessage to {channel} via {base}")
            }
        }
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut body = blocks(message.payload, &message.link, message.key);
            match &self.target {
                Target::Webhook(url) => {
                    let sent = self.http.post(url.clone()).json(&body).send().await;
                    super::http_outcome(sent).await.map(drop)
                }
                Target::Api {
                    base,
                    token,
                    channel,
                } => {
                    body["channel"] = json!(channel);
                    let sent = self
                        .http
                        .post(format!("{base}/chat.postMessage"))
                        .bearer_auth(&token.0)
                        .json(&body)
                        .send()
                        .await;
                    // The Web API answers 200 with `ok: false` on errors.
                    let answer: Value =
                        super::http_outcome(sent).await?.json().await.map_err(|e| {
                            format!("chat.postMessage answered no JSON: {}", e.without_url())
                        })?;
                    if answer["ok"] == true {
                        Ok(())
                    } else {
                        Err(format!(
                            "chat.postMessage refused: {}",
                            answer["error"].as_str().unwrap_or("no reason given")
                        ))
                    }
                }
            }
        })
    }
}

/// `[notifications.slack]`: the Slack app whose buttons sign approvals.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionsConfig {
    /// The app's signing secret (also `AWOOOI_SLACK_SIGNING_SECRET`). Without it the
    /// interactions endpoint refuses every request.
    pub signing_secret: Option<Secret>,
    /// Slack user id → AWOOOI user name. Anyone not listed cannot sign from Slack.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// Where outcome updates may be posted (`response_url` must start with this; default
    /// `https://hooks.slack.com/`).
    pub response_url_prefix: Option<String>,
}

impl InteractionsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.signing_secret
            && s.0.len() < 16
        {
            return Err("slack.signing_secret: at least 16 characters".into());
        }
        if let Some((slack, _)) = self.users.iter().find(|(_, user)| user.trim().is_empty()) {
            return Err(format!("slack.users: `{slack}` maps to an empty user name"));
        }
        Ok(())
    }

    pub fn response_url_prefix(&self) -> &str {
        self.response_url_prefix
            .as_deref()
            .unwrap_or("https://hooks.slack.com/")
    }
}

/// Why a request was refused before anything was read from it.
#[derive(Debug, PartialEq, Eq)]
pub enum Unverified {
    NotConfigured,
    MissingHeader(&'static str),
    BadTimestamp,
    Stale(i64),
    BadSignature,
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::NotConfigured => {
                f.write_str("Slack interactions are not configured (no signing secret)")
            }
            Unverified::MissingHeader(h) => write!(f, "the {h} header is missing"),
            Unverified::BadTimestamp => f.write_str("X-Slack-Request-Timestamp is not a number"),
            Unverified::Stale(skew) => write!(
                f,
                "the request timestamp is {skew} s from now (at most {MAX_SKEW_SECONDS} s): a replay, or a clock off"
            ),
            Unverified::BadSignature => {
                f.write_str("the signature does not match the signing secret")
            }
        }
    }
}

/// `v0=<hex>` of `v0:<timestamp>:<body>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    signing::sign(secret, "v0=", &[b"v0:", timestamp.as_bytes(), b":", body])
}

/// Slack's request verification; `now` in Unix seconds.
pub fn verify(
    secret: Option<&Secret>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Unverified> {
    let secret = secret.ok_or(Unverified::NotConfigured)?;
    let timestamp = timestamp.ok_or(Unverified::MissingHeader("X-Slack-Request-Timestamp"))?;
    let given = signature.ok_or(Unverified::MissingHeader("X-Slack-Signature"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Unverified::BadTimestamp)?;
    let skew = now.saturating_sub(at);
    if skew.abs() > MAX_SKEW_SECONDS {
        return Err(Unverified::Stale(skew));
    }
    let parts: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", body];
    if signing::verify(&secret.0, "v0=", &parts, given) {
        Ok(())
    } else {
        Err(Unverified::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

    #[test]
    fn slack_documented_example_verifies() {
        // The example of Slack's "Verifying requests" page.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let ts = "1531420618";
        assert_eq!(
            signature(SECRET, ts, body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        let secret = Secret(SECRET.into());
        let sig = signature(SECRET, ts, body);
        assert_eq!(
            verify(Some(&secret), Some(ts), Some(&sig), body, 1531420618 + 10),
            Ok(())
        );
        assert_eq!(
            verify(Some(&secret), Some(ts), Some(&sig), body, 1531420618 + 301),
            Err(Unverified::Stale(301))
        );
        assert_eq!(
            verify(
                Some(&secret),
                Some(ts),
                Some(&sig),
                b"token=changed",
                1531420618
            ),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify(Some(&secret), Some(ts), Some("v0=zz"), body, 1531420618),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify(None, Some(ts), Some(&sig), body, 1531420618),
            Err(Unverified::NotConfigured)
        );
        assert_eq!(
            verify(Some(&secret), None, Some(&sig), body, 1531420618),
            Err(Unverified::MissingHeader("X-Slack-Request-Timestamp"))
        );
    }
}
