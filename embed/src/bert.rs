//! The BERT encoder's forward pass for one sequence, in f32: embeddings, `layers` blocks of
//! multi-head self-attention and a GELU feed-forward, each followed by a residual and layer
//! normalisation (post-norm, as in BERT). Matrix products go through `matrixmultiply`'s sgemm.

use crate::LoadError;
use crate::safetensors::Tensors;

/// The shape of the encoder, from `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub max_positions: usize,
}

impl Shape {
    pub(crate) fn from_config(bytes: &[u8]) -> Result<Self, LoadError> {
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| LoadError::Format(format!("config.json: {e}")))?;
        let field = |name: &str| {
            json[name]
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    LoadError::Format(format!("config.json: {name} is missing or not a count"))
                })
        };
        if json["model_type"] != "bert" {
            return Err(LoadError::Format(format!(
                "config.json: model_type is {}, expected \"bert\"",
                json["model_type"]
            )));
        }
        if let Some(act) = json["hidden_act"].as_str().filter(|a| *a != "gelu") {
            return Err(LoadError::Format(format!(
                "config.json: hidden_act {act:?} is not supported (only \"gelu\")"
            )));
        }
        let shape = Shape {
            hidden: field("hidden_size")?,
            heads: field("num_attention_heads")?,
            layers: field("num_hidden_layers")?,
            intermediate: field("intermediate_size")?,
            max_positions: field("max_position_embeddings")?,
        };
        if !shape.hidden.is_multiple_of(shape.heads) {
            return Err(LoadError::Format(format!(
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                shape.hidden, shape.heads
            )));
        }
        Ok(shape)
    }
}

/// A dense layer: `y = x Wᵀ + b`, with `W` as stored (`[out, in]`, row-major).
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked into one `[3·hidden, hidden]` product.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

pub(crate) struct Bert {
    pub(crate) shape: Shape,
    words: Vec<f32>,
    vocab: usize,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// BERT's layer-normalisation epsilon.
const EPSILON: f32 = 1e-12;

impl Bert {
    pub(crate) fn load(shape: Shape, tensors: &Tensors) -> Result<Self, LoadError> {
        let h = shape.hidden;
        let norm = |prefix: &str| -> Result<LayerNorm, LoadError> {
            Ok(LayerNorm {
                weight: tensors.f32(&format!("{prefix}.weight"), &[h])?,
                bias: tensors.f32(&format!("{prefix}.bias"), &[h])?,
            })
        };
        let linear = |prefix: &str, outputs: usize, inputs: usize| -> Result<Linear, LoadError> {
            Ok(Linear {
                weight: tensors.f32(&format!("{prefix}.weight"), &[outputs, inputs])?,
                bias: tensors.f32(&format!("{prefix}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let vocab = tensors.rows("embeddings.word_embeddings.weight")?;
        let mut layers = Vec::with_capacity(shape.layers);
        for l in 0..shape.layers {
            let p = format!("encoder.layer.{l}");
            let (q, k, v) = (
                linear(&format!("{p}.attention.self.query"), h, h)?,
                linear(&format!("{p}.attention.self.key"), h, h)?,
                linear(&format!("{p}.attention.self.value"), h, h)?,
            );
            let qkv = Linear {
                weight: [q.weight, k.weight, v.weight].concat(),
                bias: [q.bias, k.bias, v.bias].concat(),
                inputs: h,
                outputs: 3 * h,
            };
            layers.push(Layer {
                qkv,
                attention_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), shape.intermediate, h)?,
                output: linear(&format!("{p}.output.dense"), h, shape.intermediate)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words: tensors.f32("embeddings.word_embeddings.weight", &[vocab, h])?,
            vocab,
            positions: tensors.f32(
                "embeddings.position_embeddings.weight",
                &[shape.max_positions, h],
            )?,
            token_type: tensors.f32("embeddings.token_type_embeddings.weight", &[2, h])?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            shape,
        })
    }

    pub(crate) fn vocab(&self) -> usize {
        self.vocab
    }

    /// The last layer's hidden states, `[ids.len(), hidden]` row-major. `ids` must be shorter
    /// than `max_positions` and within the vocabulary (the caller's tokenizer guarantees both).
    pub(crate) fn forward(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.shape.hidden;
        let n = ids.len();
        let mut x = vec![0f32; n * h];
        for (i, (&id, row)) in ids.iter().zip(x.chunks_exact_mut(h)).enumerate() {
            let id = id as usize;
            let word = &self.words[id * h..(id + 1) * h];
            let position = &self.positions[i * h..(i + 1) * h];
            for (j, out) in row.iter_mut().enumerate() {
                *out = word[j] + position[j] + self.token_type[j];
            }
        }
        layer_norm(&mut x, &self.embedding_norm);

        let heads = self.shape.heads;
        let width = h / heads;
        let scale = 1.0 / (width as f32).sqrt();
        let mut qkv = vec![0f32; n * 3 * h];
        let mut scores = vec![0f32; n * n];
        let mut context = vec![0f32; n * h];
        let mut attended = vec![0f32; n * h];
        let mut inner = vec![0f32; n * self.shape.intermediate];
        let mut out = vec![0f32; n * h];
        for layer in &self.layers {
            layer.qkv.apply(&x, n, &mut qkv);
            for head in 0..heads {
                let q = &qkv[head * width..];
                let k = &qkv[h + head * width..];
                let v = &qkv[2 * h + head * width..];
                // scores = q kᵀ · scale: q is n×width with row stride 3h, kᵀ reads k's rows
                // as columns.
                gemm(
                    Operand {
                        data: q,
                        rows: n,
                        cols: width,
                        row_stride: 3 * h,
                        col_stride: 1,
                    },
                    Operand {
                        data: k,
                        rows: width,
                        cols: n,
                        row_stride: 1,
                        col_stride: 3 * h,
                    },
                    scale,
                    &mut scores,
                    n,
                );
                for row in scores.chunks_exact_mut(n) {
                    softmax(row);
                }
                // context[:, head] = scores · v
                gemm_into(
                    Operand {
                        data: &scores,
                        rows: n,
                        cols: n,
                        row_stride: n,
                        col_stride: 1,
                    },
                    Operand {
                        data: v,
                        rows: n,
                        cols: width,
                        row_stride: 3 * h,
                        col_stride: 1,
                    },
                    &mut context[head * width..],
                    h,
                );
            }
            layer.attention_out.apply(&context, n, &mut attended);
            for (a, b) in x.iter_mut().zip(&attended) {
                *a += b;
            }
            layer_norm(&mut x, &layer.attention_norm);

            layer.intermediate.apply(&x, n, &mut inner);
            for v in inner.iter_mut() {
                *v = gelu(*v);
            }
            layer.output.apply(&inner, n, &mut out);
            for (a, b) in x.iter_mut().zip(&out) {
                *a += b;
            }
            layer_norm(&mut x, &layer.output_norm);
        }
        x
    }
}

impl Linear {
    /// `out = x Wᵀ + b` for `n` rows of `x`.
    fn apply(&self, x: &[f32], n: usize, out: &mut [f32]) {
        for row in out[..n * self.outputs].chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        let a = Operand {
            data: x,
            rows: n,
            cols: self.inputs,
            row_stride: self.inputs,
            col_stride: 1,
        };
        let b = Operand {
            data: &self.weight,
            rows: self.inputs,
            cols: self.outputs,
            row_stride: 1,
            col_stride: self.inputs,
        };
        product(a, b, 1.0, 1.0, out, self.outputs);
    }
}

/// A strided view of a matrix in a slice.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl Operand<'_> {
    /// The largest index the view touches must be inside the slice.
    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view outside its slice");
        }
    }
}

/// `c = alpha · a b` into a dense `c` with row stride `c_stride`.
fn gemm(a: Operand, b: Operand, alpha: f32, c: &mut [f32], c_stride: usize) {
    product(a, b, alpha, 0.0, c, c_stride);
}

/// `c = a b` into a strided part of `c` (a column block of a wider matrix).
fn gemm_into(a: Operand, b: Operand, c: &mut [f32], c_stride: usize) {
    product(a, b, 1.0, 0.0, c, c_stride);
}

/// `c = alpha · a b + beta · c`, every view checked against its slice first.
fn product(a: Operand, b: Operand, alpha: f32, beta: f32, c: &mut [f32], c_stride: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    a.check();
    b.check();
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * c_stride + n <= c.len(),
        "result outside its slice"
    );
    // SAFETY: every element sgemm reads or writes is inside the slices, as checked above:
    // a's and b's largest offsets by `Operand::check`, c's by the assertion; `c` is borrowed
    // mutably and neither `a` nor `b` can alias it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            c_stride as isize,
            1,
        );
    }
}

fn layer_norm(x: &mut [f32], norm: &LayerNorm) {
    let h = norm.weight.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (variance + EPSILON).sqrt();
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * norm.weight[j] + norm.bias[j];
        }
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// GELU with the error function (BERT's "gelu", not the tanh approximation).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_of_strided_views_matches_the_schoolbook_product() {
        // a: 2×3, b given as its transpose (3×2 read with swapped strides).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0]; // bᵀ rows: [7,9,11], [8,10,12]
        let mut c = [0.0; 4];
        gemm(
            Operand {
                data: &a,
                rows: 2,
                cols: 3,
                row_stride: 3,
                col_stride: 1,
            },
            Operand {
                data: &bt,
                rows: 3,
                cols: 2,
                row_stride: 1,
                col_stride: 3,
            },
            1.0,
            &mut c,
            2,
        );
        assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);
    }

    #[test]
    #[should_panic(expected = "matrix view outside its slice")]
    fn a_view_past_its_slice_is_refused() {
        let a = [1.0; 5];
        let mut c = [0.0; 4];
        gemm(
            Operand {
                data: &a,
                rows: 2,
                cols: 3,
                row_stride: 3,
                col_stride: 1,
            },
            Operand {
                data: &a,
                rows: 3,
                cols: 2,
                row_stride: 1,
                col_stride: 1,
            },
            1.0,
            &mut c,
            2,
        );
    }

    #[test]
    fn softmax_and_gelu_match_their_definitions() {
        let mut row = [1.0, 2.0, 3.0];
        softmax(&mut row);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f32 = e.iter().sum();
        for (got, want) in row.iter().zip(e.iter().map(|v| v / s)) {
            assert!((got - want).abs() < 1e-6);
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_3).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
    }
}
