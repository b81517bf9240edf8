"""Losses that reach into the training loop in their own way, each with the triplet CSV columns it reads
(tests/conftest.py's `triplet_csv`) and the columns it ignores: trained end to end in full and with LoRA."""

TRIPLET_COLUMNS = {"anchor": "anchor", "positive": "positive", "negative": "negative"}
CASES = {
    "cached-mnrl": ({"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 2}, TRIPLET_COLUMNS, []),
    "matryoshka-cached-mnrl": ({"type": "MatryoshkaLoss", "matryoshka_dims": [32, 8],
                                "loss": {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3}}, TRIPLET_COLUMNS, []),
    "gist": ({"type": "GISTEmbedLoss"}, TRIPLET_COLUMNS, []),  # the guide is the tiny model itself
    "cached-gist": ({"type": "CachedGISTEmbedLoss", "mini_batch_size": 2}, TRIPLET_COLUMNS, []),
    "contrastive-tension-in-batch": ({"type": "ContrastiveTensionLossInBatchNegatives"}, {"sentence": "anchor"},
                                     ["positive", "negative"]),
    "denoising-auto-encoder": ({"type": "DenoisingAutoEncoderLoss"}, {"damaged": "negative", "original": "anchor"},
                               ["positive"]),
    "gor": ({"type": "GlobalOrthogonalRegularizationLoss"}, {"anchor": "anchor", "other": ["positive"]}, ["negative"]),
    "adaptive-layer": ({"type": "AdaptiveLayerLoss", "loss": {"type": "MultipleNegativesRankingLoss"}}, TRIPLET_COLUMNS, []),
}
