//! GraphRAG walks on a synthetic topology (scripts/bench-graph.sh generates it with 20,000
//! services and 200,000 edges, and times networkx on the same queries). One call = blast
//! radius + root causes of one service at depth 3.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::topology::Topology;

fn topology(c: &mut Criterion) {
    let dir = std::env::var("AWOOOI_GRAPH_DIR")
        .expect("set AWOOOI_GRAPH_DIR (scripts/bench-graph.sh generates the graph)");
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
    let topology = Topology::from_yaml(&read("topology.yaml")).unwrap();
    let queries: Vec<String> = read("queries.txt").lines().map(str::to_owned).collect();
    let unhealthy_names = read("unhealthy.txt");
    // Built once per question in the server; here once per run of 1,000 queries.
    let unhealthy = topology.unhealthy(unhealthy_names.lines());
    let mut group = c.benchmark_group("topology");
    group.sample_size(20);
    // Per call: the group iterates over all queries, criterion reports the total.
    group.bench_function("blast_radius_and_root_causes_x1000", |b| {
        b.iter(|| {
            let mut reached = 0usize;
            for service in &queries {
                let radius = topology.blast_radius(black_box(service), 3).unwrap();
                let causes = topology.root_causes(service, 3, &unhealthy).unwrap();
                reached += radius.affected.len() + causes.len();
            }
            black_box(reached)
        })
    });
    group.finish();
}

criterion_group!(benches, topology);
criterion_main!(benches);
