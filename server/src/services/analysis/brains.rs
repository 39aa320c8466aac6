//! Brain providers that do IO: LLMs over HTTP — Ollama (`/api/chat`, streamed NDJSON), any
//! OpenAI-compatible server (`/chat/completions`, SSE: OpenAI, vLLM, llama.cpp server,
//! LM Studio) and Anthropic (`/v1/messages`, SSE). Every provider streams the model's reasoning
//! as thinking events, is bounded by a timeout and a few retries on transient failures, gets
//! one repair attempt when its answer is unusable, and otherwise hands over to the rules brain,
//! saying so in the stream. Prompts come only from the pseudonymised investigation.

use std::time::Duration;

use engine::brain::prompt::{self, PROMPT_BUDGET_TOKENS};
use engine::brain::{
    Brain, BrainError, Investigated, Investigation, RulesBrain, ThinkingKind, ThinkingStep, Usage,
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

/// `[brain]` in the configuration file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrainConfig {
    /// `rules` (default, offline), `ollama`, `openai` or `anthropic`.
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    /// e.g. `http://127.0.0.1:11434` (Ollama), `https://api.openai.com/v1`,
    /// `https://api.anthropic.com`.
    #[serde(default)]
    pub base_url: String,
    /// Also `AWOOOI_BRAIN_API_KEY`.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// USD per million input / output tokens, for the cost estimate.
    #[serde(default)]
    pub input_usd_per_mtok: f64,
    #[serde(default)]
    pub output_usd_per_mtok: f64,
    /// The first analysis of an incident waits until no alert has joined it for this long
    /// (like Alertmanager's `group_wait`); a re-analysis waits the same after the change that
    /// starts it.
    #[serde(default = "default_quiet")]
    pub quiet_seconds: f64,
    /// …but never longer than this after the first change it waits on.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: f64,
    /// Automatic analyses per incident at most (`analyzeIncident` is not counted).
    #[serde(default = "default_max_runs")]
    pub max_runs: u32,
}

fn default_provider() -> String {
    "rules".into()
}
fn default_timeout() -> u64 {
    60
}
fn default_retries() -> u32 {
    2
}
fn default_quiet() -> f64 {
    3.0
}
fn default_max_wait() -> f64 {
    30.0
}
fn default_max_runs() -> u32 {
    5
}

impl Default for BrainConfig {
    fn default() -> Self {
        BrainConfig {
            provider: default_provider(),
            model: String::new(),
            base_url: String::new(),
            api_key: None,
            timeout_seconds: default_timeout(),
            max_retries: default_retries(),
            input_usd_per_mtok: 0.0,
            output_usd_per_mtok: 0.0,
            quiet_seconds: default_quiet(),
            max_wait_seconds: default_max_wait(),
            max_runs: default_max_runs(),
        }
    }
}

impl std::fmt::Debug for BrainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrainConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl BrainConfig {
    /// The settling times, checked: non-negative, finite, the cap not below the quiet period.
    pub fn settling(&self) -> anyhow::Result<(Duration, Duration)> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && (0.0..=3_600.0).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(anyhow::anyhow!(
                    "[brain] {name} = {value}: must be between 0 and 3600 seconds"
                ))
            }
        };
        let quiet = seconds("quiet_seconds", self.quiet_seconds)?;
        let cap = seconds("max_wait_seconds", self.max_wait_seconds)?;
        if cap < quiet {
            anyhow::bail!(
                "[brain] max_wait_seconds = {} is shorter than quiet_seconds = {}",
                self.max_wait_seconds,
                self.quiet_seconds
            );
        }
        Ok((quiet, cap))
    }

    /// Estimated USD for `usage`.
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_usd_per_mtok
            + usage.output_tokens as f64 * self.output_usd_per_mtok)
            / 1_000_000.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ollama,
    OpenAi,
    Anthropic,
}

/// The configured brain.
pub enum AnyBrain {
    Rules(RulesBrain),
    Llm(Box<LlmBrain>),
}

impl AnyBrain {
    pub fn from_config(config: &BrainConfig) -> anyhow::Result<AnyBrain> {
        let provider = match config.provider.as_str() {
            "rules" => return Ok(AnyBrain::Rules(RulesBrain)),
            "ollama" => Provider::Ollama,
            "openai" => Provider::OpenAi,
            "anthropic" => Provider::Anthropic,
            other => anyhow::bail!(
                "invalid setting `brain.provider`: `{other}`; expected rules, ollama, openai or anthropic"
            ),
        };
        anyhow::ensure!(
            !config.model.is_empty(),
            "brain.model is required for {}",
            config.provider
        );
        anyhow::ensure!(
            !config.base_url.is_empty(),
            "brain.base_url is required for {}",
            config.provider
        );
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(AnyBrain::Llm(Box::new(LlmBrain {
            provider,
            config: config.clone(),
            client,
        })))
    }
}

impl Brain for AnyBrain {
    fn name(&self) -> &str {
        match self {
            AnyBrain::Rules(b) => b.name(),
            AnyBrain::Llm(b) => b.name(),
        }
    }

    async fn investigate(
        &self,
        input: &Investigation,
        emit: &mut (dyn FnMut(ThinkingStep) + Send),
    ) -> Result<Investigated, BrainError> {
        match self {
            AnyBrain::Rules(b) => b.investigate(input, emit).await,
            AnyBrain::Llm(b) => b.investigate(input, emit).await,
        }
    }
}

pub struct LlmBrain {
    provider: Provider,
    config: BrainConfig,
    client: reqwest::Client,
}

/// Why one request failed, and whether trying again could help.
#[derive(Debug)]
struct CallError {
    message: String,
    transient: bool,
}

/// A chat message.
#[derive(Clone)]
struct Message {
    role: &'static str,
    content: String,
}

/// Turns streamed text into thinking events, line by line, stopping at the JSON answer.
struct Narrator<'e> {
    emit: &'e mut (dyn FnMut(ThinkingStep) + Send),
    line: String,
    in_answer: bool,
}

impl Narrator<'_> {
    fn push(&mut self, delta: &str) {
        for c in delta.chars() {
            if c == '\n' {
                self.flush();
            } else {
                self.line.push(c);
            }
        }
    }

    fn flush(&mut self) {
        let line = std::mem::take(&mut self.line);
        let text = line.trim();
        if text.starts_with('{') || text.starts_with("```") {
            self.in_answer = true;
        }
        if !text.is_empty() && !self.in_answer {
            (self.emit)(ThinkingStep {
                kind: ThinkingKind::Thought,
                text: text.to_owned(),
            });
        }
    }
}

impl LlmBrain {
    fn label(&self) -> &'static str {
        match self.provider {
            Provider::Ollama => "ollama",
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    fn request(&self, messages: &[Message]) -> reqwest::RequestBuilder {
        let base = self.config.base_url.trim_end_matches('/');
        let key = self
            .config
            .api_key
            .clone()
            .or_else(|| std::env::var("AWOOOI_BRAIN_API_KEY").ok());
        let chat: Vec<Value> = messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        match self.provider {
            Provider::Ollama => self.client.post(format!("{base}/api/chat")).json(&json!({
                "model": self.config.model, "messages": chat, "stream": true,
            })),
            Provider::OpenAi => {
                let request = self
                    .client
                    .post(format!("{base}/chat/completions"))
                    .json(&json!({
                        "model": self.config.model, "messages": chat, "stream": true,
                        "stream_options": {"include_usage": true},
                    }));
                match key {
                    Some(key) => request.bearer_auth(key),
                    None => request,
                }
            }
            Provider::Anthropic => {
                let system = messages
                    .iter()
                    .filter(|m| m.role == "system")
                    .map(|m| m.content.clone())
                    .collect::<Vec<_>>()
                    .join("\n");
                let rest: Vec<&Value> = chat.iter().filter(|m| m["role"] != "system").collect();
                self.client
                    .post(format!("{base}/v1/messages"))
                    .header("x-api-key", key.unwrap_or_default())
                    .header("anthropic-version", "2023-06-01")
                    .json(&json!({
                        "model": self.config.model, "max_tokens": 2048, "system": system,
                        "messages": rest, "stream": true,
                    }))
            }
        }
    }

    /// One streamed completion: the full text, and the provider's token counts.
    async fn call(
        &self,
        messages: &[Message],
        narrator: &mut Narrator<'_>,
    ) -> Result<(String, Usage), CallError> {
        let response = self.request(messages).send().await.map_err(|e| CallError {
            message: format!("request failed: {e}"),
            transient: true,
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(CallError {
                message: format!("HTTP {status}"),
                transient: status.is_server_error() || status.as_u16() == 429,
            });
        }
        let mut text = String::new();
        let mut usage = Usage::default();
        let mut buffer = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| CallError {
                message: format!("stream broke: {e}"),
                transient: true,
            })?;
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(delta) = self.read_line(line.trim(), &mut usage) {
                    narrator.push(&delta);
                    text.push_str(&delta);
                }
            }
        }
        narrator.flush();
        Ok((text, usage))
    }

    /// Text carried by one line of the provider's stream, and any token counts.
    fn read_line(&self, line: &str, usage: &mut Usage) -> Option<String> {
        let payload = match self.provider {
            Provider::Ollama => line,
            Provider::OpenAi | Provider::Anthropic => line.strip_prefix("data:")?.trim(),
        };
        if payload.is_empty() || payload == "[DONE]" {
            return None;
        }
        let value: Value = serde_json::from_str(payload).ok()?;
        match self.provider {
            Provider::Ollama => {
                if value["done"] == true {
                    usage.input_tokens = value["prompt_eval_count"].as_u64().unwrap_or(0);
                    usage.output_tokens = value["eval_count"].as_u64().unwrap_or(0);
                }
                value["message"]["content"].as_str().map(str::to_owned)
            }
            Provider::OpenAi => {
                if let Some(u) = value.get("usage").filter(|u| u.is_object()) {
                    usage.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(0);
                    usage.output_tokens = u["completion_tokens"].as_u64().unwrap_or(0);
                }
                value["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            }
            Provider::Anthropic => match value["type"].as_str()? {
                "message_start" => {
                    usage.input_tokens = value["message"]["usage"]["input_tokens"]
                        .as_u64()
                        .unwrap_or(0);
                    None
                }
                "message_delta" => {
                    usage.output_tokens = value["usage"]["output_tokens"].as_u64().unwrap_or(0);
                    None
                }
                "content_block_delta" => value["delta"]["text"].as_str().map(str::to_owned),
                _ => None,
            },
        }
    }

    /// A call with a timeout and bounded retries on transient failures.
    async fn call_with_retries(
        &self,
        messages: &[Message],
        narrator: &mut Narrator<'_>,
    ) -> Result<(String, Usage), CallError> {
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let mut attempt = 0;
        loop {
            let result = match tokio::time::timeout(timeout, self.call(messages, narrator)).await {
                Ok(result) => result,
                Err(_) => Err(CallError {
                    message: format!("no answer within {} s", self.config.timeout_seconds),
                    transient: true,
                }),
            };
            match result {
                Err(error) if error.transient && attempt < self.config.max_retries => {
                    attempt += 1;
                    tracing::warn!(provider = self.label(), attempt, error = %error.message, "brain call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                other => return other,
            }
        }
    }

    fn fallback(
        &self,
        input: &Investigation,
        emit: &mut (dyn FnMut(ThinkingStep) + Send),
        usage: Usage,
        why: String,
    ) -> Investigated {
        emit(ThinkingStep {
            kind: ThinkingKind::Thought,
            text: format!("{why}; the rules brain takes over."),
        });
        let (steps, proposal) = RulesBrain.reason(input);
        for step in steps {
            emit(step);
        }
        Investigated {
            proposal,
            usage,
            brain: "rules".into(),
        }
    }
}

impl Brain for LlmBrain {
    fn name(&self) -> &str {
        self.label()
    }

    async fn investigate(
        &self,
        input: &Investigation,
        emit: &mut (dyn FnMut(ThinkingStep) + Send),
    ) -> Result<Investigated, BrainError> {
        let prompt = prompt::build(input, PROMPT_BUDGET_TOKENS);
        emit(ThinkingStep {
            kind: ThinkingKind::ToolCall,
            text: format!(
                "{} {} (prompt ~{} tokens)",
                self.label(),
                self.config.model,
                prompt.estimated_tokens()
            ),
        });
        let mut messages = vec![
            Message {
                role: "system",
                content: prompt.system,
            },
            Message {
                role: "user",
                content: prompt.user,
            },
        ];
        let mut usage = Usage::default();
        for attempt in 0..2 {
            let mut narrator = Narrator {
                emit: &mut *emit,
                line: String::new(),
                in_answer: false,
            };
            let answer = self.call_with_retries(&messages, &mut narrator).await;
            let (text, used) = match answer {
                Ok(ok) => ok,
                Err(error) => {
                    let why = format!("{} failed: {}", self.label(), error.message);
                    return Ok(self.fallback(input, emit, usage, why));
                }
            };
            usage.input_tokens += used.input_tokens;
            usage.output_tokens += used.output_tokens;
            match prompt::parse_answer(&text) {
                Ok(proposal) => {
                    emit(ThinkingStep {
                        kind: ThinkingKind::Conclusion,
                        text: proposal.summary.clone(),
                    });
                    return Ok(Investigated {
                        proposal,
                        usage,
                        brain: self.label().into(),
                    });
                }
                Err(error) if attempt == 0 => {
                    emit(ThinkingStep {
                        kind: ThinkingKind::Observation,
                        text: format!("The answer was unusable ({error}); asking once more."),
                    });
                    messages.push(Message {
                        role: "assistant",
                        content: text,
                    });
                    messages.push(Message {
                        role: "user",
                        content: prompt::repair_request(&error),
                    });
                }
                Err(error) => {
                    let why = format!("the answer was unusable again ({error})");
                    return Ok(self.fallback(input, emit, usage, why));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}
