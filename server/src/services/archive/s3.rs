//! The S3 store: requests signed by `rusty-s3` (SigV4, presigned for a minute) and sent with
//! the server's reqwest client. Works with AWS and S3-compatible servers (path-style or
//! virtual-host addressing). Credentials come from the environment, never the config file.

use std::time::Duration;

use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde::Deserialize;

/// `[archive.s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, …
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers
    /// want; `false` for virtual-host style (`bucket.endpoint/key`).
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Prepended to every key, e.g. `prod/`.
    #[serde(default)]
    pub prefix: String,
    /// From the environment (see [`S3Credentials::from_env`]), never from the file.
    #[serde(skip)]
    pub credentials: Option<S3Credentials>,
}

/// An access key, its secret and an optional session token.
#[derive(Clone)]
pub struct S3Credentials {
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3Credentials {{ key: {:?}, secret: <hidden> }}",
            self.key
        )
    }
}

impl S3Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optionally) `AWS_SESSION_TOKEN`
    /// through `env`; blank values count as unset.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<S3Credentials> {
        let var = |name| env(name).filter(|v| !v.trim().is_empty());
        Some(S3Credentials {
            key: var("AWS_ACCESS_KEY_ID")?,
            secret: var("AWS_SECRET_ACCESS_KEY")?,
            token: var("AWS_SESSION_TOKEN"),
        })
    }
}

fn default_region() -> String {
    "us-east-1".into()
}
fn yes() -> bool {
    true
}

impl S3Config {
    pub fn validate(&self) -> Result<(), String> {
        let url: reqwest::Url = self
            .endpoint
            .parse()
            .map_err(|e| format!("endpoint `{}` is not a URL: {e}", self.endpoint))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "endpoint `{}` must be an http or https URL with a host",
                self.endpoint
            ));
        }
        if self.bucket.trim().is_empty() {
            return Err("bucket is empty".into());
        }
        if self.region.trim().is_empty() {
            return Err("region is empty".into());
        }
        Ok(())
    }
}

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(60);
/// Each request's timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One bucket of an S3-compatible store.
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
    prefix: String,
}

/// A failed request as an operator reads it: what, the status and the store's error code —
/// never the signed URL (its query carries the signature).
fn failure(what: &str, key: &str, status: reqwest::StatusCode, body: &str) -> String {
    let code = body
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("");
    format!("S3 {what} `{key}`: HTTP {status} {code}")
        .trim_end()
        .to_owned()
}

fn unreachable(what: &str, key: &str, error: reqwest::Error) -> String {
    // reqwest's message can include the URL; keep only its kind.
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("S3 {what} `{key}`: {kind}")
}

impl S3Store {
    /// The store of `config`, with its credentials (resolved from the environment).
    pub fn connect(config: &S3Config) -> Result<S3Store, String> {
        config.validate().map_err(|e| format!("[archive.s3] {e}"))?;
        let given = config.credentials.as_ref().ok_or(
            "[archive.s3] needs credentials in the environment: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
        )?;
        let credentials = match &given.token {
            Some(token) => {
                Credentials::new_with_token(given.key.clone(), given.secret.clone(), token.clone())
            }
            None => Credentials::new(given.key.clone(), given.secret.clone()),
        };
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|e| format!("[archive.s3] endpoint: {e}"))?;
        let bucket = Bucket::new(
            endpoint,
            style,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| format!("[archive.s3] bucket `{}`: {e}", config.bucket))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("[archive.s3] HTTP client: {e}"))?;
        Ok(S3Store {
            bucket,
            credentials,
            http,
            prefix: config.prefix.clone(),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Stores `body` under `key` (replacing what is there: keys are content-addressed, so
    /// that is the same content).
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        let full = self.full(key);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &full)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable("PUT", &full, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(failure("PUT", &full, status, &text))
    }

    /// The object under `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable("GET", key, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = response
            .text()
            .await
            .map_err(|e| unreachable("GET", key, e))?;
        if !status.is_success() {
            return Err(failure("GET", key, status, &text));
        }
        Ok(Some(text))
    }

    /// Every key under `prefix` (after the configured prefix), in the store's order (sorted).
    /// Keys are returned whole, ready for [`S3Store::get`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let full = self.full(prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(full.as_str());
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| unreachable("LIST", &full, e))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| unreachable("LIST", &full, e))?;
            if !status.is_success() {
                return Err(failure("LIST", &full, status, &text));
            }
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| format!("S3 LIST `{full}`: unreadable answer: {e}"))?;
            keys.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Creates the bucket if the store does not have it (for a fresh S3-compatible server;
    /// on AWS the bucket is usually made beforehand and this finds it).
    pub async fn ensure_bucket(&self) -> Result<(), String> {
        let name = self.bucket.name().to_owned();
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGNED_FOR);
        let response = self
            .http
            .head(url)
            .send()
            .await
            .map_err(|e| unreachable("HEAD bucket", &name, e))?;
        if response.status().is_success() {
            return Ok(());
        }
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .put(url)
            .send()
            .await
            .map_err(|e| unreachable("CREATE bucket", &name, e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(failure("CREATE bucket", &name, status, &text))
    }
}
