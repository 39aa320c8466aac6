//! Prints, for each line of standard input, the Shield's findings as a JSON array of
//! `[start, end, kind, label]` (byte offsets), with one label map for the whole input as
//! `awoooi redact` has (scored by scripts/shield-eval.sh).

use std::io::{BufRead, Write};

fn main() -> std::io::Result<()> {
    let shield = engine::shield::Shield::builtin();
    let mut names = engine::shield::Pseudonyms::new();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let spans: Vec<String> = shield
            .find(&line)
            .into_iter()
            .map(|f| {
                let label = names.label_for(f.kind, &line[f.start..f.end]);
                format!("[{},{},\"{}\",\"{}\"]", f.start, f.end, f.kind, label)
            })
            .collect();
        writeln!(out, "[{}]", spans.join(","))?;
    }
    out.flush()
}
