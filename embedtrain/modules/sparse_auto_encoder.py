"""CSR's sparse autoencoder (Beyond Matryoshka, arXiv 2503.01776): a dense embedding -> its top-k latents."""

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model
from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import WEIGHTS_FILE, read_json, save_weights, write_json


class TiedTranspose(nn.Module):
    """The decoder: the encoder's weight, transposed (tied, so the state dict aliases `encoder.weight` to
    `decoder.linear.weight`, as the reference's does)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, latents: Tensor) -> Tensor:
        return F.linear(latents, self.linear.weight.t())


class SparseAutoEncoder(nn.Module):
    """`latents = relu(topk_k(W_enc (x - pre_bias) + latent_bias))`, x the dense `sentence_embedding`.

    Under `torch.inference_mode` (encoding) only the k-sparse latents are computed. Otherwise (training) the
    features also get what CSRLoss reads, under the reference's names: `sentence_embedding_backbone` (x, after
    the optional normalisation), `sentence_embedding_encoded` (pre-activation latents),
    `sentence_embedding_encoded_4k`, `auxiliary_embedding` (top-k_aux over dead latents), `decoded_embedding_k`,
    `decoded_embedding_4k`, `decoded_embedding_aux` and `decoded_embedding_k_pre_bias`.

    Dead-latent statistics: `stats_last_nonzero[j]` counts the training forwards since latent j was last among
    the active top-k (a saved buffer); latents above `dead_threshold` are dead and feed the auxiliary top-k.
    """

    st_type = "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"
    forward_kwargs = frozenset({"max_active_dims"})

    def __init__(self, input_dim: int, hidden_dim: int = 512, k: int = 8, k_aux: int = 512, normalize: bool = False,
                 dead_threshold: int = 30) -> None:
        super().__init__()
        self.input_dim, self.hidden_dim, self.k, self.k_aux = input_dim, hidden_dim, k, k_aux
        self.normalize, self.dead_threshold = normalize, dead_threshold
        self.pre_bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(hidden_dim))
        self.decoder = TiedTranspose(self.encoder)
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))

    @property
    def embedding_dimension(self) -> int:
        return self.hidden_dim

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}, k={self.k}, k_aux={self.k_aux}, "
                f"normalize={self.normalize}, dead_threshold={self.dead_threshold}")

    def _prepare(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Layer-normalise x (without affine parameters) when `normalize`; keep mean and std to undo it."""
        if not self.normalize:
            return x, {}
        mu = x.mean(dim=-1, keepdim=True)
        x = x - mu
        std = x.std(dim=-1, keepdim=True)
        return x / (std + 1e-5), {"mu": mu, "std": std}

    def _top_k(self, pre_activation: Tensor, k: int) -> Tensor:
        top = torch.topk(pre_activation, k=k, dim=-1)
        latents = F.relu(torch.zeros_like(pre_activation).scatter(-1, top.indices, top.values))
        if self.training and torch.is_grad_enabled():
            fired = torch.zeros_like(self.stats_last_nonzero)
            fired.scatter_add_(0, top.indices.reshape(-1), (top.values > 1e-5).to(fired.dtype).reshape(-1))
            self.stats_last_nonzero *= 1 - fired.clamp(max=1)
            self.stats_last_nonzero += 1
        return latents

    def _aux_top_k(self, pre_activation: Tensor) -> Tensor:
        dead = self.stats_last_nonzero > self.dead_threshold
        top = torch.topk(pre_activation * dead, k=self.k_aux)
        return F.relu(torch.zeros_like(pre_activation).scatter(-1, top.indices, top.values))

    def _decode(self, latents: Tensor, info: dict[str, Tensor]) -> Tensor:
        decoded = self.decoder(latents) + self.pre_bias
        return decoded * info["std"] + info["mu"] if self.normalize else decoded

    def forward(self, features: dict[str, Tensor], max_active_dims: int | None = None) -> dict[str, Tensor]:
        k = max_active_dims if max_active_dims is not None else self.k
        x, info = self._prepare(features["sentence_embedding"])
        pre_activation = F.linear(x - self.pre_bias, self.encoder.weight, self.latent_bias)
        if torch.is_inference_mode_enabled():
            features["sentence_embedding"] = self._top_k(pre_activation, k)
            return features
        # The order matches the reference's, which matters for the dead-latent statistics: the k pass updates
        # them before the auxiliary top-k reads them, and the 4k pass updates them again.
        latents_k = self._top_k(pre_activation, k)
        latents_aux = self._aux_top_k(pre_activation) if self.k_aux else None
        latents_4k = self._top_k(pre_activation, 4 * k)
        decoded_k = self._decode(latents_k, info)
        decoded_aux = None
        if latents_aux is not None:
            decoded_aux = self.decoder(latents_aux) + self.pre_bias
            decoded_aux = decoded_aux * info["std"] if self.normalize else decoded_aux
        decoder_bias = self.pre_bias * info["std"] if self.normalize else self.pre_bias
        features.update({
            "sentence_embedding_backbone": x,
            "sentence_embedding_encoded": pre_activation,
            "sentence_embedding_encoded_4k": latents_4k,
            "auxiliary_embedding": latents_aux,
            "decoded_embedding_k": decoded_k,
            "decoded_embedding_4k": self._decode(latents_4k, info),
            "decoded_embedding_aux": decoded_aux,
            "decoded_embedding_k_pre_bias": decoded_k - decoder_bias,
            "sentence_embedding": latents_k,
        })
        return features

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "config.json", {"input_dim": self.input_dim, "hidden_dim": self.hidden_dim, "k": self.k,
                                               "k_aux": self.k_aux, "normalize": self.normalize,
                                               "dead_threshold": self.dead_threshold})
        save_weights(self, directory)

    @classmethod
    def load(cls, directory: Path) -> "SparseAutoEncoder":
        config = read_json(directory / "config.json")
        if "input_dim" not in config:
            raise ModelLoadError(f"{directory / 'config.json'}: not a SparseAutoEncoder config (no input_dim)")
        module = cls(**{key: config[key] for key in ("input_dim", "hidden_dim", "k", "k_aux", "normalize",
                                                     "dead_threshold") if key in config})
        # load_model (not load_file) restores the tied weight saved once under one of its two names.
        load_model(module, str(directory / WEIGHTS_FILE))
        return module
