//! The CLI commands that do not serve: users, tokens, audit, knowledge replay, chaos, redact,
//! the tracer bullet; `run` dispatches to them or to `serve`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

use crate::base::{audit, db::redact_url, telemetry};
use crate::edge::cli::{self, Cli, Command, TokenCommand, UserCommand};
use crate::edge::config::Config;
use crate::edge::state::{open_db, serve};
use crate::edge::{evals, mcp, tracer};
use crate::services::{auth, knowledge};

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::resolve(&cli, |key| std::env::var(key).ok())?;
    // The evaluation's in-process servers log only when asked to (RUST_LOG).
    if !matches!(cli.command, Some(Command::Eval(_))) || std::env::var_os("RUST_LOG").is_some() {
        telemetry::init_tracing(config.log_format);
    }
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
            wait_for_credential_caches(&config).await;
            Ok(())
        }
        Some(Command::Token(command)) => token_command(&config, command).await,
        Some(Command::Audit(cli::AuditCommand::Verify { against_archive })) => {
            let db = open_db(&config).await?;
            let result = audit::verify_all(&db).await?;
            if let Some(id) = result.first_broken_id {
                anyhow::bail!(
                    "audit trail broken at event {id} ({} event(s) checked): it was edited, removed or reordered",
                    result.checked
                );
            }
            println!("audit trail intact: {} event(s) checked", result.checked);
            if against_archive {
                verify_against_archive(&db, &config).await?;
            }
            Ok(())
        }
        Some(Command::Postmortem { id }) => {
            let db = open_db(&config).await?;
            let retrieval = knowledge::Retrieval::from_config(&config.knowledge.embeddings)
                .map_err(|e| anyhow::anyhow!("[knowledge.embeddings]: {e}"))?;
            match knowledge::postmortem_of(&db, &retrieval, id).await? {
                Some(markdown) => {
                    print!("{markdown}");
                    Ok(())
                }
                None => anyhow::bail!("no incident {id}"),
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
        Some(Command::Km(cli::KmCommand::Reembed { all })) => {
            let db = open_db(&config).await?;
            let knowledge::Retrieval::Hybrid(semantic) =
                knowledge::Retrieval::from_config(&config.knowledge.embeddings)
                    .map_err(|e| anyhow::anyhow!("[knowledge.embeddings]: {e}"))?
            else {
                anyhow::bail!(
                    "no embedding model: set [knowledge.embeddings] model or AWOOOI_KM_EMBEDDINGS_MODEL"
                );
            };
            if all {
                let n = knowledge::Semantic::mark_all_stale(&db).await?;
                eprintln!("{n} stored vector(s) marked stale");
            }
            let total = semantic.pending(&db).await?;
            let started = std::time::Instant::now();
            let mut done = 0u64;
            loop {
                let n = semantic.embed_pending(&db, 16).await? as u64;
                if n == 0 {
                    break;
                }
                done += n;
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
                eprintln!("embedded {done}/{total} entries ({rate:.1}/s)");
            }
            let left = semantic.pending(&db).await?;
            println!(
                "knowledge embeddings: {done} entries embedded with {}; {left} pending (claimed by another process)",
                semantic.fingerprint()
            );
            Ok(())
        }
        Some(Command::Chaos(args)) => chaos_command(args).await,
        Some(Command::Silence(command)) => silence_command(command).await,
        Some(Command::Mcp(remote)) => mcp::serve_stdio(remote.url, remote.token).await,
        Some(Command::TracerBullet(args)) => {
            let url = args.url.trim_end_matches('/').to_owned();
            let tracer = tracer::Tracer {
                mcp_url: args.mcp_url.unwrap_or_else(|| format!("{url}/mcp")),
                url,
                password: args.password,
                patience: std::time::Duration::from_secs(args.patience),
                order: args.order,
                gap: std::time::Duration::try_from_secs_f64(args.gap)
                    .map_err(|_| anyhow::anyhow!("--gap {}: not a number of seconds", args.gap))?,
            };
            let passed = tracer.run(&mut std::io::stdout()).await?;
            anyhow::ensure!(passed, "the tracer bullet failed (see the table above)");
            Ok(())
        }
        Some(Command::Eval(args)) => eval_command(args).await,
        Some(Command::Redact) => redact_stdin(&config),
    }
}

/// `awoooi redact` without an async runtime: a filter from standard input to standard output
/// has nothing to wait on but its reads, and starting the runtime's threads is a tenth of its
/// start-up. Configuration and logging as for every command.
pub fn redact(cli: &Cli) -> anyhow::Result<()> {
    let config = Config::resolve(cli, |key| std::env::var(key).ok())?;
    telemetry::init_tracing(config.log_format);
    redact_stdin(&config)
}

fn redact_stdin(config: &Config) -> anyhow::Result<()> {
    let shield = engine::shield::Shield::new(&config.shield.detectors)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    shield.redact_stream(stdin.lock(), std::io::BufWriter::new(stdout.lock()))?;
    Ok(())
}

/// `awoooi eval`: runs the suite, prints progress and the report; fails if a single-cause
/// run missed.
async fn eval_command(args: cli::EvalArgs) -> anyhow::Result<()> {
    use engine::eval::OrderClass;
    let classes = if args.orders == "all" {
        OrderClass::all(3)
    } else {
        let mut classes = Vec::new();
        for name in args.orders.split(',').map(str::trim) {
            classes.extend(OrderClass::parse(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "--orders: unknown order `{name}` (cause-first, symptoms-first, random, noise, repeats, flap, all)"
                )
            })?);
        }
        classes
    };
    anyhow::ensure!(args.quiet_ms >= 50, "--quiet-ms: at least 50");
    let options = evals::EvalOptions {
        dir: args.dir,
        classes,
        only: args.only,
        single_only: args.single_cause,
        quiet: std::time::Duration::from_millis(args.quiet_ms),
        jobs: args.jobs.max(1),
        seed: args.seed,
    };
    let results = tokio::task::spawn_blocking(move || {
        evals::run(&options, |done, total, graded| {
            eprintln!(
                "[{done}/{total}] {} {}: {}",
                graded.scenario,
                graded.class,
                if graded.passed() { "ok" } else { "MISS" }
            );
        })
    })
    .await??;
    evals::report(&results, &mut std::io::stdout())?;
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let missed = results
        .iter()
        .filter(|g| !g.multi_cause && !g.passed())
        .count();
    anyhow::ensure!(missed == 0, "{missed} single-cause run(s) missed");
    Ok(())
}

/// `awoooi chaos`: one `clusterChaos` call to a running server.
/// One GraphQL operation on a running server as the token's user; `data` or the error with
/// its code.
async fn remote_graphql(
    remote: &cli::RemoteArgs,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}/graphql", remote.url.trim_end_matches('/'));
    let answer: serde_json::Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&remote.token)
        .json(&serde_json::json!({"query": query, "variables": variables}))
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
    Ok(answer["data"].clone())
}

/// `awoooi silence add|list|expire`.
async fn silence_command(command: cli::SilenceCommand) -> anyhow::Result<()> {
    const FIELDS: &str =
        "id kind name matchers comment createdBy startsAt endsAt holding heldBack { count }";
    let line = |s: &serde_json::Value| {
        let held: i64 = s["heldBack"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h["count"].as_i64()).sum())
            .unwrap_or(0);
        format!(
            "#{}\t{}\t{}\t{}\tuntil {}\tby {}\t{held} held back\t{}",
            s["id"].as_str().unwrap_or("?"),
            if s["holding"] == true { "HOLDING" } else { "-" },
            s["name"].as_str().unwrap_or(""),
            s["matchers"].as_str().unwrap_or(""),
            s["endsAt"].as_str().unwrap_or("-"),
            s["createdBy"].as_str().unwrap_or(""),
            s["comment"].as_str().unwrap_or(""),
        )
    };
    match command {
        cli::SilenceCommand::Add {
            matchers,
            duration,
            comment,
            remote,
        } => {
            let minutes = cli::minutes_of(&duration).map_err(|e| anyhow::anyhow!("--for {e}"))?;
            let data = remote_graphql(
                &remote,
                &format!("mutation($m: String!, $c: String!, $d: Int) {{ createSilence(matchers: $m, comment: $c, durationMinutes: $d) {{ {FIELDS} }} }}"),
                serde_json::json!({"m": matchers, "c": comment, "d": minutes}),
            )
            .await?;
            println!("{}", line(&data["createSilence"]));
        }
        cli::SilenceCommand::List { holding, remote } => {
            let data = remote_graphql(
                &remote,
                &format!("query($h: Boolean) {{ silences(holding: $h) {{ {FIELDS} }} }}"),
                serde_json::json!({"h": holding}),
            )
            .await?;
            for s in data["silences"].as_array().into_iter().flatten() {
                println!("{}", line(s));
            }
        }
        cli::SilenceCommand::Expire { id, remote } => {
            let data = remote_graphql(
                &remote,
                &format!("mutation($id: ID!) {{ expireSilence(id: $id) {{ {FIELDS} }} }}"),
                serde_json::json!({"id": id.to_string()}),
            )
            .await?;
            println!("{}", line(&data["expireSilence"]));
        }
    }
    Ok(())
}

async fn chaos_command(args: cli::ChaosArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        cli::ChaosKind::CrashPod => "CRASH_POD",
        cli::ChaosKind::ExhaustDatabase => "EXHAUST_DATABASE",
        cli::ChaosKind::SetReplicas => "SET_REPLICAS",
        cli::ChaosKind::BadRollout => "BAD_ROLLOUT",
    };
    let data = remote_graphql(
        &args.remote,
        "mutation($k: ChaosKind!, $t: String!, $n: String, $r: Int) \
         { clusterChaos(kind: $k, target: $t, namespace: $n, replicas: $r) }",
        serde_json::json!({"k": kind, "t": args.target, "n": args.namespace, "r": args.replicas}),
    )
    .await?;
    println!("{}", data["clusterChaos"].as_str().unwrap_or_default());
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
            wait_for_credential_caches(config).await;
        }
    }
    Ok(())
}

/// Waits out the running servers' credential caches (`[auth] credential_cache_seconds`), so
/// that a revocation is in effect everywhere once the command returns.
async fn wait_for_credential_caches(config: &Config) {
    let seconds = config.auth.credential_cache_seconds;
    if seconds > 0 {
        eprintln!("waiting {seconds} s for running servers to forget cached credentials");
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(seconds))).await;
    }
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

/// `audit verify --against-archive`: the database's chain against the archived segments.
async fn verify_against_archive(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
) -> anyhow::Result<()> {
    let Some(s3) = &config.archive.s3 else {
        anyhow::bail!("--against-archive needs [archive.s3] in the configuration file");
    };
    let store = crate::services::archive::S3Store::connect(s3).map_err(anyhow::Error::msg)?;
    let found = crate::services::archive::verify_against(db, &store)
        .await
        .map_err(anyhow::Error::msg)?;
    if found.segments == 0 {
        anyhow::bail!("the archive holds no audit segment yet: nothing to compare with");
    }
    if !found.findings.is_empty() {
        for finding in &found.findings {
            eprintln!("{finding}");
        }
        anyhow::bail!(
            "audit trail differs from the archive: {} finding(s) over {} archived segment(s)",
            found.findings.len(),
            found.segments
        );
    }
    println!(
        "audit trail matches the archive: {} segment(s), {} event(s), anchored up to event {}",
        found.segments,
        found.events,
        found.anchored_to.unwrap_or(0)
    );
    Ok(())
}
