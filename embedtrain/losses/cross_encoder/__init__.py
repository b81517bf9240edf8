"""Losses for cross-encoders (rerankers): the reference's cross-encoder catalogue, one module each.

What they expect of the model (`registry.PairScorer`): `score_pairs(pairs)` returns the raw logits of
(text, text) pairs, shape (len(pairs), num_labels), with autograd; `num_labels` is checked when the loss
is built (one output for every loss but CrossEntropyLoss, which needs one per class). They are called
`loss(model, inputs, labels)` with the batch's raw texts (`registry.CrossEncoderInputs`).

Names: a loss that has a bi-encoder namesake in the reference carries the family's prefix
(`CrossEncoderMultipleNegativesRankingLoss`, `CrossEncoderCachedMultipleNegativesRankingLoss`,
`CrossEncoderMSELoss`, `CrossEncoderMarginMSELoss`), as the sparse family's do (`SparseMSELoss`); the
others keep the reference's class name (`BinaryCrossEntropyLoss`, `LambdaLoss`, ...).
"""
