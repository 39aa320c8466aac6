//! The retrieval index's exact scan (`embed::nearest`, top 20) over 1,000 and 100,000 unit
//! vectors of 384 dimensions, against a baseline that only adds up the bits of the same 100,000 vectors (one
//! pass over the same memory). `cargo bench -p embed --bench nearest`
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const DIMS: usize = 384;

/// Deterministic pseudo-random unit vectors (xorshift), no extra crate.
fn vectors(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n * DIMS);
    for _ in 0..n {
        let row: Vec<f32> = (0..DIMS)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let mut row = row;
        embed::normalise(&mut row);
        out.extend(row);
    }
    out
}

fn bench(c: &mut Criterion) {
    let query = vectors(1, 7);
    let small = vectors(1_000, 11);
    let large = vectors(100_000, 13);
    let mut group = c.benchmark_group("nearest");
    group.bench_function("baseline_sum_100k", |b| {
        b.iter(|| {
            black_box(
                large
                    .iter()
                    .fold(0u32, |acc, x| acc.wrapping_add(x.to_bits())),
            )
        })
    });
    group.bench_function("top20_of_1k", |b| {
        b.iter(|| black_box(embed::nearest(&query, &small, DIMS, 20, |_| false)))
    });
    group.bench_function("top20_of_100k", |b| {
        b.iter(|| black_box(embed::nearest(&query, &large, DIMS, 20, |_| false)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
