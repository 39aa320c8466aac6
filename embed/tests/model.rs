//! The encoder and tokenizer against the reference implementations' own output on the same
//! model (fixtures written by `fixtures/make_golden.py` with sentence-transformers and Hugging
//! Face `tokenizers`). Needs the model `scripts/setup.sh` installs; fails, naming the path,
//! without it.

use std::path::PathBuf;
use std::sync::OnceLock;

use embed::Model;

/// Where `scripts/setup.sh` puts the model, or `AWOOOI_EMBED_MODEL`.
fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AWOOOI_EMBED_MODEL") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/awoooi/models/all-minilm-l6-v2")
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = model_dir();
        Model::load(&dir).unwrap_or_else(|e| {
            panic!(
                "the embedding model at {} ({e}): run scripts/setup.sh --e2e",
                dir.display()
            )
        })
    })
}

#[derive(serde::Deserialize)]
struct Golden {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn golden() -> Vec<Golden> {
    serde_json::from_str(include_str!("fixtures/golden.json")).expect("golden.json parses")
}

#[test]
fn token_ids_equal_the_reference_tokenizers() {
    for g in golden() {
        assert_eq!(model().tokens(&g.text), g.ids, "tokens of {:?}", g.text);
    }
}

/// Every line of the Shield's labelled corpus (20 real log formats): the same ids as the
/// reference, compared by a digest per line.
#[test]
fn token_ids_of_real_log_lines_equal_the_reference_tokenizers() {
    let lines: Vec<String> = include_str!("../../evals/shield/corpus.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("corpus line parses");
            v["text"].as_str().expect("text").to_owned()
        })
        .collect();
    let digests: Vec<&str> = include_str!("fixtures/corpus_tokens.txt").lines().collect();
    assert_eq!(lines.len(), digests.len(), "one digest per corpus line");
    let differing: Vec<usize> = lines
        .iter()
        .zip(&digests)
        .enumerate()
        .filter(|(_, (line, want))| format!("{:016x}", fnv(&model().tokens(line))) != **want)
        .map(|(i, _)| i + 1)
        .collect();
    assert!(
        differing.is_empty(),
        "{} lines tokenised differently, e.g. lines {:?}",
        differing.len(),
        &differing[..differing.len().min(10)]
    );
}

#[test]
fn embeddings_equal_sentence_transformers_within_float_error() {
    for g in golden() {
        let got = model().embed(&g.text);
        assert_eq!(got.len(), 384);
        let worst = got
            .iter()
            .zip(&g.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{:?}: largest difference {worst}", g.text);
        assert!(embed::dot(&got, &g.embedding) > 0.99999, "{:?}", g.text);
    }
}

#[test]
fn paraphrases_score_above_unrelated_failures() {
    let m = model();
    let pool = m.embed("database connection pool exhausted");
    let clients = m.embed("FATAL: sorry, too many clients already");
    let disk = m.embed("no space left on device while writing the WAL");
    let cert = m.embed("x509: certificate has expired");
    let near = embed::dot(&pool, &clients);
    assert!(near > embed::dot(&pool, &disk), "{near}");
    assert!(near > embed::dot(&pool, &cert), "{near}");
}

#[test]
fn a_missing_model_file_is_named_in_the_error() {
    let dir = std::env::temp_dir().join(format!("embed-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Model::load(&dir)
        .err()
        .expect("an empty directory is no model")
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn fnv(ids: &[u32]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for id in ids {
        for b in id.to_le_bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
