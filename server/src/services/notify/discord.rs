//! Discord: an incoming webhook with one embed (title, link, colour by severity, fields).
//! <https://discord.com/developers/docs/resources/webhook#execute-webhook>

use engine::alert::Severity;

use super::BoxFuture;
use super::{Channel, ChannelConfig, ChannelKind, Message};

pub struct DiscordChannel {
    url: reqwest::Url,
    http: reqwest::Client,
}

impl DiscordChannel {
    pub fn new(config: &ChannelConfig, http: reqwest::Client) -> Result<DiscordChannel, String> {
        let mut url = super::required_url(&config.url, "the Discord webhook")?;
        // `wait=true`: Discord answers once the message exists (200 with it), not before.
        url.query_pairs_mut().append_pair("wait", "true");
        Ok(DiscordChannel { url, http })
    }
}

/// Embed colours (decimal RGB): red for critical, amber for warnings and pending approvals,
/// green for what ended well.
fn colour(message: &Message<'_>) -> u32 {
    use super::EventKind::*;
    match message.payload.event {
        IncidentResolved | ApprovalExecuted | ApprovalApproved => 0x2e_b8_72,
        ApprovalFailed | ApprovalVoided | ApprovalRejected => 0xe5_48_4d,
        _ => match message.payload.incident.as_ref().map(|i| i.severity) {
            Some(Severity::Critical) => 0xe5_48_4d,
            Some(Severity::Info) => 0x4a_90_d9,
            _ => 0xf0_a0_20,
        },
    }
}

/// The webhook body (Discord's limits: title 256, field value 1024, 25 fields).
pub fn body(message: &Message<'_>) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = message
        .payload
        .facts()
        .into_iter()
        .take(25)
        .map(|(name, value)| {
            serde_json::json!({
                "name": name,
                "value": super::shorten(&value, 1000),
                "inline": value.len() < 40,
            })
        })
        .collect();
    serde_json::json!({
        "username": "AWOOOI",
        "content": super::shorten(&message.payload.summary(), 1900),
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": super::shorten(&message.payload.summary(), 250),
            "url": message.link,
            "color": colour(message),
            "fields": fields,
            "timestamp": message.payload.at.to_rfc3339(),
            "footer": {"text": message.key},
        }],
    })
}

impl Channel for DiscordChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn describe(&self) -> String {
        format!("Discord webhook on {}", self.url.host_str().unwrap_or("?"))
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let sent = self
                .http
                .post(self.url.clone())
                .json(&body(message))
                .send()
                .await;
            super::http_outcome(sent).await.map(drop)
        })
    }
}
