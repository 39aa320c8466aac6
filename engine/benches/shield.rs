//! Privacy Shield throughput on the generated log corpus (scripts/bench-shield.sh makes it and
//! sets AWOOOI_SHIELD_CORPUS). Baseline in the same run: one pass that only splits lines and
//! touches every byte, i.e. the floor any scanner pays.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::shield::{Pseudonyms, Shield};
use std::hint::black_box;

fn corpus() -> String {
    let path = std::env::var("AWOOOI_SHIELD_CORPUS")
        .expect("set AWOOOI_SHIELD_CORPUS (scripts/bench-shield.sh generates the corpus)");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn shield(c: &mut Criterion) {
    let text = corpus();
    let lines: Vec<&str> = text.lines().collect();
    let shield = Shield::builtin();
    let mut group = c.benchmark_group("shield");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("baseline_line_split", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for line in &lines {
                sum = sum.wrapping_add(line.bytes().map(u64::from).sum::<u64>());
            }
            black_box(sum)
        })
    });
    group.bench_function("find_per_line", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for line in &lines {
                found += shield.find(black_box(line)).len();
            }
            black_box(found)
        })
    });
    group.bench_function("redact_per_line", |b| {
        b.iter(|| {
            // As `awoooi redact` does: one output buffer, one label map for the whole stream.
            let mut names = Pseudonyms::new();
            let mut out = String::new();
            let mut bytes = 0usize;
            for line in &lines {
                out.clear();
                shield.redact_into(black_box(line), &mut names, &mut out);
                bytes += out.len();
            }
            black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, shield);
criterion_main!(benches);
