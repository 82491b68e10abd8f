//! The BERT encoder of all-MiniLM-L6-v2, written out on candle tensors.
//!
//! The arithmetic is that of `candle_transformers::models::bert::BertModel`
//! (and of Hugging Face's `BertModel`): embeddings (word + token type 0 +
//! position) and LayerNorm, then per layer self-attention (12 heads of 32,
//! additive mask of `f32::MIN` on padding, softmax), output projection,
//! residual and LayerNorm, GELU (erf) feed-forward, residual and LayerNorm.
//! Three things differ, for speed, none in what is computed:
//!
//! * every linear layer keeps its weight transposed, `(in, out)` and
//!   contiguous, prepared once at load: `x · Wᵀ` is then a product with a
//!   row-major right-hand side, which the gemm crate reads in place. Given
//!   the `(out, in)` weight as stored (what candle's `Linear` does), gemm
//!   repacks the whole weight matrix on every product; for a query (~27
//!   rows) that packing costs more than the arithmetic. Measured with 27
//!   rows, one thread: 384→1536 0.40 → 0.25 ms, 1536→384 0.62 → 0.22 ms,
//!   384→384 0.087 → 0.045 ms; with 2,496 rows (a batch) no difference
//!   beyond noise (36–40 ms either way);
//! * the softmax is candle's fused last-dimension kernel
//!   (`candle_nn::ops::softmax_last_dim`, max-subtracted like the
//!   five-op version candle's BERT uses) instead of five separate ops;
//! * a batch without padding (one text, or texts of one length) skips the
//!   attention mask, which would add 0 to every score.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

/// A linear layer with its weight stored transposed (see the module docs).
struct Linear {
    /// `(in, out)`, contiguous.
    weight_t: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(vb: VarBuilder, inputs: usize, outputs: usize) -> Result<Linear> {
        let weight = vb.get((outputs, inputs), "weight")?;
        let bias = vb.get(outputs, "bias")?;
        Ok(Linear {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// `x · Wᵀ + b` for `x` of shape `(rows, in)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<LayerNorm> {
        // Old PyTorch checkpoints name them gamma and beta.
        let (weight, bias) = if vb.contains_tensor("weight") {
            (vb.get(size, "weight")?, vb.get(size, "bias")?)
        } else {
            (vb.get(size, "gamma")?, vb.get(size, "beta")?)
        };
        Ok(LayerNorm {
            weight,
            bias,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // What candle_nn::LayerNorm runs for a contiguous input with a bias.
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder: token ids in, last hidden states out.
pub(crate) struct Bert {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    /// Row 0 of the token-type embeddings (every token is of type 0).
    token_type_0: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
}

impl Bert {
    /// Loads the weights named as in a Hugging Face BERT checkpoint
    /// (optionally under `bert.`), checking every shape against `config`.
    pub(crate) fn load(vb: VarBuilder, config: &Config) -> Result<Bert> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!(
                "hidden_act {:?}: only gelu (erf) is implemented",
                config.hidden_act
            );
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden_size {hidden} is not a multiple of {heads} heads");
        }
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let word_embeddings = e.get((config.vocab_size, hidden), "word_embeddings.weight")?;
        let position_embeddings = e.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?;
        let token_type_0 = e
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .get(0)?;
        let embeddings_norm = LayerNorm::load(e.pp("LayerNorm"), hidden, eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: Linear::load(a.pp("self.query"), hidden, hidden)?,
                    key: Linear::load(a.pp("self.key"), hidden, hidden)?,
                    value: Linear::load(a.pp("self.value"), hidden, hidden)?,
                    attention_output: Linear::load(a.pp("output.dense"), hidden, hidden)?,
                    attention_norm: LayerNorm::load(a.pp("output.LayerNorm"), hidden, eps)?,
                    intermediate: Linear::load(
                        l.pp("intermediate.dense"),
                        hidden,
                        config.intermediate_size,
                    )?,
                    output: Linear::load(l.pp("output.dense"), config.intermediate_size, hidden)?,
                    output_norm: LayerNorm::load(l.pp("output.LayerNorm"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            word_embeddings,
            position_embeddings,
            token_type_0,
            embeddings_norm,
            layers,
            heads,
            head_size: hidden / heads,
        })
    }

    /// The last hidden states `(rows, width, hidden)` of `ids` `(rows,
    /// width)`, u32; `mask` `(rows, width)`, u32, 1 for real tokens and 0
    /// for padding, or `None` when there is no padding.
    pub(crate) fn forward(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (rows, width) = ids.dims2()?;
        let hidden = self.word_embeddings.dim(1)?;
        let x = self
            .word_embeddings
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((rows, width, hidden))?
            .broadcast_add(&self.token_type_0)?
            .broadcast_add(&self.position_embeddings.narrow(0, 0, width)?)?;
        let mut x = self
            .embeddings_norm
            .forward(&x)?
            .reshape((rows * width, hidden))?;
        // (rows, 1, 1, width): 0 on real tokens, f32::MIN on padding.
        let mask = match mask {
            Some(m) => Some(
                ((1.0 - m.to_dtype(DType::F32)?)? * f64::from(f32::MIN))?
                    .reshape((rows, 1, 1, width))?,
            ),
            None => None,
        };
        let scale = (self.head_size as f64).sqrt();
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((rows, width, self.heads, self.head_size))?
                .transpose(1, 2)?
                .contiguous()
        };
        for layer in &self.layers {
            let q = heads(layer.query.forward(&x)?)?;
            let k = heads(layer.key.forward(&x)?)?;
            let v = heads(layer.value.forward(&x)?)?;
            let mut scores = (q.matmul(&k.t()?)? / scale)?;
            if let Some(mask) = &mask {
                scores = scores.broadcast_add(mask)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((rows * width, hidden))?;
            let attended = layer.attention_output.forward(&context)?;
            x = layer.attention_norm.forward(&(attended + &x)?)?;
            let inner = layer.intermediate.forward(&x)?.gelu_erf()?;
            let out = layer.output.forward(&inner)?;
            x = layer.output_norm.forward(&(out + &x)?)?;
        }
        x.reshape((rows, width, hidden))
    }
}
