use super::*;

fn money(text: &str) -> String {
    text.to_owned()
}

#[test]
fn the_demo_cluster_reproduces_the_seed_panel() {
    let report = scan(
        &Inventory::from_sim(&SimCluster::demo()),
        &Pricing::default(),
        &Thresholds::default(),
    );
    assert_eq!(report.monthly_waste.to_string(), money("523.60"));
    assert_eq!(report.realizable_monthly.to_string(), "480.00");
    assert_eq!(report.freed_monthly.to_string(), "43.60");
    assert_eq!(report.annual_if_all_fixed.to_string(), "5760.00");
    let line = |f: &Finding| format!("{} -${} {:?}", f.recommendation, f.monthly_cost, f.risk);
    let lines: Vec<String> = report.findings.iter().map(line).collect();
    for wanted in [
        "Delete orphaned PVC 'data-postgres-backup' -$40.00 Low",
        "Resize node 'worker-large-01' -$340.00 High",
        "Delete zombie Pod 'legacy-api-5d7b8' -$76.00 Medium",
    ] {
        assert!(
            lines.iter().any(|l| l == wanted),
            "{wanted} not in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let resize = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::OverprovisionedNode)
        .unwrap();
    assert_eq!(
        resize.action_params,
        serde_json::json!({"node_type": "t3.2xlarge"})
    );
}

fn pod(name: &str, cpu_request: u64, cpu_daily: Vec<u64>) -> PodFacts {
    PodFacts {
        namespace: "prod".into(),
        name: name.into(),
        node: None,
        owner: None,
        requests: Resources {
            cpu_millis: cpu_request,
            memory_mib: 1_024,
        },
        memory_daily: vec![0; cpu_daily.len()],
        cpu_daily,
        volumes: Vec::new(),
    }
}

/// (daily CPU use of a 1000m request, newest last) → zombie?
#[test]
fn zombies_need_seven_straight_days_under_one_percent() {
    let cases: &[(&[u64], bool)] = &[
        (&[9; 7], true),                      // 0.9% for exactly 7 days
        (&[9; 6], false),                     // 6 days are not enough
        (&[10; 7], false),                    // exactly 1% is not under 1%
        (&[500, 9, 9, 9, 9, 9, 9, 9], true),  // busy once, then 7 idle days
        (&[9, 9, 9, 9, 9, 9, 9, 500], false), // busy yesterday: not a zombie now
        (&[9, 9, 9, 500, 9, 9, 9, 9], false), // the idle days are not consecutive
        (&[0; 30], true),
        (&[], false),
    ];
    for (daily, zombie) in cases {
        let inventory = Inventory {
            pods: vec![pod("p", 1_000, daily.to_vec())],
            ..Inventory::default()
        };
        let report = scan(&inventory, &Pricing::default(), &Thresholds::default());
        assert_eq!(report.findings.len() == 1, *zombie, "{daily:?}");
    }
    // Thresholds are configuration.
    let inventory = Inventory {
        pods: vec![pod("p", 1_000, vec![40; 3])],
        ..Inventory::default()
    };
    let lax = Thresholds {
        zombie_cpu_percent: 5,
        zombie_days: 3,
        ..Thresholds::default()
    };
    assert_eq!(
        scan(&inventory, &Pricing::default(), &lax).findings.len(),
        1
    );
    // No request, no judgement.
    let inventory = Inventory {
        pods: vec![pod("p", 0, vec![0; 10])],
        ..Inventory::default()
    };
    assert!(
        scan(&inventory, &Pricing::default(), &Thresholds::default())
            .findings
            .is_empty()
    );
}

#[test]
fn the_safety_buffer_decides_what_is_freed_and_which_node_fits() {
    // A zombie pod on an unpriced node: 1 vCPU + 1 GiB at 0.04 + 0.005 per hour × 730.
    let mut p = pod("p", 1_000, vec![0; 7]);
    p.memory_daily = vec![512; 7];
    let report = scan(
        &Inventory {
            pods: vec![p],
            ..Inventory::default()
        },
        &Pricing::default(),
        &Thresholds::default(),
    );
    let f = &report.findings[0];
    assert_eq!(f.monthly_cost.to_string(), "32.85"); // 29.20 + 3.65
    // Freed: 1000m - 0 × 1.2 of CPU (29.20) + 1024 - 512 × 1.2 = 409.6 MiB (1.46).
    assert_eq!(f.saving.to_string(), "30.66");

    // A node whose peak × 1.2 no longer fits the smaller type is left alone.
    let node = |usage_mib: u64| Inventory {
        nodes: vec![NodeFacts {
            name: "big".into(),
            node_type: Some("t3.2xlarge".into()),
            capacity: Resources {
                cpu_millis: 8_000,
                memory_mib: 32_768,
            },
        }],
        pods: vec![PodFacts {
            node: Some("big".into()),
            memory_daily: vec![usage_mib; 7],
            cpu_daily: vec![500; 7],
            ..pod("w", 4_000, Vec::new())
        }],
        claims: Vec::new(),
    };
    // m5.xlarge has 16384 MiB: 13653 × 1.2 = 16383.6 fits, 13654 × 1.2 = 16384.8 does not.
    let fits = scan(&node(13_653), &Pricing::default(), &Thresholds::default());
    assert_eq!(fits.findings.len(), 1, "{fits:?}");
    assert_eq!(fits.findings[0].saving.to_string(), "68.00");
    let tight = scan(&node(13_654), &Pricing::default(), &Thresholds::default());
    assert!(tight.findings.is_empty(), "{tight:?}");
}

#[test]
fn amounts_round_once_half_up_to_cents() {
    let p = Price::parse("0.10").unwrap();
    // 1 MiB at 0.10/GiB-month = 0.0000976… → 0.00; 52 MiB = 0.00507… → 0.01.
    assert_eq!(p.times(1, 1_024).to_string(), "0.00");
    assert_eq!(p.times(52, 1_024).to_string(), "0.01");
    // Exactly half a cent rounds up.
    assert_eq!(
        Price::parse("0.005").unwrap().times(1, 1).to_string(),
        "0.01"
    );
    assert_eq!(
        Price::parse("0.0049").unwrap().times(1, 1).to_string(),
        "0.00"
    );
    assert_eq!(Money(-4000).to_string(), "-40.00");
    assert_eq!(Money(5).to_string(), "0.05");
    // Claims: 400 GiB at 0.10 is 40.00 exactly; 1.5 GiB is 0.15.
    let claims = |mib| Inventory {
        claims: vec![ClaimFacts {
            namespace: "x".into(),
            name: "c".into(),
            size_mib: mib,
        }],
        ..Inventory::default()
    };
    let cost = |mib| {
        scan(&claims(mib), &Pricing::default(), &Thresholds::default()).findings[0]
            .monthly_cost
            .to_string()
    };
    assert_eq!(cost(400 * 1_024), "40.00");
    assert_eq!(cost(1_536), "0.15");
}

#[test]
fn prices_parse_exactly_or_are_refused() {
    assert_eq!(Price::parse("152.00").unwrap(), Price(152 * NANO));
    assert_eq!(Price::parse("0.000000001").unwrap(), Price(1));
    for bad in ["", "-1", "1e3", "0.0000000001", "1,5", ".5", "abc"] {
        assert!(Price::parse(bad).is_err(), "{bad:?}");
    }
    let pricing: Pricing = toml_like(
        r#"{"vcpu_hour": "0.04", "gib_hour": 0.005, "storage_gib_month": "0.10",
            "node_types": {"n": {"cpu_millis": 1000, "memory_mib": 1024, "monthly": "10"}}}"#,
    );
    assert_eq!(pricing.gib_hour, Price::parse("0.005").unwrap());
    assert_eq!(pricing.currency, "USD");
    assert_eq!(pricing.hours_per_month, 730);
}

fn toml_like(json: &str) -> Pricing {
    serde_json::from_str(json).unwrap()
}

#[test]
fn a_resize_recommendation_is_an_action_the_simulated_cluster_dry_runs_and_applies() {
    use crate::dryrun::dry_run;
    use crate::simcluster::EXECUTOR;
    let mut cluster = SimCluster::demo();
    let report = scan(
        &Inventory::from_sim(&cluster),
        &Pricing::default(),
        &Thresholds::default(),
    );
    let resize = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::OverprovisionedNode)
        .unwrap();
    let request = crate::policy::ActionRequest {
        kind: resize.action_kind.clone(),
        target: resize.resource.clone(),
        namespace: None,
        params: resize.action_params.clone(),
        labels: Default::default(),
        requested_by: "finops".into(),
    };
    let checked = dry_run(&request, &cluster, EXECUTOR, 0, 10);
    assert!(checked.passed, "{checked:?}");
    assert_eq!(
        cluster.apply(1, &request).unwrap(),
        "nodes/worker-large-01 resized from m5.4xlarge to t3.2xlarge"
    );
    let mut bad = request.clone();
    bad.params = serde_json::json!({});
    assert!(!dry_run(&bad, &cluster, EXECUTOR, 0, 10).passed);
}
