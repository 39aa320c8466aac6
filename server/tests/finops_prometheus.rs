//! The Prometheus metrics source against a real Prometheus server (Debian's `prometheus`
//! package): the demo cluster's inventory and two weeks of usage are written as the series
//! kube-state-metrics and cAdvisor export, backfilled with `promtool tsdb
//! create-blocks-from openmetrics`, and read back through the HTTP API. The scans must find
//! exactly what they find on the simulated cluster.

use crate::support;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use engine::finops::{Inventory, Pricing, Thresholds, scan};
use engine::simcluster::{Resources, SimCluster};
use serde_json::{Value, json};
use server::services::finops::prometheus::{PrometheusConfig, PrometheusSource};
use support::{Backend, TestServer};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const MIB: u64 = 1_048_576;

/// One OpenMetrics family: its samples, series by series, oldest first.
struct Family {
    name: &'static str,
    kind: &'static str,
    lines: String,
}

impl Family {
    fn new(name: &'static str, kind: &'static str) -> Family {
        Family {
            name,
            kind,
            lines: String::new(),
        }
    }

    /// `labels` already written as `a="b",c="d"`.
    fn sample(&mut self, labels: &str, value: f64, at: i64) {
        let sample = if self.kind == "counter" {
            format!("{}_total", self.name)
        } else {
            self.name.to_owned()
        };
        writeln!(self.lines, "{sample}{{{labels}}} {value} {at}").unwrap();
    }

    /// A constant series, sampled every hour from `start` to `end` (both included).
    fn constant(&mut self, labels: &str, value: f64, start: i64, end: i64) {
        let mut at = start;
        while at <= end {
            self.sample(labels, value, at);
            at += HOUR;
        }
    }

    /// CPU in cores and memory in bytes, as kube-state-metrics labels them.
    fn resources(&mut self, labels: &str, r: Resources, start: i64, end: i64) {
        let cpu = r.cpu_millis as f64 / 1_000.0;
        self.constant(
            &format!(r#"{labels},resource="cpu",unit="core""#),
            cpu,
            start,
            end,
        );
        let bytes = (r.memory_mib * MIB) as f64;
        self.constant(
            &format!(r#"{labels},resource="memory",unit="byte""#),
            bytes,
            start,
            end,
        );
    }
}

/// What kube-state-metrics and cAdvisor would have exported for `inventory` over the days
/// before `end`. Usage is sampled at half past each hour (never on a day's boundary), the
/// CPU counter growing at that day's rate, memory at that day's peak.
fn openmetrics(inventory: &Inventory, end: i64) -> String {
    let days = inventory
        .pods
        .iter()
        .map(|p| p.cpu_daily.len())
        .max()
        .unwrap_or(0) as i64;
    let start = end - days * DAY;
    let mut node_info = Family::new("kube_node_info", "gauge");
    let mut node_labels = Family::new("kube_node_labels", "gauge");
    let mut capacity = Family::new("kube_node_status_capacity", "gauge");
    let mut pod_info = Family::new("kube_pod_info", "gauge");
    let mut pod_owner = Family::new("kube_pod_owner", "gauge");
    let mut rs_owner = Family::new("kube_replicaset_owner", "gauge");
    let mut requests = Family::new("kube_pod_container_resource_requests", "gauge");
    let mut mounts = Family::new("kube_pod_spec_volumes_persistentvolumeclaims_info", "gauge");
    let mut claim_info = Family::new("kube_persistentvolumeclaim_info", "gauge");
    let mut claim_bytes = Family::new(
        "kube_persistentvolumeclaim_resource_requests_storage_bytes",
        "gauge",
    );
    let mut claim_phase = Family::new("kube_persistentvolumeclaim_status_phase", "gauge");
    let mut cpu = Family::new("container_cpu_usage_seconds", "counter");
    let mut memory = Family::new("container_memory_working_set_bytes", "gauge");

    for n in &inventory.nodes {
        let node = &n.name;
        node_info.constant(
            &format!(r#"node="{node}",kernel_version="6.1.0""#),
            1.0,
            start,
            end,
        );
        if let Some(t) = &n.node_type {
            node_labels.constant(
                &format!(r#"node="{node}",label_node_kubernetes_io_instance_type="{t}""#),
                1.0,
                start,
                end,
            );
        }
        capacity.resources(&format!(r#"node="{node}""#), n.capacity, start, end);
    }
    let mut replicasets = std::collections::BTreeSet::new();
    for p in &inventory.pods {
        let (ns, pod) = (&p.namespace, &p.name);
        let node = p.node.as_deref().unwrap_or("");
        pod_info.constant(
            &format!(r#"namespace="{ns}",pod="{pod}",node="{node}",host_network="false""#),
            1.0,
            start,
            end,
        );
        let owner = match &p.owner {
            Some(deployment) => {
                let rs = format!("{deployment}-6f8d9c4b7");
                if replicasets.insert((ns.clone(), rs.clone())) {
                    rs_owner.constant(
                        &format!(
                            r#"namespace="{ns}",replicaset="{rs}",owner_kind="Deployment",owner_name="{deployment}",owner_is_controller="true""#
                        ),
                        1.0,
                        start,
                        end,
                    );
                }
                format!(r#"owner_kind="ReplicaSet",owner_name="{rs}",owner_is_controller="true""#)
            }
            None => {
                r#"owner_kind="<none>",owner_name="<none>",owner_is_controller="<none>""#.into()
            }
        };
        pod_owner.constant(
            &format!(r#"namespace="{ns}",pod="{pod}",{owner}"#),
            1.0,
            start,
            end,
        );
        let container = format!(r#"namespace="{ns}",pod="{pod}",container="app""#);
        requests.resources(
            &format!(r#"{container},node="{node}""#),
            p.requests,
            start,
            end,
        );
        for v in &p.volumes {
            mounts.constant(
                &format!(
                    r#"namespace="{ns}",pod="{pod}",volume="data",persistentvolumeclaim="{v}""#
                ),
                1.0,
                start,
                end,
            );
        }
        // The newest sample is the last day before `end`.
        let first_day = days - p.cpu_daily.len() as i64;
        let mut counter = 1_000.0; // a counter that did not start at zero
        for (i, millis) in p.cpu_daily.iter().enumerate() {
            let day_start = start + (first_day + i as i64) * DAY;
            let rate = *millis as f64 / 1_000.0;
            for h in 0..24 {
                let offset = h * HOUR + HOUR / 2;
                cpu.sample(
                    &container,
                    counter + rate * offset as f64,
                    day_start + offset,
                );
            }
            counter += rate * DAY as f64;
        }
        let first_day = days - p.memory_daily.len() as i64;
        for (i, mib) in p.memory_daily.iter().enumerate() {
            let day_start = start + (first_day + i as i64) * DAY;
            for h in 0..24 {
                memory.sample(
                    &container,
                    (mib * MIB) as f64,
                    day_start + h * HOUR + HOUR / 2,
                );
            }
        }
    }
    for c in &inventory.claims {
        let claim = format!(
            r#"namespace="{}",persistentvolumeclaim="{}""#,
            c.namespace, c.name
        );
        claim_info.constant(&format!(r#"{claim},storageclass="gp3""#), 1.0, start, end);
        claim_bytes.constant(&claim, (c.size_mib * MIB) as f64, start, end);
        for (phase, value) in [("Bound", 1.0), ("Lost", 0.0), ("Pending", 0.0)] {
            claim_phase.constant(&format!(r#"{claim},phase="{phase}""#), value, start, end);
        }
    }
    let mut text = String::new();
    for f in [
        node_info,
        node_labels,
        capacity,
        pod_info,
        pod_owner,
        rs_owner,
        requests,
        mounts,
        claim_info,
        claim_bytes,
        claim_phase,
        cpu,
        memory,
    ] {
        writeln!(text, "# TYPE {} {}", f.name, f.kind).unwrap();
        text.push_str(&f.lines);
    }
    text.push_str("# EOF\n");
    text
}

/// A Prometheus server on a backfilled data directory; killed when dropped.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is required: Debian's `prometheus` package (scripts/setup.sh --e2e installs it)"
    );
    Command::new(name)
}

impl Prometheus {
    async fn backfilled(openmetrics: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "awoooi-prometheus-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("usage.om");
        std::fs::write(&input, openmetrics).unwrap();
        let data = dir.join("data");
        let out = tool("promtool")
            .args([
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=24h",
            ])
            .arg(&input)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tool("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=3650d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/-/ready", server.url)).send().await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Prometheus did not become ready: {}",
            std::fs::read_to_string(server.dir.join("prometheus.log")).unwrap_or_default()
        );
    }

    fn source(&self) -> PrometheusSource {
        PrometheusSource::new(PrometheusConfig {
            url: self.url.clone(),
            days: 14,
            timeout_seconds: 30,
        })
    }
}

fn demo_inventory() -> Inventory {
    Inventory::from_sim(&SimCluster::demo()).normalised()
}

fn a_minute_ago() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp() - 60, 0).unwrap()
}

#[tokio::test]
async fn prometheus_gives_the_simulated_clusters_inventory_and_findings() {
    let simulated = demo_inventory();
    let end = a_minute_ago();
    let prometheus = Prometheus::backfilled(&openmetrics(&simulated, end.timestamp())).await;
    let read = prometheus.source().inventory(end).await.unwrap();
    // The same inventory, reading by reading: nodes and their types and capacity, pods with
    // node, owner (ReplicaSet → Deployment), requests, fourteen daily CPU and memory
    // readings and mounted claims, the bound claims and their sizes.
    assert_eq!(read.nodes, simulated.nodes);
    assert_eq!(read.claims, simulated.claims);
    assert_eq!(read.pods.len(), simulated.pods.len());
    for (got, want) in read.pods.iter().zip(&simulated.pods) {
        assert_eq!(got, want);
    }
    assert!(
        read.pods
            .iter()
            .any(|p| p.cpu_daily.len() == 14 && p.cpu_daily.windows(2).any(|w| w[0] != w[1])),
        "a pod whose usage varies by day is in the demo"
    );
    let (pricing, thresholds) = (Pricing::default(), Thresholds::default());
    let from_prometheus = scan(&read, &pricing, &thresholds);
    assert_eq!(from_prometheus, scan(&simulated, &pricing, &thresholds));
    assert_eq!(from_prometheus.monthly_waste.to_string(), "523.60");
    assert_eq!(from_prometheus.findings.len(), 4, "{from_prometheus:#?}");

    // A trailing slash in the URL is fine; a server that is not there is reported with
    // its address.
    let slash = PrometheusSource::new(PrometheusConfig {
        url: format!("{}/", prometheus.url),
        days: 14,
        timeout_seconds: 5,
    });
    assert_eq!(slash.inventory(end).await.unwrap(), read);
    drop(prometheus);
    let gone = PrometheusSource::new(PrometheusConfig {
        url: "http://127.0.0.1:9".into(),
        days: 14,
        timeout_seconds: 5,
    });
    let error = gone.inventory(end).await.unwrap_err();
    assert!(
        error.starts_with("Prometheus at http://127.0.0.1:9: "),
        "{error}"
    );
}

#[tokio::test]
async fn the_server_scans_from_prometheus_when_configured() {
    let end = Utc::now();
    let prometheus = Prometheus::backfilled(&openmetrics(&demo_inventory(), end.timestamp())).await;
    let toml = format!(
        "[finops]\nsource = \"prometheus\"\nscan_every_minutes = 0\n[finops.prometheus]\nurl = \"{}\"\n",
        prometheus.url
    );
    // The Kubernetes backend has no usage history of its own: Prometheus is where it comes
    // from. (The API server is never reached by a scan.)
    let server = TestServer::start_configured(
        Backend::Sqlite,
        &[],
        &format!(
            "{toml}[cluster]\nbackend = \"kubernetes\"\n[cluster.kubernetes]\nurl = \"http://127.0.0.1:9\"\n"
        ),
    )
    .await;
    let sre = server.signed_in("sam", "sre").await;
    let answer = server
        .graphql(
            Some(&sre),
            "mutation { runFinopsScan { monthlyWaste realizableMonthly freedMonthly annualIfAllFixed findings { recommendation monthlyCost risk } } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let report = &answer["data"]["runFinopsScan"];
    assert_eq!(report["monthlyWaste"], "523.60", "{report}");
    assert_eq!(report["realizableMonthly"], "480.00");
    assert_eq!(report["freedMonthly"], "43.60");
    assert_eq!(report["annualIfAllFixed"], "5760.00");
    let resize = &report["findings"][0];
    assert_eq!(resize["recommendation"], "Resize node 'worker-large-01'");
    assert_eq!(resize["monthlyCost"], "340.00");

    // Prometheus gone: the scan fails naming it, and the last report is kept.
    let url = prometheus.url.clone();
    drop(prometheus);
    let failed = server
        .graphql(
            Some(&sre),
            "mutation { runFinopsScan { monthlyWaste } }",
            json!({}),
        )
        .await;
    let message = failed["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("Prometheus at {url}")),
        "{failed}"
    );
    assert_eq!(failed["errors"][0]["extensions"]["code"], "CONFLICT");
    let kept = server
        .graphql(Some(&sre), "{ finopsReport { monthlyWaste } }", json!({}))
        .await;
    assert_eq!(kept["data"]["finopsReport"]["monthlyWaste"], "523.60");
}
