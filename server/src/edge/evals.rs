//! `awoooi eval`: the evaluation suite. Every scenario of `evals/scenarios/` is replayed in
//! each order class against a fresh server of its own (in this process, SQLite, the scenario's
//! topology as a simulated cluster in the state the scenario describes), through the ordinary
//! ingest path with the production settling rules (only the quiet period shortened), and
//! graded without any judge but the data: the final root cause, whether the analysis agrees,
//! whether the expected fix was proposed on the expected target, whether its dry-run passed,
//! whether a stale proposal is left pending, and how long after the last alert the analysis
//! settled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use engine::eval::{ChaosName, OrderClass, Scenario, ScenarioFile, Step, plan};
use engine::policy::ApprovalStatus;
use engine::simcluster::Chaos;
use engine::topology::Topology;
use entity::{alert, analysis, approval, incident};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::base::incident::IncidentStatus;
use crate::services::analysis::settle::Basis;

/// What to run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Holds `topologies/` and `scenarios/`.
    pub dir: PathBuf,
    pub classes: Vec<OrderClass>,
    /// Only scenarios whose id or topology contains this.
    pub only: Option<String>,
    /// Only single-cause scenarios.
    pub single_only: bool,
    /// The analysis's quiet period here (production: 3 s).
    pub quiet: Duration,
    /// Runs at once.
    pub jobs: usize,
    pub seed: u64,
}

/// One scenario in one order, graded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Graded {
    pub scenario: String,
    pub topology: String,
    pub class: &'static str,
    pub multi_cause: bool,
    /// Each expected cause is the root cause of an incident.
    pub root_cause: bool,
    /// The analysis ranks the incident's root cause first and its summary names it.
    pub agrees: bool,
    /// The expected kind of fix on the expected target was proposed.
    pub fix: bool,
    /// …and its dry-run passed.
    pub dry_run: bool,
    /// No PENDING proposal aimed at anything but the causes or the fix's target.
    pub no_stale: bool,
    /// Seconds from the last alert to the settled analysis (none: it did not settle).
    pub settled_after: Option<f64>,
    /// What went wrong, for people.
    pub miss: Option<String>,
}

impl Graded {
    pub fn passed(&self) -> bool {
        self.root_cause && self.agrees && self.fix && self.dry_run && self.no_stale
    }
}

/// Reads every scenario file under `dir` with its topology, checked.
pub fn load(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Topology, ScenarioFile)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("scenarios"))
        .with_context(|| format!("cannot list {}", dir.join("scenarios").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = ScenarioFile::from_yaml(&text)
            .with_context(|| format!("{}: not a scenario file", path.display()))?;
        let topology_path = dir
            .join("topologies")
            .join(format!("{}.yaml", file.topology));
        let topology = Topology::from_yaml(
            &std::fs::read_to_string(&topology_path)
                .with_context(|| format!("cannot read {}", topology_path.display()))?,
        )
        .with_context(|| format!("{}", topology_path.display()))?;
        file.check(&topology)
            .with_context(|| format!("{}", path.display()))?;
        loaded.push((topology_path, topology, file));
    }
    anyhow::ensure!(!loaded.is_empty(), "no scenario files in {}", dir.display());
    Ok(loaded)
}

/// Runs the suite, `progress` told of each run as it ends.
pub fn run(
    options: &EvalOptions,
    mut progress: impl FnMut(usize, usize, &Graded),
) -> anyhow::Result<Vec<Graded>> {
    let mut work = Vec::new();
    for (path, topology, file) in load(&options.dir)? {
        let topology = std::sync::Arc::new(topology);
        for scenario in &file.scenarios {
            if options.single_only && scenario.multi_cause() {
                continue;
            }
            if let Some(only) = &options.only
                && !scenario.id.contains(only.as_str())
                && !file.topology.contains(only.as_str())
            {
                continue;
            }
            for &class in &options.classes {
                work.push(Run {
                    path: path.clone(),
                    topology: topology.clone(),
                    name: file.topology.clone(),
                    scenario: scenario.clone(),
                    class,
                });
            }
        }
    }
    let total = work.len();
    let queue = std::sync::Mutex::new(work.into_iter());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Graded>();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            let (queue, done, options) = (&queue, done_tx.clone(), options);
            scope.spawn(move || {
                loop {
                    let next = queue.lock().expect("queue").next();
                    let Some(run) = next else {
                        break;
                    };
                    // A runtime per run: the server's workers end with it.
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    let graded = runtime
                        .block_on(run_one(&run, options))
                        .unwrap_or_else(|e| Graded {
                            scenario: run.scenario.id.clone(),
                            topology: run.name.clone(),
                            class: run.class.name(),
                            multi_cause: run.scenario.multi_cause(),
                            root_cause: false,
                            agrees: false,
                            fix: false,
                            dry_run: false,
                            no_stale: false,
                            settled_after: None,
                            miss: Some(format!("the run failed: {e:#}")),
                        });
                    runtime.shutdown_timeout(Duration::from_secs(1));
                    if done.send(graded).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut results = Vec::with_capacity(total);
        for graded in done_rx {
            progress(results.len() + 1, total, &graded);
            results.push(graded);
        }
        results.sort_by(|a, b| (&a.scenario, a.class).cmp(&(&b.scenario, b.class)));
        Ok(results)
    })
}

/// One scenario in one order class.
struct Run {
    /// The topology file, as the server is given it.
    path: PathBuf,
    topology: std::sync::Arc<Topology>,
    /// The topology's name (its file stem).
    name: String,
    scenario: Scenario,
    class: OrderClass,
}

async fn run_one(run: &Run, options: &EvalOptions) -> anyhow::Result<Graded> {
    let dir = std::env::temp_dir().join(format!(
        "awoooi-eval-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir)?;
    let outcome = serve_and_grade(&dir, run, options).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn serve_and_grade(dir: &Path, run: &Run, options: &EvalOptions) -> anyhow::Result<Graded> {
    let Run {
        path: topology_path,
        topology,
        name: topology_name,
        scenario,
        class,
    } = run;
    let class = *class;
    let quiet = options.quiet.as_secs_f64();
    let config_file = dir.join("awoooi.toml");
    std::fs::write(
        &config_file,
        format!(
            "[brain]\nquiet_seconds = {quiet}\nmax_wait_seconds = {}\n",
            quiet * 10.0
        ),
    )?;
    let database = format!("sqlite://{}?mode=rwc", dir.join("eval.db").display());
    let argv = [
        "awoooi",
        "--database-url",
        &database,
        "--data-dir",
        dir.to_str().context("a UTF-8 temporary directory")?,
        "--config",
        config_file
            .to_str()
            .context("a UTF-8 temporary directory")?,
        "--topology",
        topology_path.to_str().context("a UTF-8 topology path")?,
    ];
    let cli = <crate::edge::cli::Cli as clap::Parser>::try_parse_from(argv)?;
    let config = crate::edge::config::Config::resolve(&cli, |_| None)?;
    let state = crate::edge::state::build_state(config).await?;
    let cluster = state
        .approvals
        .simulated_cluster()
        .context("the evaluation needs the simulated cluster")?
        .clone();
    for step in &scenario.cluster {
        let namespace = topology
            .services()
            .find(|s| s.name == step.service)
            .and_then(|s| s.namespace.clone());
        let ns = namespace.as_deref();
        cluster
            .with(|c| {
                let (chaos, target) = match step.chaos {
                    ChaosName::ExhaustDatabase => (Chaos::ExhaustDatabase, step.service.clone()),
                    ChaosName::BadRollout => (Chaos::BadRollout, step.service.clone()),
                    ChaosName::SetReplicas => (
                        Chaos::SetReplicas(step.replicas.unwrap_or(1)),
                        step.service.clone(),
                    ),
                    ChaosName::CrashPod => (
                        Chaos::CrashPod,
                        c.pod_names(ns, &step.service)
                            .into_iter()
                            .next()
                            .ok_or_else(|| format!("{} has no pod", step.service))?,
                    ),
                };
                c.chaos(chaos, ns, &target)
            })
            .map_err(|e| anyhow::anyhow!("cluster state {:?}: {e}", step.chaos))?;
    }
    let steps = plan(
        topology,
        scenario,
        class,
        options.quiet.as_millis() as u64,
        options.seed,
    );
    let mut last_sent = Utc::now();
    for step in &steps {
        tokio::time::sleep(Duration::from_millis(step.wait_ms)).await;
        send(&state.ingest, step).await?;
        last_sent = Utc::now();
    }
    let db = state.db.clone();
    let incidents = settle(&db, scenario, options.quiet).await?;
    grade(&db, topology_name, scenario, class, &incidents, last_sent).await
}

async fn send(ingest: &crate::services::ingest::Ingest, step: &Step) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "name": step.name,
        "service": step.service,
        "severity": step.severity,
        "description": step.description,
        "status": if step.firing { "firing" } else { "resolved" },
    });
    let events = engine::input::parse_generic(body.to_string().as_bytes())?;
    ingest
        .submit(events)
        .await
        .map_err(|e| anyhow::anyhow!("ingest: {e}"))?;
    Ok(())
}

/// The incident each cause's latest alert ended in (following merges).
async fn incidents_of(
    db: &DatabaseConnection,
    scenario: &Scenario,
) -> anyhow::Result<Vec<incident::Model>> {
    let mut found: Vec<incident::Model> = Vec::new();
    for cause in &scenario.causes {
        let Some(latest) = alert::Entity::find()
            .filter(alert::Column::Service.eq(cause.as_str()))
            .order_by_desc(alert::Column::Id)
            .one(db)
            .await?
        else {
            continue;
        };
        let mut id = latest.incident_id;
        let row = loop {
            let row = incident::Entity::find_by_id(id)
                .one(db)
                .await?
                .context("an alert's incident")?;
            match row.merged_into {
                Some(into) if into != id => id = into,
                _ => break row,
            }
        };
        if !found.iter().any(|f| f.id == row.id) {
            found.push(row);
        }
    }
    Ok(found)
}

/// Waits until the causes' incidents are settled: not being analysed, analysed on what they
/// hold now, nothing executing, and so for two quiet periods. Gives up after 30 s.
async fn settle(
    db: &DatabaseConnection,
    scenario: &Scenario,
    quiet: Duration,
) -> anyhow::Result<Vec<incident::Model>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut calm_since: Option<tokio::time::Instant> = None;
    tokio::time::sleep(quiet).await;
    loop {
        let incidents = incidents_of(db, scenario).await?;
        let mut calm = !incidents.is_empty();
        for row in &incidents {
            calm &= is_settled(db, row).await?;
        }
        let now = tokio::time::Instant::now();
        if calm {
            let since = *calm_since.get_or_insert(now);
            if now - since >= quiet * 2 {
                return Ok(incidents);
            }
        } else {
            calm_since = None;
        }
        if now > deadline {
            return Ok(incidents);
        }
        tokio::time::sleep(quiet / 3).await;
    }
}

async fn is_settled(db: &DatabaseConnection, row: &incident::Model) -> anyhow::Result<bool> {
    if row.status == IncidentStatus::Analyzing {
        return Ok(false);
    }
    let Some(done) = analysis::Entity::find_by_id(row.id).one(db).await? else {
        return Ok(false);
    };
    let basis = Basis::of(db, row).await?;
    let stored: Option<Basis> = done
        .basis
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    if stored.as_ref() != Some(&basis) {
        return Ok(false);
    }
    let running = approval::Entity::find()
        .filter(approval::Column::IncidentId.is_in(family(db, row.id).await?))
        .filter(
            approval::Column::Status.is_in([ApprovalStatus::Approved, ApprovalStatus::Executing]),
        )
        .one(db)
        .await?;
    Ok(running.is_none())
}

async fn family(db: &DatabaseConnection, id: i32) -> anyhow::Result<Vec<i32>> {
    let mut ids: Vec<i32> = incident::Entity::find()
        .filter(incident::Column::MergedInto.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.push(id);
    Ok(ids)
}

async fn grade(
    db: &DatabaseConnection,
    topology_name: &str,
    scenario: &Scenario,
    class: OrderClass,
    incidents: &[incident::Model],
    last_sent: DateTime<Utc>,
) -> anyhow::Result<Graded> {
    let mut misses = Vec::new();
    let roots: Vec<&str> = incidents
        .iter()
        .filter_map(|i| i.service.as_deref())
        .collect();
    let root_cause = scenario.causes.iter().all(|c| roots.contains(&c.as_str()));
    if !root_cause {
        misses.push(format!(
            "root cause(s) {roots:?}, expected {:?}",
            scenario.causes
        ));
    }
    let mut agrees = !incidents.is_empty();
    let mut latest: Option<DateTime<Utc>> = None;
    let mut approvals = Vec::new();
    for row in incidents {
        let Some(done) = analysis::Entity::find_by_id(row.id).one(db).await? else {
            agrees = false;
            misses.push(format!("incident #{} was never analysed", row.id));
            continue;
        };
        latest = latest.max(Some(done.created_at));
        let ranked: Vec<engine::brain::GraphFact> =
            serde_json::from_str(&done.root_causes).unwrap_or_default();
        let service = row.service.clone().unwrap_or_default();
        let this = match ranked.first() {
            Some(first) => first.service == service && done.root_cause.as_deref() == Some(&service),
            None => done.summary.contains(&service),
        };
        if !this {
            agrees = false;
            misses.push(format!(
                "incident #{} is about {service}, its analysis ranks {:?} and concludes {:?}",
                row.id,
                ranked.first().map(|r| r.service.as_str()),
                done.root_cause
            ));
        }
        approvals.extend(
            approval::Entity::find()
                .filter(approval::Column::IncidentId.is_in(family(db, row.id).await?))
                .all(db)
                .await?,
        );
    }
    let target = scenario.fix_target();
    let live = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Executing,
        ApprovalStatus::Executed,
    ];
    let fixed = approvals
        .iter()
        .find(|a| a.kind == scenario.fix && a.target == target && live.contains(&a.status));
    let fix = fixed.is_some();
    let dry_run = fixed.is_some_and(|a| {
        serde_json::from_str::<engine::dryrun::DryRunReport>(&a.dry_run).is_ok_and(|r| r.passed)
    });
    let describe = |a: &approval::Model| format!("{} {} ({})", a.kind, a.target, a.status.as_str());
    if !fix {
        let seen: Vec<String> = approvals.iter().map(describe).collect();
        misses.push(format!(
            "expected {} {target}; proposed: {}",
            scenario.fix,
            if seen.is_empty() {
                "nothing".to_owned()
            } else {
                seen.join(", ")
            }
        ));
    } else if !dry_run {
        misses.push(format!("{} {target}: its dry-run failed", scenario.fix));
    }
    let stale: Vec<String> = approvals
        .iter()
        .filter(|a| a.status == ApprovalStatus::Pending)
        .filter(|a| a.target != target && !scenario.causes.contains(&a.target))
        .map(describe)
        .collect();
    let no_stale = stale.is_empty();
    if !no_stale {
        misses.push(format!("still pending elsewhere: {}", stale.join(", ")));
    }
    let settled_after =
        latest.map(|at| ((at - last_sent).num_milliseconds().max(0) as f64) / 1000.0);
    Ok(Graded {
        scenario: scenario.id.clone(),
        topology: topology_name.to_owned(),
        class: class.name(),
        multi_cause: scenario.multi_cause(),
        root_cause,
        agrees,
        fix,
        dry_run,
        no_stale,
        settled_after,
        miss: (!misses.is_empty()).then(|| misses.join("; ")),
    })
}

/// The report: per order class, the share of runs meeting each criterion, and the settling
/// time; single- and multi-cause apart; then every miss.
pub fn report(results: &[Graded], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for (title, multi) in [
        ("Single-cause scenarios", false),
        ("Multi-cause scenarios", true),
    ] {
        let mut by_class: BTreeMap<&str, Vec<&Graded>> = BTreeMap::new();
        for g in results.iter().filter(|g| g.multi_cause == multi) {
            by_class.entry(g.class).or_default().push(g);
        }
        if by_class.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}\n")?;
        writeln!(
            out,
            "| order | runs | root cause | analysis agrees | fix proposed | dry-run passes | no stale proposal | all | settled after (median / p95 / max s) |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        let mut all: Vec<&Graded> = Vec::new();
        for (class, runs) in &by_class {
            row(out, class, runs)?;
            all.extend(runs);
        }
        row(out, "**all**", &all)?;
    }
    let misses: Vec<&Graded> = results.iter().filter(|g| !g.passed()).collect();
    if !misses.is_empty() {
        writeln!(out, "\nMisses ({}):\n", misses.len())?;
        for g in misses {
            writeln!(
                out,
                "- {} [{}{}]: {}",
                g.scenario,
                g.class,
                if g.multi_cause { ", multi-cause" } else { "" },
                g.miss.as_deref().unwrap_or("?")
            )?;
        }
    }
    Ok(())
}

fn row(out: &mut impl std::io::Write, class: &str, runs: &[&Graded]) -> std::io::Result<()> {
    let share = |f: &dyn Fn(&Graded) -> bool| {
        let n = runs.iter().filter(|g| f(g)).count();
        format!("{:.0}%", 100.0 * n as f64 / runs.len().max(1) as f64)
    };
    let mut settled: Vec<f64> = runs.iter().filter_map(|g| g.settled_after).collect();
    settled.sort_by(f64::total_cmp);
    let at = |q: f64| {
        settled
            .get(((settled.len() as f64 - 1.0) * q).round() as usize)
            .map_or("-".to_owned(), |s| format!("{s:.1}"))
    };
    writeln!(
        out,
        "| {class} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
        runs.len(),
        share(&|g| g.root_cause),
        share(&|g| g.agrees),
        share(&|g| g.fix),
        share(&|g| g.dry_run),
        share(&|g| g.no_stale),
        share(&|g| g.passed()),
        at(0.5),
        at(0.95),
        at(1.0),
    )
}
