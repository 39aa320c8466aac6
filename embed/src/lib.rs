//! Sentence embeddings on the CPU, for finding past incidents by meaning.
//!
//! [`Model::load`] reads a sentence-transformers model directory of a BERT encoder with mean
//! pooling (all-MiniLM-L6-v2: `config.json`, `tokenizer.json`, `model.safetensors`,
//! `sentence_bert_config.json`) and [`Model::embed`] turns a text into a unit vector: WordPiece
//! tokens, the encoder, the mean of its last hidden states, L2-normalised — so the dot product
//! of two embeddings is their cosine similarity. Nothing here touches the network; the caller
//! reads the files ([`Model::load`] takes a directory and reads four files, nothing else).

mod bert;
mod safetensors;
mod tokenizer;

use std::path::Path;

pub use bert::Shape;
pub use tokenizer::Tokenizer;

/// Why a model directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Format(String),
}

/// A loaded sentence-embedding model.
pub struct Model {
    tokenizer: Tokenizer,
    bert: bert::Bert,
    max_tokens: usize,
    fingerprint: String,
}

/// The sequence length sentence-transformers uses when `sentence_bert_config.json` gives none.
const DEFAULT_MAX_TOKENS: usize = 256;

impl Model {
    /// Loads the model in `dir`. Errors name the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| LoadError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let config = read("config.json")?;
        let tokenizer = read("tokenizer.json")?;
        let weights = read("model.safetensors")?;
        let max_tokens =
            match read("sentence_bert_config.json") {
                Ok(bytes) => {
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .map_err(|e| LoadError::Format(format!("sentence_bert_config.json: {e}")))?
                        ["max_seq_length"]
                        .as_u64()
                        .map_or(DEFAULT_MAX_TOKENS, |v| v as usize)
                }
                Err(LoadError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    DEFAULT_MAX_TOKENS
                }
                Err(e) => return Err(e),
            };
        Self::from_bytes(&config, &tokenizer, &weights, max_tokens)
    }

    /// The model from the contents of its files.
    pub fn from_bytes(
        config: &[u8],
        tokenizer_bytes: &[u8],
        weights: &[u8],
        max_tokens: usize,
    ) -> Result<Self, LoadError> {
        let shape = Shape::from_config(config)?;
        let tokenizer = Tokenizer::from_json(tokenizer_bytes)?;
        let bert = bert::Bert::load(shape, &safetensors::Tensors::parse(weights)?)?;
        if tokenizer.vocab_len() > bert.vocab() {
            return Err(LoadError::Format(format!(
                "tokenizer.json has {} tokens but the model embeds only {}",
                tokenizer.vocab_len(),
                bert.vocab()
            )));
        }
        let max_tokens = max_tokens.clamp(3, shape.max_positions);
        let fingerprint = format!(
            "bert{}x{}-{:016x}",
            shape.layers,
            shape.hidden,
            fnv1a(&[config, tokenizer_bytes, weights])
        );
        Ok(Model {
            tokenizer,
            bert,
            max_tokens,
            fingerprint,
        })
    }

    /// The length of every embedding.
    pub fn dims(&self) -> usize {
        self.bert.shape.hidden
    }

    /// Names these exact weights: the shape and a digest of the three files. A stored vector
    /// made by another fingerprint is stale.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// How many tokens a text is cut to (with `[CLS]` and `[SEP]`).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The token ids the model reads for `text`.
    pub fn tokens(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.max_tokens)
    }

    /// The text's embedding: the mean of the encoder's last hidden states over every token
    /// (with `[CLS]` and `[SEP]`), scaled to length 1.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let ids = self.tokens(text);
        let hidden = self.bert.forward(&ids);
        let h = self.dims();
        let mut mean = vec![0f32; h];
        for row in hidden.chunks_exact(h) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        let n = ids.len() as f32;
        for m in mean.iter_mut() {
            *m /= n;
        }
        normalise(&mut mean);
        mean
    }
}

/// Scales `v` to length 1 (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v.iter_mut() {
        *x /= norm;
    }
}

/// The dot product; for unit vectors, the cosine similarity.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// 64-bit FNV-1a over several byte strings in turn.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The `k` rows of `vectors` (each `dims` long, row-major) with the largest dot product with
/// `query`, best first, skipping the rows `skip` names; ties go to the later row. O(n·dims)
/// time, O(k) memory: an exact scan, no approximation.
pub fn nearest(
    query: &[f32],
    vectors: &[f32],
    dims: usize,
    k: usize,
    mut skip: impl FnMut(usize) -> bool,
) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    if k == 0 || dims == 0 || query.len() != dims {
        return best;
    }
    for (row, vector) in vectors.chunks_exact(dims).enumerate() {
        if skip(row) {
            continue;
        }
        let score = dot8(query, vector);
        if best.len() == k && best[k - 1].1 > score {
            continue;
        }
        let at = best.partition_point(|&(_, s)| s > score);
        best.insert(at, (row, score));
        best.truncate(k);
    }
    best
}

/// The dot product in eight lanes, which the compiler turns into vector instructions (a
/// single running sum cannot be reordered, so it stays scalar).
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + dot(a_rest, b_rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_ranks_by_dot_product_and_skips_what_it_is_told() {
        let vectors = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        let query = [0.8, 0.6];
        let all = nearest(&query, &vectors, 2, 3, |_| false);
        let rows: Vec<usize> = all.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, [2, 0, 1]);
        assert!((all[0].1 - 0.96).abs() < 1e-6);
        let rows: Vec<usize> = nearest(&query, &vectors, 2, 2, |r| r == 2)
            .iter()
            .map(|(r, _)| *r)
            .collect();
        assert_eq!(rows, [0, 1]);
        assert!(
            nearest(&query, &vectors, 3, 2, |_| false).is_empty(),
            "wrong dims"
        );
    }

    #[test]
    fn dot8_equals_the_plain_dot_product() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        assert!((dot8(&a, &b) - dot(&a, &b)).abs() < 1e-4);
    }
}
