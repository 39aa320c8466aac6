//! Email over SMTP with lettre: STARTTLS (the default), implicit TLS or none, optional
//! authentication; each message plain text and HTML, its `Message-ID` the idempotency key.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use super::BoxFuture;
use super::{Channel, ChannelConfig, ChannelKind, Message, Secret};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// `email = { … }` of an email channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default: 587 for STARTTLS, 465 for TLS, 25 for none.
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file of an extra CA to trust (a private relay's own certificate).
    pub ca_file: Option<std::path::PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    /// Seconds per SMTP conversation (default 20).
    pub timeout_seconds: Option<u64>,
}

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    describe: String,
}

impl EmailChannel {
    pub fn new(config: &ChannelConfig) -> Result<EmailChannel, String> {
        let c = config
            .email
            .as_ref()
            .ok_or("`email = { host, from, to, … }` is required")?;
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("email.from `{}` is not an address: {e}", c.from))?;
        if c.to.is_empty() {
            return Err("email.to names no recipient".into());
        }
        let to =
            c.to.iter()
                .map(|t| {
                    t.parse::<Mailbox>()
                        .map_err(|e| format!("email.to `{t}` is not an address: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
        let port = c.port.unwrap_or(match c.tls {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        });
        let tls = match c.tls {
            TlsMode::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(c.host.clone());
                if let Some(path) = &c.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("email.ca_file {}: {e}", path.display()))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| format!("email.ca_file {}: {e}", path.display()))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build().map_err(|e| format!("email TLS: {e}"))?;
                if mode == TlsMode::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(c.timeout_seconds.unwrap_or(20))));
        match (&c.username, &c.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
            }
            (None, None) => {}
            _ => return Err("email.username and email.password go together".into()),
        }
        let mode = match c.tls {
            TlsMode::Starttls => "STARTTLS",
            TlsMode::Tls => "TLS",
            TlsMode::None => "no TLS",
        };
        Ok(EmailChannel {
            transport: builder.build(),
            describe: format!("{} recipient(s) via {}:{port} ({mode})", to.len(), c.host),
            from,
            to,
        })
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The plain-text and HTML bodies.
pub fn bodies(message: &Message<'_>) -> (String, String) {
    let summary = message.payload.summary();
    let facts = message.payload.facts();
    let mut plain = format!("{summary}\n\n");
    for (name, value) in &facts {
        plain.push_str(&format!("{name}: {value}\n"));
    }
    plain.push_str(&format!(
        "\n{}\n\n-- AWOOOI ({})\n",
        message.link, message.key
    ));
    let rows: String = facts
        .iter()
        .map(|(name, value)| {
            format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html><body><h2>{}</h2><table>{rows}</table>\
         <p><a href=\"{}\">Open in AWOOOI</a></p><p style=\"color:#888\">{}</p></body></html>",
        escape(&summary),
        escape(&message.link),
        escape(message.key)
    );
    (plain, html)
}

impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn send<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (plain, html) = bodies(message);
            let mut builder = lettre::Message::builder()
                .from(self.from.clone())
                .subject(super::shorten(
                    &format!("[AWOOOI] {}", message.payload.summary()),
                    200,
                ))
                .message_id(Some(format!("<{}@awoooi>", message.key)));
            for to in &self.to {
                builder = builder.to(to.clone());
            }
            let email = builder
                .multipart(MultiPart::alternative_plain_html(plain, html))
                .map_err(|e| format!("cannot build the email: {e}"))?;
            self.transport
                .send(email)
                .await
                .map(drop)
                .map_err(|e| format!("SMTP: {e}"))
        })
    }
}
