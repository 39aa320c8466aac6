//! `[notifications]`: channels, routing rules and retries, validated.

use super::*;

/// A string that never prints itself.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Discord,
    Email,
    Webhook,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "SLACK",
            ChannelKind::Discord => "DISCORD",
            ChannelKind::Email => "EMAIL",
            ChannelKind::Webhook => "WEBHOOK",
        }
    }
}

/// `[[notifications.channels]]`: one way out. Which keys apply depends on `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Slack incoming webhook, Discord webhook, or the generic webhook's address.
    pub url: Option<Secret>,
    /// Slack `chat.postMessage`: a bot token and the channel to post in.
    pub token: Option<Secret>,
    pub channel: Option<String>,
    /// Slack's Web API base (default `https://slack.com/api`).
    pub api_url: Option<String>,
    /// The generic webhook's HMAC-SHA256 key (`X-Awoooi-Signature: sha256=<hex>`).
    pub secret: Option<Secret>,
    #[serde(default)]
    pub email: Option<email::EmailConfig>,
}

/// `[[notifications.routes]]`: which events go where. An empty list matches everything.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub events: Vec<EventKind>,
    #[serde(default)]
    pub severities: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub channels: Vec<String>,
}

impl Route {
    pub fn matches(&self, payload: &Payload) -> bool {
        let incident = payload.incident.as_ref();
        let one_of = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        };
        (self.events.is_empty() || self.events.contains(&payload.event))
            && one_of(&self.severities, incident.map(|i| i.severity.as_str()))
            && one_of(&self.services, incident.and_then(|i| i.service.as_deref()))
            && one_of(&self.namespaces, payload.namespace.as_deref())
    }
}

/// `[notifications.retry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before a delivery is dead-lettered (default 8).
    pub attempts: u32,
    /// First back-off, doubled on each failure (default 2000 ms) …
    pub base_ms: u64,
    /// … up to this (default 10 minutes).
    pub max_ms: u64,
    /// How long a worker owns a delivery it is sending (default 60 s).
    pub lease_seconds: u64,
    /// How often the worker looks for work (default 500 ms).
    pub poll_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 8,
            base_ms: 2_000,
            max_ms: 600_000,
            lease_seconds: 60,
            poll_ms: 500,
        }
    }
}

impl RetryConfig {
    /// The wait after the `attempt`-th failure (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(30);
        Duration::from_millis(self.base_ms.saturating_mul(factor).min(self.max_ms))
    }
}

/// `[notifications]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The console's address as people reach it, for links (default `http://<bind>`).
    pub public_url: Option<String>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// None: every event to every channel.
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Slack's interactive buttons (`POST /api/v1/slack/interactions`).
    #[serde(default)]
    pub slack: slack::InteractionsConfig,
    /// Days an event is kept once every delivery of it is DELIVERED (default 30; 0 keeps
    /// everything). Dead letters and pending deliveries are never purged.
    pub keep_days: Option<u32>,
}

impl NotifyConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for c in &self.channels {
            if c.name.trim().is_empty() || c.name.len() > 64 {
                return Err("channels: every channel needs a name of 1-64 characters".into());
            }
            if !names.insert(c.name.as_str()) {
                return Err(format!("channels: the name `{}` is used twice", c.name));
            }
            build_channel(c, &reqwest::Client::new())
                .map_err(|e| format!("channel `{}`: {e}", c.name))?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.channels.is_empty() {
                return Err(format!("routes[{i}]: `channels` names no channel"));
            }
            if let Some(unknown) = r.channels.iter().find(|c| !names.contains(c.as_str())) {
                return Err(format!("routes[{i}]: no channel is named `{unknown}`"));
            }
            if let Some(bad) = r
                .severities
                .iter()
                .find(|s| Severity::from_stored(&s.to_ascii_uppercase()).is_err())
            {
                return Err(format!(
                    "routes[{i}]: severity `{bad}` is not CRITICAL, WARNING or INFO"
                ));
            }
        }
        let r = &self.retry;
        if r.attempts == 0
            || r.base_ms == 0
            || r.max_ms < r.base_ms
            || r.lease_seconds == 0
            || r.poll_ms == 0
        {
            return Err("retry: attempts, base_ms, lease_seconds and poll_ms must be positive, max_ms ≥ base_ms".into());
        }
        self.slack.validate()
    }

    /// The channels an event goes to, in configuration order, each once.
    pub fn route(&self, payload: &Payload) -> Vec<String> {
        // A channel step of an escalation names its channel: that one, whatever the routes.
        if let Some(channel) = payload.page.as_ref().and_then(|p| p.channel.as_ref()) {
            return self
                .channels
                .iter()
                .filter(|c| &c.name == channel)
                .map(|c| c.name.clone())
                .collect();
        }
        if self.routes.is_empty() {
            return self.channels.iter().map(|c| c.name.clone()).collect();
        }
        let wanted: std::collections::HashSet<&str> = self
            .routes
            .iter()
            .filter(|r| r.matches(payload))
            .flat_map(|r| r.channels.iter().map(String::as_str))
            .collect();
        self.channels
            .iter()
            .filter(|c| wanted.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect()
    }
}

/// The channel `config` describes, ready to send.
pub(super) fn build_channel(
    config: &ChannelConfig,
    http: &reqwest::Client,
) -> Result<Box<dyn Channel>, String> {
    Ok(match config.kind {
        ChannelKind::Slack => Box::new(slack::SlackChannel::new(config, http.clone())?),
        ChannelKind::Discord => Box::new(discord::DiscordChannel::new(config, http.clone())?),
        ChannelKind::Email => Box::new(email::EmailChannel::new(config)?),
        ChannelKind::Webhook => Box::new(webhook::WebhookChannel::new(config, http.clone())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(
        event: EventKind,
        severity: Severity,
        service: &str,
        namespace: Option<&str>,
    ) -> Payload {
        Payload {
            event,
            at: Utc::now(),
            actor: "awoooi".into(),
            incident: Some(IncidentFacts {
                id: 1,
                title: "t".into(),
                severity,
                status: IncidentStatus::Open,
                service: Some(service.into()),
                acknowledged_by: None,
            }),
            approval: None,
            namespace: namespace.map(str::to_owned),
            silence: None,
            page: None,
        }
    }

    fn channel(name: &str) -> ChannelConfig {
        ChannelConfig {
            name: name.into(),
            kind: ChannelKind::Webhook,
            url: Some(Secret("http://127.0.0.1:9/hook".into())),
            token: None,
            channel: None,
            api_url: None,
            secret: None,
            email: None,
        }
    }

    #[test]
    fn routes_match_events_severities_services_and_namespaces() {
        let config = NotifyConfig {
            channels: vec![channel("pager"), channel("chat"), channel("audit")],
            routes: vec![
                Route {
                    events: vec![EventKind::IncidentOpened],
                    severities: vec!["critical".into()],
                    channels: vec!["pager".into()],
                    ..Route::default()
                },
                Route {
                    namespaces: vec!["prod".into()],
                    services: vec!["order-api".into(), "auth-service".into()],
                    channels: vec!["chat".into(), "pager".into()],
                    ..Route::default()
                },
            ],
            ..NotifyConfig::default()
        };
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        let cases = [
            (
                payload(EventKind::IncidentOpened, Severity::Critical, "x", None),
                vec!["pager"],
            ),
            (
                payload(EventKind::IncidentOpened, Severity::Warning, "x", None),
                vec![],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    Some("prod"),
                ),
                vec!["pager", "chat"],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    Some("dev"),
                ),
                vec![],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    None,
                ),
                vec![],
            ),
        ];
        for (p, want) in cases {
            assert_eq!(
                config.route(&p),
                want,
                "{:?} {:?} {:?}",
                p.event,
                p.incident,
                p.namespace
            );
        }
        // No rules: everything to every channel.
        let open = NotifyConfig {
            channels: vec![channel("a"), channel("b")],
            ..NotifyConfig::default()
        };
        assert_eq!(
            open.route(&payload(EventKind::Test, Severity::Info, "x", None)),
            vec!["a", "b"]
        );
    }

    #[test]
    fn bad_routing_names_what_is_wrong() {
        let mut config = NotifyConfig {
            channels: vec![channel("a")],
            routes: vec![Route {
                channels: vec!["b".into()],
                ..Route::default()
            }],
            ..NotifyConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err(),
            "routes[0]: no channel is named `b`"
        );
        config.routes[0].channels = vec!["a".into()];
        config.routes[0].severities = vec!["LOUD".into()];
        assert!(config.validate().unwrap_err().contains("severity `LOUD`"));
        config.routes.clear();
        config.channels.push(channel("a"));
        assert_eq!(
            config.validate().unwrap_err(),
            "channels: the name `a` is used twice"
        );
        config.channels.pop();
        config.channels[0].url = None;
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("channel `a`: `url` is required")
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = RetryConfig {
            base_ms: 100,
            max_ms: 1_000,
            ..RetryConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| r.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
    }
}
