//! Prints, for each line of standard input, the Shield's findings as a JSON array of
//! `[start, end, kind]` byte spans (used to score recall and precision in
//! scripts/bench-shield.sh).

use std::io::{BufRead, Write};

fn main() {
    let shield = engine::shield::Shield::builtin();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let line = line.expect("UTF-8 input");
        let spans: Vec<String> = shield
            .find(&line)
            .into_iter()
            .map(|f| format!("[{},{},\"{}\"]", f.start, f.end, f.kind))
            .collect();
        writeln!(out, "[{}]", spans.join(",")).expect("write");
    }
}
