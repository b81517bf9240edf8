"""Losses for sparse models (SPLADE, inference-free SPLADE, CSR): the sparse catalogue of the reference.

What they expect of the model (`model(features)` for one input column):

- the output dict's `sentence_embedding` is the sparse embedding as a dense (batch, vocabulary or
  latent size) tensor, non-negative with mostly zeros;
- a CSR model's sparse autoencoder also outputs, while training (not under inference mode), the keys in
  `csr.RECONSTRUCTION_KEYS`, named as the reference's SparseAutoEncoder names them;
- an inference-free (Router) model routes each column by its features' `task` (`"query"` or
  `"document"`), which the collator stamps into every column's features from the recipe's router
  mapping, as the reference's collator does. The losses pass each column's features to the model
  unchanged (GradCache keeps non-tensor entries in every mini-batch), and treat the first column as
  the queries and the others as documents.

A sparse model trains with SpladeLoss, CachedSpladeLoss or CSRLoss as its recipe loss, wrapping one of
the sparse losses (`inner_loss.SparseLossConfig`); SparseMSELoss also trains one alone. `model_kind`
checks a recipe for that.
"""
