//! The `awoooi` command line. Every flag has an `AWOOOI_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::base::telemetry::LogFormat;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "awoooi",
    version,
    about = "AWOOOI — alerts in, root cause, dry-run fix and approval card out.",
    long_about = "AWOOOI — alerts in, root cause, dry-run fix and approval card out.\n\n\
                  Without a subcommand, `awoooi` serves the UI and the API (like `awoooi serve`).\n\
                  Settings come from defaults < the TOML file (--config) < AWOOOI_* environment < flags."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand understands (connection and logging).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "AWOOOI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and other local state.
    #[arg(long, global = true, env = "AWOOOI_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in --data-dir
    /// (`DATABASE_URL` is read too).
    #[arg(long, global = true, env = "AWOOOI_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis, for the cross-replica event bus and queues (`REDIS_URL` is read too).
    #[arg(long, global = true, env = "AWOOOI_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Log lines as text (default) or JSON.
    #[arg(long, global = true, env = "AWOOOI_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the UI, GraphQL and webhooks (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for integrations.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The knowledge base.
    #[command(subcommand)]
    Km(KmCommand),
    /// Print an incident's postmortem (Markdown): the one written when it resolved, else one
    /// generated from its record now.
    Postmortem {
        /// The incident's id.
        id: i32,
    },
    /// Pseudonymise standard input to standard output, line by line, with the Privacy Shield
    /// (labels consistent within one run; detectors from the config file's `[[shield.detectors]]`).
    Redact,
    /// Break something in a running server's simulated cluster, for demos and tests (needs an
    /// ADMIN token in AWOOOI_TOKEN).
    Chaos(ChaosArgs),
    /// Silences on a running server (AWOOOI_URL, AWOOOI_TOKEN): add, list, expire.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Serve MCP on stdin/stdout, acting through a running server's API with AWOOOI_TOKEN
    /// (its user is the requester of what it proposes).
    Mcp(RemoteArgs),
    /// Drive a running demo server through the five steps of the incident loop (webhook,
    /// GraphQL, MCP); exit 0 only if all pass.
    TracerBullet(TracerArgs),
    /// Run the evaluation suite: every scenario in each alert order against a fresh in-process
    /// server, graded (root cause, agreement, fix, dry-run, stale proposals, settling time).
    /// Exit 1 if a single-cause run missed.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The suite: `topologies/` and `scenarios/` inside it.
    #[arg(long, default_value = "evals")]
    pub dir: PathBuf,
    /// Order classes, comma-separated (cause-first, symptoms-first, random, noise, repeats,
    /// flap), or `all`.
    #[arg(long, default_value = "all")]
    pub orders: String,
    /// Only scenarios whose id or topology contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Only single-cause scenarios.
    #[arg(long)]
    pub single_cause: bool,
    /// The analysis's quiet period in milliseconds (the product's default is 3000; pauses
    /// between alerts scale with it).
    #[arg(long, default_value_t = 300)]
    pub quiet_ms: u64,
    /// Runs at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Seeds the random orders and pauses.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also write every graded run to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TracerArgs {
    /// The running server.
    #[arg(long, env = "AWOOOI_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// AWOOOI's MCP endpoint (default: <url>/mcp).
    #[arg(long)]
    pub mcp_url: Option<String>,
    /// The demo users' password.
    #[arg(long, env = "AWOOOI_DEMO_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Seconds a step may wait for the system (analysis, execution).
    #[arg(long, default_value_t = 30)]
    pub patience: u64,
    /// Which alert fires first: the database's (`cause-first`) or the frontend's
    /// (`symptoms-first`, as in production, where a symptom's `for:` is shorter).
    #[arg(long, value_enum, default_value_t = AlertOrder::CauseFirst)]
    pub order: AlertOrder,
    /// Seconds between the two alerts. The default outlasts the default quiet period
    /// (`[brain] quiet_seconds`, 3), so the first alert is analysed alone first.
    #[arg(long, default_value_t = 4.0)]
    pub gap: f64,
}

/// The order the tracer bullet fires the 3 AM scenario's alerts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertOrder {
    CauseFirst,
    SymptomsFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChaosKind {
    /// TARGET is a pod: it crash-loops.
    CrashPod,
    /// TARGET is a deployment: it runs out of connections.
    ExhaustDatabase,
    /// TARGET is a deployment: its replica count becomes --replicas.
    SetReplicas,
    /// TARGET is a deployment: it rolls out a new revision whose pods crash-loop.
    BadRollout,
}

#[derive(Debug, Args)]
pub struct ChaosArgs {
    pub kind: ChaosKind,
    /// A pod (crash-pod) or a deployment.
    pub target: String,
    /// Defaults to the namespace the topology gives the service.
    #[arg(long)]
    pub namespace: Option<String>,
    /// For set-replicas.
    #[arg(long)]
    pub replicas: Option<u32>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence alerts matching MATCHERS (Alertmanager syntax, e.g. 'alertname="DiskFull",
    /// env=~"stag.*"') from now for --for (e.g. 90m, 2h, 1d).
    Add {
        matchers: String,
        /// How long: minutes (m), hours (h) or days (d).
        #[arg(long = "for", default_value = "2h")]
        duration: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List silences and maintenance windows (--holding: only those holding alerts now).
    List {
        #[arg(long)]
        holding: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// End a silence now (its digest follows).
    Expire {
        id: i32,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// A duration as people type it: `90m`, `2h`, `1d` (minutes without a unit). In minutes.
pub fn minutes_of(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "m"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90m, 2h or 1d"))?;
    let per = match unit {
        "m" | "min" => 1,
        "h" => 60,
        "d" => 24 * 60,
        _ => return Err(format!("`{text}`: the unit must be m, h or d")),
    };
    n.checked_mul(per)
        .filter(|m| *m > 0)
        .ok_or_else(|| format!("`{text}` must be positive"))
}

/// A running server and the token to act with.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// The running server.
    #[arg(long, env = "AWOOOI_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// An API or session token (its user is the one acting).
    #[arg(long, env = "AWOOOI_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Options of `serve`; accepted before or after the (optional) `serve` subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, global = true, env = "AWOOOI_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Seed demo users (and later demo data); refuses a non-loopback bind unless
    /// --demo-allow-remote is given too.
    #[arg(long, global = true, env = "AWOOOI_DEMO")]
    pub demo: bool,
    /// Allow --demo on a non-loopback address (its password is shared knowledge).
    #[arg(long, global = true, env = "AWOOOI_DEMO_ALLOW_REMOTE")]
    pub demo_allow_remote: bool,
    /// Topology YAML file replacing the demo topology.
    #[arg(long, global = true, env = "AWOOOI_TOPOLOGY", value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Simulated cluster fixture (YAML) replacing the demo's or the generated one.
    #[arg(long, global = true, env = "AWOOOI_CLUSTER", value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// Directory holding the built UI assets (`pkg/awoooi.js`, `pkg/awoooi_bg.wasm`, …).
    #[arg(long, global = true, env = "AWOOOI_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// Login name.
        name: String,
        /// admin, devops, sre, cto, ciso or viewer.
        #[arg(long)]
        role: engine::Role,
    },
    /// End every session of a user (they must sign in again).
    RevokeSessions {
        /// Login name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KmCommand {
    /// Re-drive the knowledge dead-letter queue (Redis `km:dlq`, then the local file) once.
    ReplayDlq,
    /// Embed every knowledge entry that has no vector of the configured model
    /// (`[knowledge.embeddings]`) now, with progress; what the server's background job does.
    Reembed {
        /// Embed every entry again, even those the model already embedded.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; exits 1 at the first broken link.
    Verify {
        /// Also compare the chain with the segments archived to `[archive.s3]`: catches rows
        /// rewritten and re-hashed in the database, and a removed tail, which the database
        /// alone cannot show.
        #[arg(long)]
        against_archive: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once.
    Create {
        /// What the token is for, e.g. `alertmanager-prod`.
        name: String,
        /// The role the token acts with.
        #[arg(long)]
        role: engine::Role,
    },
    /// List API tokens (never their secrets).
    List,
    /// Revoke an API token by id.
    Revoke {
        /// The id shown by `awoooi token list`.
        id: i32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_work_with_and_without_the_subcommand() {
        for argv in [
            &["awoooi", "--bind", "127.0.0.1:4000", "--demo"][..],
            &["awoooi", "serve", "--bind", "127.0.0.1:4000", "--demo"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(cli.serve.bind, Some("127.0.0.1:4000".parse().unwrap()));
            assert!(cli.serve.demo);
        }
    }

    #[test]
    fn bad_role_is_a_clear_error() {
        let err = Cli::try_parse_from(["awoooi", "user", "add", "zed", "--role", "root"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown role `root`"), "{err}");
    }
}
