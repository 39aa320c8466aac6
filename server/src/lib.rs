//! The `awoooi` server: configuration, CLI commands, the HTTP/GraphQL API and SSR.

pub mod analysis;
pub mod ansible;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod brains;
pub mod bus;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod finops;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod knowledge;
pub mod kube;
pub mod limits;
pub mod mcp;
pub mod mcp_client;
pub mod notify;
pub mod shell;
pub mod ssr;
pub mod streams;
pub mod telemetry;
pub mod tracer;
pub mod webhooks;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use leptos::config::LeptosOptions;

use cli::{Cli, Command, TokenCommand, UserCommand};
use config::Config;

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::resolve(&cli, |key| std::env::var(key).ok())?;
    telemetry::init_tracing(config.log_format);
    match cli.command {
        None | Some(Command::Serve) => serve(config).await,
        Some(Command::Migrate) => {
            open_db(&config).await?;
            eprintln!("migrations applied to {}", redact_url(&config.database_url));
            Ok(())
        }
        Some(Command::User(UserCommand::Add { name, role })) => {
            let password = read_password()?;
            let db = open_db(&config).await?;
            let user = auth::add_user(&db, &name, role, &password).await?;
            audit::record(
                &db,
                "cli",
                "user.added",
                &format!("user:{}", user.username),
                serde_json::json!({"role": user.role}),
            )
            .await?;
            eprintln!("user {} ({}) added", user.username, user.role);
            Ok(())
        }
        Some(Command::User(UserCommand::RevokeSessions { name })) => {
            let db = open_db(&config).await?;
            let ended = auth::revoke_sessions(&db, name.trim()).await?;
            audit::record(
                &db,
                "cli",
                "user.sessions_revoked",
                &format!("user:{}", name.trim()),
                serde_json::json!({"ended": ended}),
            )
            .await?;
            eprintln!("{ended} session(s) of {} ended", name.trim());
            Ok(())
        }
        Some(Command::Token(command)) => token_command(&config, command).await,
        Some(Command::Audit(cli::AuditCommand::Verify)) => {
            let db = open_db(&config).await?;
            let result = audit::verify_all(&db).await?;
            match result.first_broken_id {
                None => {
                    println!("audit trail intact: {} event(s) checked", result.checked);
                    Ok(())
                }
                Some(id) => anyhow::bail!(
                    "audit trail broken at event {id} ({} event(s) checked): it was edited, removed or reordered",
                    result.checked
                ),
            }
        }
        Some(Command::Km(cli::KmCommand::ReplayDlq)) => {
            let db = open_db(&config).await?;
            let writer = knowledge::KmWriter::new(
                db,
                config.redis_url.as_deref(),
                &config.data_dir,
                config.knowledge.clone(),
            )?;
            let done = writer.replay().await?;
            println!(
                "knowledge dead letters: {} written, {} already there, {} still waiting",
                done.written, done.duplicates, done.left
            );
            if done.left > 0 {
                anyhow::bail!("{} dead letter(s) could not be written yet", done.left);
            }
            Ok(())
        }
        Some(Command::Chaos(args)) => chaos_command(args).await,
        Some(Command::Mcp(remote)) => mcp::serve_stdio(remote.url, remote.token).await,
        Some(Command::TracerBullet(args)) => {
            let url = args.url.trim_end_matches('/').to_owned();
            let tracer = tracer::Tracer {
                mcp_url: args.mcp_url.unwrap_or_else(|| format!("{url}/mcp")),
                url,
                password: args.password,
                patience: std::time::Duration::from_secs(args.patience),
            };
            let passed = tracer.run(&mut std::io::stdout()).await?;
            anyhow::ensure!(passed, "the tracer bullet failed (see the table above)");
            Ok(())
        }
        Some(Command::Redact) => {
            let shield = engine::shield::Shield::new(&config.shield.detectors)?;
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            redact_stream(
                &shield,
                stdin.lock(),
                std::io::BufWriter::new(stdout.lock()),
            )
        }
    }
}

/// `awoooi chaos`: one `clusterChaos` call to a running server.
async fn chaos_command(args: cli::ChaosArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        cli::ChaosKind::CrashPod => "CRASH_POD",
        cli::ChaosKind::ExhaustDatabase => "EXHAUST_DATABASE",
        cli::ChaosKind::SetReplicas => "SET_REPLICAS",
    };
    let body = serde_json::json!({
        "query": "mutation($k: ChaosKind!, $t: String!, $n: String, $r: Int) \
                  { clusterChaos(kind: $k, target: $t, namespace: $n, replicas: $r) }",
        "variables": {"k": kind, "t": args.target, "n": args.namespace, "r": args.replicas},
    });
    let url = format!("{}/graphql", args.remote.url.trim_end_matches('/'));
    let answer: serde_json::Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.remote.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?
        .json()
        .await
        .with_context(|| format!("{url} did not answer with GraphQL"))?;
    if let Some(error) = answer["errors"].get(0) {
        anyhow::bail!(
            "{} ({})",
            error["message"].as_str().unwrap_or("error"),
            error["extensions"]["code"].as_str().unwrap_or("no code")
        );
    }
    println!(
        "{}",
        answer["data"]["clusterChaos"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// Pseudonymises `input` line by line into `output`; one label map for the whole stream.
/// Line endings are kept; invalid UTF-8 is replaced rather than refused.
pub fn redact_stream(
    shield: &engine::shield::Shield,
    mut input: impl BufRead,
    mut output: impl Write,
) -> anyhow::Result<()> {
    let mut names = engine::shield::Pseudonyms::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        output.write_all(shield.redact(&text, &mut names).as_bytes())?;
    }
    output.flush()?;
    Ok(())
}

async fn token_command(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    match command {
        TokenCommand::Create { name, role } => {
            let (token, model) = auth::create_api_token(&db, &name, role).await?;
            audit::record(
                &db,
                "cli",
                "token.created",
                &format!("token:{}", model.id),
                serde_json::json!({"name": model.name, "role": model.role}),
            )
            .await?;
            eprintln!(
                "API token {} `{}` ({}) created; it is shown only once:",
                model.id, model.name, model.role
            );
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:>4}  {:<8}  {:<25}  {:<8}  NAME",
                "ID", "ROLE", "CREATED", "STATE"
            );
            for t in auth::list_api_tokens(&db).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:>4}  {:<8}  {:<25}  {:<8}  {}",
                    t.id,
                    t.role,
                    t.created_at.to_rfc3339(),
                    state,
                    t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            auth::revoke_api_token(&db, id).await?;
            audit::record(
                &db,
                "cli",
                "token.revoked",
                &format!("token:{id}"),
                serde_json::json!({}),
            )
            .await?;
            eprintln!("API token {id} revoked");
        }
    }
    Ok(())
}

/// One line from standard input (a prompt is shown only on a terminal).
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

async fn open_db(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    db::connect_and_migrate(&config.database_url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&config.database_url)))
}

/// A URL with its password replaced, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `--topology FILE`, else the demo topology with `--demo`, else an empty one.
pub fn load_topology(config: &Config) -> anyhow::Result<engine::topology::Topology> {
    use engine::topology::Topology;
    match &config.topology {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read topology {}", path.display()))?;
            Topology::from_yaml(&text).with_context(|| format!("topology {}", path.display()))
        }
        None if config.demo => Ok(Topology::demo()),
        None => Ok(Topology::default()),
    }
}

/// The cluster actions go to: Kubernetes when configured; else the simulated one from
/// `--cluster FILE`, the demo fixture with `--demo` (and the demo topology), or one generated
/// from the topology.
pub async fn load_cluster(
    config: &Config,
    topology: &engine::topology::Topology,
) -> anyhow::Result<approvals::ClusterBackend> {
    use approvals::ClusterBackend;
    use engine::simcluster::SimCluster;
    if config.cluster.backend == config::ClusterKind::Kubernetes {
        let cluster = kube::KubeCluster::connect(&config.cluster.kubernetes).await?;
        return Ok(ClusterBackend::Kubernetes(cluster));
    }
    Ok(ClusterBackend::Simulated(match &config.cluster.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read cluster fixture {}", path.display()))?;
            SimCluster::from_yaml(&text).with_context(|| format!("{}", path.display()))?
        }
        None if config.demo && config.topology.is_none() => SimCluster::demo(),
        None => SimCluster::from_topology(topology),
    }))
}

/// Everything a running server holds, built from configuration.
pub async fn build_state(config: Config) -> anyhow::Result<http::AppState> {
    let db = open_db(&config).await?;
    if audit::record_policy(&db, &config.approvals).await? {
        tracing::info!("approval policy recorded in the audit trail (new or changed)");
    }
    let meta = graphql::ServerMeta {
        version: env!("CARGO_PKG_VERSION"),
        database: config.database_kind(),
        started: Instant::now(),
        demo: config.demo,
    };
    let shield = Arc::new(engine::shield::Shield::new(&config.shield.detectors)?);
    let key = keys::load_or_create(&config.data_dir, std::env::var("AWOOOI_VAULT_KEY").ok())?;
    let topology = Arc::new(load_topology(&config)?);
    let correlation_window =
        chrono::Duration::minutes(i64::from(config.ingest.correlation_window_minutes));
    let bus = match config.bus.backend {
        config::BusKind::Memory => bus::InProcess::bus(),
        config::BusKind::Redis => {
            let url = config
                .redis_url
                .as_deref()
                .context("bus.backend = \"redis\" needs a Redis URL")?;
            bus::RedisBus::connect(url, &config.bus.channel).await?
        }
    };
    let ingest = ingest::Ingest::start(
        db.clone(),
        ingest::IngestSettings {
            correlation_window,
            shield: shield.clone(),
            key: key.clone(),
            topology: topology.clone(),
            rules: engine::correlation::Rules {
                max_depth: config.ingest.correlation_depth,
                window: correlation_window,
                match_labels: config.ingest.correlation_labels.clone(),
            },
        },
        bus,
    );
    let backend = load_cluster(&config, &topology).await?;
    let knowledge = knowledge::KmWriter::new(
        db.clone(),
        config.redis_url.as_deref(),
        &config.data_dir,
        config.knowledge.clone(),
    )?;
    knowledge.start_worker();
    knowledge.watch_resolutions(&ingest);
    let approvals = approvals::Approvals::new(
        db.clone(),
        config.approvals.clone(),
        topology.clone(),
        backend,
        shield,
        key,
        approvals::Executors {
            shell: shell::ShellExecutor::new(config.actions.shell.clone()),
            ansible: ansible::AnsibleExecutor::new(config.actions.ansible.clone()),
            mcp: mcp_client::McpExecutor::new(config.actions.mcp.clone()),
        },
        ingest.clone(),
        knowledge.clone(),
    );
    approvals.start_worker(std::time::Duration::from_secs(15));
    let analyst = analysis::Analyst::start(
        db.clone(),
        topology.clone(),
        ingest.clone(),
        approvals.clone(),
        config.brain.clone(),
    )?;
    let notifier = notify::Notifier::new(db.clone(), config.notifications.clone(), config.bind)
        .map_err(|e| anyhow::anyhow!("notifications: {e}"))?;
    notifier.start_worker();
    let finops = finops::Finops::new(db.clone(), approvals.clone(), config.finops.clone());
    finops.start_schedule();
    let lockout = Arc::new(limits::Lockout::new(
        config.auth.max_failed_logins,
        std::time::Duration::from_secs(u64::from(config.auth.lockout_minutes) * 60),
    ));
    let schema = graphql::build_schema(
        db.clone(),
        meta,
        config.auth.clone(),
        ingest.clone(),
        topology.clone(),
        analyst,
        approvals.clone(),
        finops,
        notifier.clone(),
        &config.graphql,
        lockout.clone(),
    );
    let leptos = LeptosOptions::builder()
        .output_name("awoooi")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .build();
    Ok(http::AppState {
        db,
        schema,
        ingest,
        topology,
        approvals,
        notifier,
        rate: limits::CallerRate::new(&config.graphql),
        config: Arc::new(config),
        leptos,
        metrics: telemetry::prometheus(),
        lockout,
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let demo = if config.demo {
        demo::check_bind(config.bind, config.demo_allow_remote)?;
        Some(demo::demo_password(
            std::env::var("AWOOOI_DEMO_PASSWORD").ok(),
        ))
    } else {
        None
    };
    if !config.site_root.join("pkg").join("awoooi.js").exists() {
        tracing::warn!(
            site_root = %config.site_root.display(),
            "UI assets not found: pages render without interactivity (build them with scripts/build-ui.sh)"
        );
    }
    let bind = config.bind;
    let state = build_state(config).await?;
    if let (Some(stream), Some(url)) = (&state.config.streams.redis, &state.config.redis_url) {
        let consumer =
            streams::RedisAlertStream::connect(url, stream.clone(), state.ingest.clone())
                .await
                .with_context(|| format!("cannot consume Redis stream {}", stream.stream))?;
        tokio::spawn(consumer.run());
    }
    if let Some((password, generated)) = &demo {
        demo::seed(&state.db, password).await?;
        eprintln!("{}", demo::banner(bind, password, *generated));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        database = %redact_url(&state.config.database_url),
        "AWOOOI listening"
    );
    axum::serve(
        listener,
        http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_stream_keeps_lines_and_labels_consistent() {
        let shield = engine::shield::Shield::builtin();
        let input = "a 10.0.0.1\r\nb bob@x.io 10.0.0.1\n\nno newline 10.0.0.2";
        let mut out = Vec::new();
        super::redact_stream(&shield, input.as_bytes(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a [IP_1]\r\nb [EMAIL_1] [IP_1]\n\nno newline [IP_2]"
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://awoooi:s3cret@db:5432/awoooi"),
            "postgres://awoooi:***@db:5432/awoooi"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("sqlite://./data/awoooi.db?mode=rwc"),
            "sqlite://./data/awoooi.db?mode=rwc"
        );
    }
}
