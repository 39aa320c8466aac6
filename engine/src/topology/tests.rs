use super::*;

fn causes(t: &Topology, service: &str, depth: i64, unhealthy: &[&str]) -> String {
    t.root_causes(service, depth, &t.unhealthy(unhealthy.iter().copied()))
        .unwrap()
        .iter()
        .map(|c| format!("{}@{}#{}", c.service, c.depth, c.rank))
        .collect::<Vec<_>>()
        .join(" ")
}

fn blast(t: &Topology, service: &str, depth: i64) -> String {
    t.blast_radius(service, depth)
        .unwrap()
        .affected
        .iter()
        .map(|a| format!("{}@{}", a.service, a.depth))
        .collect::<Vec<_>>()
        .join(" ")
}

fn graph(edges: &str) -> Topology {
    // "a>b a>c b>d" with kinds from the name's prefix: db*, cache*, q*, store*, else SERVICE.
    let mut specs: Vec<ServiceSpec> = Vec::new();
    let ensure = |name: &str, specs: &mut Vec<ServiceSpec>| {
        if !specs.iter().any(|s| s.name == name) {
            let kind = match name {
                n if n.starts_with("db") => ServiceKind::Database,
                n if n.starts_with("cache") => ServiceKind::Cache,
                n if n.starts_with('q') => ServiceKind::Queue,
                n if n.starts_with("store") => ServiceKind::Storage,
                _ => ServiceKind::Service,
            };
            specs.push(ServiceSpec {
                name: name.into(),
                kind,
                namespace: None,
                depends_on: vec![],
            });
        }
    };
    for edge in edges.split_whitespace() {
        let (from, to) = edge.split_once('>').unwrap();
        ensure(from, &mut specs);
        ensure(to, &mut specs);
        specs
            .iter_mut()
            .find(|s| s.name == from)
            .unwrap()
            .depends_on
            .push(to.into());
    }
    Topology::from_specs(&specs).unwrap()
}

#[test]
fn demo_scenario_of_the_seed() {
    let demo = Topology::demo();
    assert_eq!(demo.len(), 8);
    assert_eq!(
        causes(&demo, "frontend", 3, &["frontend", "postgres-db"]),
        "postgres-db@2#1"
    );
    assert_eq!(blast(&demo, "frontend", 3), "ingress@1");
    assert_eq!(
        blast(&demo, "postgres-db", 3),
        "auth-service@1 order-api@1 product-api@1 frontend@2 ingress@3"
    );
    // Several unhealthy dependencies: all of them, ranked by kind.
    assert_eq!(
        causes(
            &demo,
            "frontend",
            3,
            &["order-queue", "redis-cache", "postgres-db", "auth-service"]
        ),
        "postgres-db@2#1 redis-cache@2#2 order-queue@2#3 auth-service@1#4"
    );
}

/// (graph, service, depth, unhealthy, expected root causes, expected blast radius)
type WalkCase<'a> = (&'a str, &'a str, i64, &'a [&'a str], &'a str, &'a str);

#[test]
fn walks_over_shapes_and_fault_sets() {
    let cases: &[WalkCase] = &[
        // Diamond: d is reached once, at its shortest depth.
        ("a>b a>c b>dbx c>dbx", "a", 3, &["dbx"], "dbx@2#1", ""),
        ("a>b a>c b>dbx c>dbx", "dbx", 3, &[], "", "b@1 c@1 a@2"),
        // Cycle: the walk ends; the queried service is never its own root cause.
        (
            "a>b b>c c>a",
            "a",
            10,
            &["a", "b", "c"],
            "b@1#1 c@2#2",
            "c@1 b@2",
        ),
        ("a>b b>c c>a", "a", 10, &[], "", "c@1 b@2"),
        // Depth limits, both ways.
        ("a>b b>c c>dbx", "a", 2, &["dbx"], "", ""),
        ("a>b b>c c>dbx", "a", 3, &["dbx"], "dbx@3#1", ""),
        ("a>b b>c c>dbx", "dbx", 1, &[], "", "c@1"),
        // Kind beats depth; depth beats name; name breaks ties.
        (
            "a>svc a>cache1 svc>dbx",
            "a",
            3,
            &["svc", "cache1", "dbx"],
            "dbx@2#1 cache1@1#2 svc@1#3",
            "",
        ),
        (
            "a>qb a>qa a>store b>qc",
            "a",
            3,
            &["qa", "qb", "qc", "store"],
            "qa@1#1 qb@1#2 store@1#3",
            "",
        ),
        ("a>b b>qc a>qz", "a", 3, &["qc", "qz"], "qz@1#1 qc@2#2", ""),
        // Healthy everywhere: nothing to blame.
        ("a>b b>dbx", "a", 3, &[], "", ""),
    ];
    for (edges, service, depth, unhealthy, expect_causes, expect_blast) in cases {
        let t = graph(edges);
        assert_eq!(
            causes(&t, service, *depth, unhealthy),
            *expect_causes,
            "root causes of {service} in {edges} with {unhealthy:?}"
        );
        assert_eq!(
            blast(&t, service, *depth),
            *expect_blast,
            "blast radius of {service} in {edges}"
        );
    }
}

#[test]
fn bad_input_is_named() {
    let demo = Topology::demo();
    for (depth, ok) in [(0, false), (1, true), (10, true), (11, false), (-3, false)] {
        assert_eq!(demo.blast_radius("frontend", depth).is_ok(), ok, "{depth}");
    }
    assert_eq!(
        demo.root_causes("frontend", 0, &Unhealthy::default())
            .unwrap_err()
            .to_string(),
        "maxDepth must be between 1 and 10, got 0"
    );
    assert_eq!(
        demo.blast_radius("nope", 3).unwrap_err(),
        TopologyError::UnknownService("nope".into())
    );
    for (yaml, message) in [
        (
            "services: [{name: a, kind: SERVICE}, {name: a, kind: CACHE}]",
            "service `a` is declared twice",
        ),
        (
            "services: [{name: a, kind: SERVICE, depends_on: [b]}]",
            "service `a` depends on `b`, which is not declared",
        ),
        (
            "services: [{name: ' ', kind: SERVICE}]",
            "service #1 has an empty name",
        ),
    ] {
        assert_eq!(Topology::from_yaml(yaml).unwrap_err().to_string(), message);
    }
    let unknown_kind = Topology::from_yaml("services: [{name: a, kind: MAINFRAME}]").unwrap_err();
    assert!(
        unknown_kind.to_string().contains("MAINFRAME"),
        "{unknown_kind}"
    );
    let typo =
        Topology::from_yaml("services: [{name: a, kind: SERVICE, dependson: [b]}]").unwrap_err();
    assert!(typo.to_string().contains("dependson"), "{typo}");
}

#[test]
fn edges_and_services_round_trip_the_file() {
    let t = Topology::from_yaml(
        "services:\n  - {name: web, kind: INGRESS, depends_on: [api]}\n  - {name: api, kind: SERVICE, namespace: prod}\n",
    )
    .unwrap();
    assert_eq!(t.edges().collect::<Vec<_>>(), [("web", "api")]);
    let api = t.services().find(|s| s.name == "api").unwrap();
    assert_eq!(api.namespace.as_deref(), Some("prod"));
    assert!(t.contains("web") && !t.contains("db"));
}

/// Shortest hop counts from `start` within `max_depth`, by a plain BFS over the spec lists
/// (`down`: along `depends_on`; otherwise against it), the start excluded.
fn reference_depths(
    specs: &[ServiceSpec],
    start: &str,
    max_depth: u32,
    down: bool,
) -> std::collections::BTreeMap<String, u32> {
    let mut depth = std::collections::BTreeMap::from([(start.to_owned(), 0)]);
    let mut frontier = vec![start.to_owned()];
    for d in 1..=max_depth {
        let mut next = Vec::new();
        for node in &frontier {
            for spec in specs {
                let neighbours: Vec<&String> = if down {
                    if spec.name == *node {
                        spec.depends_on.iter().collect()
                    } else {
                        vec![]
                    }
                } else if spec.depends_on.contains(node) {
                    vec![&spec.name]
                } else {
                    vec![]
                };
                for n in neighbours {
                    if !depth.contains_key(n) {
                        depth.insert(n.clone(), d);
                        next.push(n.clone());
                    }
                }
            }
        }
        frontier = next;
    }
    depth.remove(start);
    depth
}

proptest::proptest! {
    /// On random graphs of random sizes, queried one after another on one thread (so the
    /// walks' reused buffers carry over between topologies of different sizes): the blast
    /// radius, its length and the root causes hold exactly the services a plain BFS reaches,
    /// each at its shortest depth, nearest first.
    #[test]
    fn walks_match_a_plain_breadth_first_search(
        graphs in proptest::collection::vec(
            (1usize..150, proptest::collection::vec((0usize..150, 0usize..150), 0..400), 1u32..5),
            1..6,
        )
    ) {
        for (size, edges, depth) in graphs {
            let mut specs: Vec<ServiceSpec> = (0..size)
                .map(|i| ServiceSpec {
                    name: format!("s{i:03}"),
                    kind: if i % 7 == 0 { ServiceKind::Database } else { ServiceKind::Service },
                    namespace: None,
                    depends_on: vec![],
                })
                .collect();
            for (from, to) in edges {
                let (from, to) = (from % size, to % size);
                let to = specs[to].name.clone();
                if !specs[from].depends_on.contains(&to) {
                    specs[from].depends_on.push(to);
                }
            }
            let t = Topology::from_specs(&specs).unwrap();
            let unhealthy = t.unhealthy(specs.iter().step_by(3).map(|s| s.name.as_str()));
            for start in specs.iter().step_by(size.div_ceil(8)) {
                let up = reference_depths(&specs, &start.name, depth, false);
                let radius = t.blast_radius(&start.name, i64::from(depth)).unwrap();
                let got: std::collections::BTreeMap<String, u32> =
                    radius.affected.iter().map(|a| (a.service.to_owned(), a.depth)).collect();
                proptest::prop_assert_eq!(&got, &up);
                proptest::prop_assert_eq!(radius.affected.len(), up.len());
                proptest::prop_assert!(radius.affected.windows(2).all(|w| w[0].depth <= w[1].depth));
                proptest::prop_assert_eq!(
                    t.blast_radius_len(&start.name, i64::from(depth)).unwrap(),
                    up.len()
                );
                let down = reference_depths(&specs, &start.name, depth, true);
                let expected: std::collections::BTreeMap<String, u32> = down
                    .into_iter()
                    .filter(|(name, _)| name[1..].parse::<usize>().unwrap() % 3 == 0)
                    .collect();
                let got: std::collections::BTreeMap<String, u32> = t
                    .root_causes(&start.name, i64::from(depth), &unhealthy)
                    .unwrap()
                    .iter()
                    .map(|c| (c.service.to_owned(), c.depth))
                    .collect();
                proptest::prop_assert_eq!(got, expected);
            }
        }
    }
}

/// Past 65,536 services the adjacency numbers services in 32 bits: walks over the services
/// numbered beyond 16 bits give the same answers as near the start.
#[test]
fn walks_past_sixteen_bit_service_numbers() {
    let n = 70_000;
    let name = |i: usize| format!("svc-{i:05}");
    // A chain: each service depends on the next; the last one is a database.
    let specs: Vec<ServiceSpec> = (0..n)
        .map(|i| ServiceSpec {
            name: name(i),
            kind: if i == n - 1 {
                ServiceKind::Database
            } else {
                ServiceKind::Service
            },
            namespace: None,
            depends_on: if i + 1 < n { vec![name(i + 1)] } else { vec![] },
        })
        .collect();
    let t = Topology::from_specs(&specs).unwrap();
    assert!(matches!(t.outgoing, Adjacency::Wide(_)));
    assert_eq!(
        blast(&t, &name(n - 1), 3),
        "svc-69998@1 svc-69997@2 svc-69996@3"
    );
    assert_eq!(blast(&t, &name(2), 3), "svc-00001@1 svc-00000@2");
    assert_eq!(
        causes(&t, &name(n - 3), 3, &[&name(n - 1), &name(n - 2)]),
        "svc-69999@2#1 svc-69998@1#2"
    );
    let small = graph("a>b b>c");
    assert!(matches!(small.outgoing, Adjacency::Narrow(_)));
    assert_eq!(blast(&small, "c", 3), "b@1 a@2");
}
