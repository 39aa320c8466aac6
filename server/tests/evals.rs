//! The evaluation suite's fast subset (`evals/`; the whole suite is `awoooi eval`): every
//! single-cause scenario with its symptoms' alerts first, each against a fresh in-process
//! server on SQLite, must end with the expected root cause, an analysis that agrees, the
//! expected fix on the expected target with a passing dry-run, and no stale proposal.

use engine::eval::OrderClass;
use server::edge::evals::{EvalOptions, report, run};

#[test]
fn every_single_cause_scenario_settles_on_its_fix_symptoms_first() {
    let options = EvalOptions {
        dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals"),
        classes: vec![OrderClass::SymptomsFirst],
        only: None,
        single_only: true,
        quiet: std::time::Duration::from_millis(200),
        jobs: 2,
        seed: 7,
    };
    let results = run(&options, |_, _, _| {}).expect("the suite runs");
    assert!(results.len() >= 36, "{} runs", results.len());
    let mut table = Vec::new();
    report(&results, &mut table).unwrap();
    assert!(
        results.iter().all(|g| g.passed()),
        "{}",
        String::from_utf8_lossy(&table)
    );
}
