//! Embedding throughput on one core: every line of standard input embedded once, then the
//! rate printed (entries/s, tokens/s). `cargo run --release -p embed --example embed_rate --
//! MODEL_DIR < lines.txt`
use std::io::BufRead;
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: embed_rate MODEL_DIR < lines");
    let started = Instant::now();
    let model = embed::Model::load(dir.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let loaded = started.elapsed();
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| l.expect("utf-8 line"))
        .collect();
    let started = Instant::now();
    let mut tokens = 0;
    for line in &lines {
        tokens += model.tokens(line).len();
        std::hint::black_box(model.embed(line));
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "model loaded in {:.2} s; {} entries, {} tokens in {took:.2} s: {:.1} entries/s, {:.0} tokens/s",
        loaded.as_secs_f64(),
        lines.len(),
        tokens,
        lines.len() as f64 / took,
        tokens as f64 / took
    );
}
