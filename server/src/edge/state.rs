//! The state builder: everything a running server holds, built from configuration, and
//! `serve`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use leptos::config::LeptosOptions;

use crate::base::{audit, bus, db, db::redact_url, keys, telemetry};
use crate::edge::config::Config;
use crate::edge::{demo, graphql, http, limits};
use crate::executors::{self, ClusterBackend, kube};
use crate::services::ingest::streams;
use crate::services::{analysis, approvals, finops, ingest, knowledge, notify};

pub(crate) async fn open_db(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    db::connect_and_migrate(&config.database_url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&config.database_url)))
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
) -> anyhow::Result<ClusterBackend> {
    use engine::simcluster::SimCluster;
    if config.cluster.backend == crate::executors::ClusterKind::Kubernetes {
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
    if audit::record_policy(&db, config.approvals.audit_details()).await? {
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
    let ingest = ingest::Ingest::start(
        db.clone(),
        ingest_settings(&config, shield.clone(), key.clone(), topology.clone()),
        connect_bus(&config).await?,
    );
    let backend = load_cluster(&config, &topology).await?;
    let archive = crate::services::archive::Archive::new(db.clone(), config.archive.clone())
        .map_err(|e| anyhow::anyhow!("archive: {e}"))?;
    if let Some(store) = archive.store() {
        // A missing bucket is made; an unreachable store only delays the archive.
        if let Err(e) = store.ensure_bucket().await {
            tracing::warn!(error = %e, "archive store not ready; uploads are retried");
        }
    }
    archive.spawn();
    let knowledge = knowledge::KmWriter::new(
        db.clone(),
        config.redis_url.as_deref(),
        &config.data_dir,
        config.knowledge.clone(),
    )?
    .archiving(archive.enabled())
    .retrieving(retrieval(&config, &db)?);
    knowledge.start_worker();
    knowledge.watch_resolutions(ingest.bus());
    let oncall = crate::services::oncall::Oncall::new(
        db.clone(),
        shield.clone(),
        key.clone(),
        ingest.bus().clone(),
        config
            .notifications
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    );
    oncall.start_worker(std::time::Duration::from_secs(
        config.oncall.check_every_seconds,
    ));
    let approvals = approvals::Approvals::new(
        db.clone(),
        config.approvals.clone(),
        topology.clone(),
        executors::registry(&config.actions, backend),
        shield,
        key,
        ingest.bus().clone(),
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
    // With the bus on Redis, sign-in lockout and rate limits are shared by every replica.
    let shared = match (&config.bus.backend, &config.redis_url) {
        (bus::BusKind::Redis, Some(url)) => Some(Arc::new(
            crate::base::shared::Shared::new(url, &format!("{}:limits", config.bus.channel))
                .map_err(anyhow::Error::msg)?,
        )),
        _ => None,
    };
    let mut lockout = crate::services::auth::lockout::Lockout::new(
        config.auth.max_failed_logins,
        std::time::Duration::from_secs(u64::from(config.auth.lockout_minutes) * 60),
    );
    let mut rate = limits::CallerRate::new(&config.graphql);
    if let Some(shared) = &shared {
        lockout = lockout.shared(shared.clone());
        rate = rate.shared(shared.clone(), &config.graphql);
    }
    let lockout = Arc::new(lockout);
    let credentials = Arc::new(crate::services::auth::cache::Credentials::new(
        std::time::Duration::from_secs(u64::from(config.auth.credential_cache_seconds)),
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
        oncall.clone(),
        &config.graphql,
        lockout.clone(),
        credentials.clone(),
    );
    let leptos = leptos_options(&config);
    let config_url = config.database_url.clone();
    Ok(http::AppState::new(http::AppParts {
        db,
        schema,
        ingest,
        topology,
        approvals,
        notifier,
        oncall,
        rate,
        config: Arc::new(config),
        leptos,
        metrics: telemetry::prometheus(),
        lockout,
        credentials,
        health: crate::base::db::DbHealth::watch(&config_url),
        kafka: Arc::default(),
    }))
}

/// The event bus configuration asks for.
async fn connect_bus(config: &Config) -> anyhow::Result<bus::Bus> {
    Ok(match config.bus.backend {
        bus::BusKind::Memory => bus::InProcess::bus(),
        bus::BusKind::Redis => {
            let url = config
                .redis_url
                .as_deref()
                .context("bus.backend = \"redis\" needs a Redis URL")?;
            bus::RedisBus::connect(url, &config.bus.channel).await?
        }
    })
}

fn ingest_settings(
    config: &Config,
    shield: Arc<engine::shield::Shield>,
    key: engine::shield::VaultKey,
    topology: Arc<engine::topology::Topology>,
) -> ingest::IngestSettings {
    let correlation_window =
        chrono::Duration::minutes(i64::from(config.ingest.correlation_window_minutes));
    ingest::IngestSettings {
        correlation_window,
        shield,
        key,
        topology,
        rules: engine::correlation::Rules {
            max_depth: config.ingest.correlation_depth,
            window: correlation_window,
            match_labels: config.ingest.correlation_labels.clone(),
        },
    }
}

fn leptos_options(config: &Config) -> LeptosOptions {
    let assets = http::assets::Assets::load(&config.site_root);
    LeptosOptions::builder()
        .output_name(assets.output_name)
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .build()
}

pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let demo = if config.demo {
        demo::check_bind(config.bind, config.demo_allow_remote)?;
        Some(demo::demo_password(
            std::env::var("AWOOOI_DEMO_PASSWORD").ok(),
        ))
    } else {
        None
    };
    let bind = config.bind;
    let state = build_state(config).await?;
    // The script the pages load, under the name build_state read from the site's hash file.
    let script = format!("{}.js", state.leptos.output_name);
    if !state.config.site_root.join("pkg").join(&script).exists() {
        tracing::warn!(
            site_root = %state.config.site_root.display(),
            "UI assets not found: pages render without interactivity (build them with scripts/build-ui.sh)"
        );
    }
    if let (Some(stream), Some(url)) = (&state.config.streams.redis, &state.config.redis_url) {
        let consumer =
            streams::RedisAlertStream::connect(url, stream.clone(), state.ingest.clone())
                .await
                .with_context(|| format!("cannot consume Redis stream {}", stream.stream))?;
        tokio::spawn(consumer.run());
    }
    let _kafka = start_kafka(&state)?;
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
    let header_timeout =
        std::time::Duration::from_secs(state.config.http.header_read_timeout_seconds);
    http::serve_on(
        listener,
        http::router(state),
        header_timeout,
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// The Kafka input, when `[streams.kafka]` is configured (kept alive by the caller; dropped, it
/// leaves the group).
#[cfg(feature = "kafka")]
fn start_kafka(
    state: &http::AppState,
) -> anyhow::Result<Option<crate::services::ingest::kafka::consumer::KafkaInput>> {
    let Some(kafka) = &state.config.streams.kafka else {
        return Ok(None);
    };
    let input = crate::services::ingest::kafka::consumer::KafkaInput::start(
        kafka.clone(),
        state.ingest.clone(),
        state.health.clone(),
        state.kafka.clone(),
        |name| std::env::var(name).ok(),
    )
    .with_context(|| format!("cannot consume Kafka topics from {}", kafka.brokers))?;
    Ok(Some(input))
}

#[cfg(not(feature = "kafka"))]
fn start_kafka(state: &http::AppState) -> anyhow::Result<Option<()>> {
    anyhow::ensure!(
        state.config.streams.kafka.is_none(),
        "[streams.kafka] is configured but this build has no Kafka input (cargo feature `kafka`)"
    );
    Ok(None)
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

/// `[knowledge.embeddings]`: the model loaded and its embedding job started, or full-text
/// retrieval; either way the log says which.
fn retrieval(
    config: &Config,
    db: &sea_orm::DatabaseConnection,
) -> anyhow::Result<knowledge::Retrieval> {
    let retrieval = knowledge::Retrieval::from_config(&config.knowledge.embeddings)
        .map_err(|e| anyhow::anyhow!("[knowledge.embeddings]: {e}"))?;
    if let knowledge::Retrieval::Hybrid(semantic) = &retrieval {
        semantic.spawn_job(db.clone(), std::time::Duration::from_secs(5));
    }
    tracing::info!(retrieval = %retrieval.describe(), "knowledge retrieval");
    Ok(retrieval)
}
