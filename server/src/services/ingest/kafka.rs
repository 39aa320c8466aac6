//! Alerts from Kafka topics: `[streams.kafka]`, the consumer's state for `/readyz`, and (with
//! the `kafka` feature) the consumer itself in [`consumer`].
//!
//! At-least-once in, exactly-once effect: a record's alerts are committed to the database with
//! `kafka:<topic>:<partition>:<offset>` as the idempotency key, in the same transaction, and
//! only then is its offset committed to the group. A record delivered again — after a crash, or
//! to another replica after a rebalance — changes nothing. A record that cannot be parsed goes
//! to its topic's dead-letter topic with the reason, and its offset moves on. While the
//! database refuses writes the consumer pauses its partitions and commits nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Deserialize;

use super::streams::PayloadFormat;

#[cfg(feature = "kafka")]
pub mod consumer;

/// `[streams.kafka]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The consumer group every replica joins; the topics' partitions are shared among them.
    #[serde(default = "default_group")]
    pub group: String,
    /// `[[streams.kafka.topics]]`: each topic, its payload format and dead-letter topic.
    pub topics: Vec<KafkaTopic>,
    /// Records read (at most) per database round.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Client id shown by the brokers (default `awoooi`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// `[streams.kafka.tls]`: connect with TLS.
    #[serde(default)]
    pub tls: Option<KafkaTls>,
    /// `[streams.kafka.sasl]`: authenticate with SASL PLAIN or SCRAM.
    #[serde(default)]
    pub sasl: Option<KafkaSasl>,
    /// How often the lag per partition is measured for `/metrics` (seconds).
    #[serde(default = "default_lag_interval")]
    pub lag_interval_seconds: u64,
    /// Further librdkafka properties, passed as given (e.g. `session.timeout.ms`). The ones
    /// the delivery guarantee rests on (group, offsets, commits) cannot be set here.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// One consumed topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTopic {
    pub name: String,
    /// `alertmanager`, `grafana` or `generic` (default): the webhooks' parsers.
    #[serde(default)]
    pub format: PayloadFormat,
    /// Where records that cannot be parsed go (default `<name>.dead`).
    #[serde(default)]
    pub dead_letter: Option<String>,
}

impl KafkaTopic {
    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dead", self.name))
    }
}

/// TLS to the brokers: the CA to trust (default: the system's) and an optional client
/// certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTls {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// SASL authentication; the password is read from an environment variable, never the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    /// The environment variable holding the password.
    #[serde(default = "default_password_env")]
    pub password_env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

fn default_group() -> String {
    "awoooi".into()
}
fn default_batch() -> usize {
    500
}
fn default_lag_interval() -> u64 {
    5
}
fn default_password_env() -> String {
    "AWOOOI_KAFKA_SASL_PASSWORD".into()
}

/// librdkafka properties the consumer sets itself: the guarantee depends on them.
const RESERVED: [&str; 5] = [
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "bootstrap.servers",
    "sasl.password",
];

impl KafkaConfig {
    /// Checks the section; the error names the setting and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.brokers.trim().is_empty() {
            return Err((
                "streams.kafka.brokers",
                "must name at least one broker".into(),
            ));
        }
        if self.group.trim().is_empty() {
            return Err(("streams.kafka.group", "must not be empty".into()));
        }
        if self.topics.is_empty() {
            return Err((
                "streams.kafka.topics",
                "must list at least one topic".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for topic in &self.topics {
            for name in [topic.name.clone(), topic.dead_letter_topic()] {
                valid_topic_name(&name).map_err(|message| ("streams.kafka.topics", message))?;
            }
            if !seen.insert(topic.name.as_str()) {
                return Err((
                    "streams.kafka.topics",
                    format!("topic `{}` is listed twice", topic.name),
                ));
            }
            if self
                .topics
                .iter()
                .any(|t| t.name == topic.dead_letter_topic())
            {
                return Err((
                    "streams.kafka.topics",
                    format!(
                        "`{}` is both consumed and the dead-letter topic of `{}`",
                        topic.dead_letter_topic(),
                        topic.name
                    ),
                ));
            }
        }
        if self.batch == 0 {
            return Err(("streams.kafka.batch", "must be at least 1".into()));
        }
        if self.lag_interval_seconds == 0 {
            return Err((
                "streams.kafka.lag_interval_seconds",
                "must be at least 1".into(),
            ));
        }
        if let Some(key) = self.options.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err((
                "streams.kafka.options",
                format!("`{key}` is set by AWOOOI itself and cannot be overridden"),
            ));
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err((
                "streams.kafka.tls",
                "cert_file and key_file go together".into(),
            ));
        }
        Ok(())
    }

    /// The format of `topic`'s records (a topic not configured reads as generic).
    pub fn format_of(&self, topic: &str) -> PayloadFormat {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .map(|t| t.format)
            .unwrap_or_default()
    }

    /// The dead-letter topic of `topic`.
    pub fn dead_letter_of(&self, topic: &str) -> String {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .map(KafkaTopic::dead_letter_topic)
            .unwrap_or_else(|| format!("{topic}.dead"))
    }

    /// The connection's librdkafka properties (shared by the consumer and the dead-letter
    /// producer): servers, client id, security; `env` reads the SASL password's variable.
    pub fn connection_properties(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, String)>, String> {
        let mut props = vec![
            ("bootstrap.servers".to_owned(), self.brokers.clone()),
            (
                "client.id".to_owned(),
                self.client_id.clone().unwrap_or_else(|| "awoooi".into()),
            ),
        ];
        let protocol = match (&self.tls, &self.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        props.push(("security.protocol".into(), protocol.into()));
        if let Some(tls) = &self.tls {
            for (key, path) in [
                ("ssl.ca.location", &tls.ca_file),
                ("ssl.certificate.location", &tls.cert_file),
                ("ssl.key.location", &tls.key_file),
            ] {
                if let Some(path) = path {
                    if !path.is_file() {
                        return Err(format!(
                            "streams.kafka.tls: {} does not exist",
                            path.display()
                        ));
                    }
                    props.push((key.into(), path.display().to_string()));
                }
            }
        }
        if let Some(sasl) = &self.sasl {
            let password = env(&sasl.password_env).ok_or_else(|| {
                format!(
                    "streams.kafka.sasl: the password variable {} is not set",
                    sasl.password_env
                )
            })?;
            props.push(("sasl.mechanism".into(), sasl.mechanism.name().into()));
            props.push(("sasl.username".into(), sasl.username.clone()));
            props.push(("sasl.password".into(), password));
        }
        Ok(props)
    }
}

/// Kafka's rule for topic names: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn valid_topic_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Kafka topic name (1–249 of letters, digits, `.`, `_`, `-`)"
        ))
    }
}

/// What the Kafka input is doing, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputState {
    /// Configured, not yet in its group.
    Starting,
    Consuming,
    /// Partitions paused: the database refused the last batch; nothing is committed.
    Paused {
        reason: String,
    },
}

/// The input's state, shared between the consumer and `/readyz`.
#[derive(Debug)]
pub struct InputStatus(Mutex<InputState>);

impl Default for InputStatus {
    fn default() -> Self {
        InputStatus(Mutex::new(InputState::Starting))
    }
}

impl InputStatus {
    pub fn get(&self) -> InputState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, state: InputState) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The line `/readyz` shows, and whether the input holds readiness back.
    pub fn describe(&self) -> (String, bool) {
        match self.get() {
            InputState::Starting => ("starting".into(), true),
            InputState::Consuming => ("consuming".into(), true),
            InputState::Paused { reason } => (format!("paused: {reason}"), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> KafkaConfig {
        toml::from_str(toml).unwrap()
    }

    const BASE: &str = r#"
        brokers = "127.0.0.1:9092"
        [[topics]]
        name = "alerts"
        format = "alertmanager"
    "#;

    #[test]
    fn defaults_are_the_awoooi_group_and_a_dead_topic_beside_each_topic() {
        let c = config(BASE);
        assert_eq!(c.group, "awoooi");
        assert_eq!(c.batch, 500);
        assert_eq!(c.format_of("alerts"), PayloadFormat::Alertmanager);
        assert_eq!(c.dead_letter_of("alerts"), "alerts.dead");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn invalid_sections_name_the_setting() {
        let no_topics = config("brokers = \"b:9092\"\ntopics = []");
        assert_eq!(no_topics.validate().unwrap_err().0, "streams.kafka.topics");
        let bad_name = config("brokers = \"b:9092\"\n[[topics]]\nname = \"al erts\"");
        let (key, message) = bad_name.validate().unwrap_err();
        assert_eq!(key, "streams.kafka.topics");
        assert!(message.contains("`al erts`"), "{message}");
        let loop_ = config(
            "brokers = \"b:9092\"\n[[topics]]\nname = \"a\"\ndead_letter = \"b\"\n[[topics]]\nname = \"b\"",
        );
        assert!(loop_.validate().unwrap_err().1.contains("both consumed"));
        let reserved = config(&format!(
            "{BASE}\n[options]\n\"enable.auto.commit\" = \"true\""
        ));
        let (key, message) = reserved.validate().unwrap_err();
        assert_eq!(key, "streams.kafka.options");
        assert!(message.contains("enable.auto.commit"), "{message}");
        assert!(
            toml::from_str::<KafkaConfig>(&format!("{BASE}\nformat = \"xml\"")).is_err(),
            "an unknown key is refused"
        );
    }

    #[test]
    fn security_settings_become_the_matching_protocol() {
        let plain = config(BASE).connection_properties(|_| None).unwrap();
        assert!(plain.contains(&("security.protocol".into(), "plaintext".into())));

        let sasl = config(&format!(
            "{BASE}\n[sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"awoooi\""
        ));
        let missing = sasl.connection_properties(|_| None).unwrap_err();
        assert!(missing.contains("AWOOOI_KAFKA_SASL_PASSWORD"), "{missing}");
        let props = sasl
            .connection_properties(|name| {
                (name == "AWOOOI_KAFKA_SASL_PASSWORD").then(|| "s3cret".to_owned())
            })
            .unwrap();
        for pair in [
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "awoooi"),
            ("sasl.password", "s3cret"),
        ] {
            assert!(
                props.contains(&(pair.0.into(), pair.1.into())),
                "{pair:?} in {props:?}"
            );
        }

        let tls = config(&format!("{BASE}\n[tls]\nca_file = \"/nonexistent/ca.pem\""));
        assert!(
            tls.connection_properties(|_| None)
                .unwrap_err()
                .contains("/nonexistent/ca.pem")
        );
        let tls_only = config(&format!("{BASE}\n[tls]"));
        assert!(
            tls_only
                .connection_properties(|_| None)
                .unwrap()
                .contains(&("security.protocol".into(), "ssl".into()))
        );
    }
}
