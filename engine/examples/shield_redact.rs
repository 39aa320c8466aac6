//! `awoooi redact` without the server around it: standard input to standard output through
//! [`Shield::redact_stream`], the function the CLI calls (for profiling and throughput runs).

fn main() -> std::io::Result<()> {
    let shield = engine::shield::Shield::builtin();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    shield.redact_stream(stdin.lock(), std::io::BufWriter::new(stdout.lock()))?;
    Ok(())
}
