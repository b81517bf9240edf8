"""Every check of a recipe across its sections, in one place, by the stage at which it can run.

1. `recipe_problems`: as soon as the recipe is parsed (names that refer to other sections, prompts per input and
   samplers that need a label against the loss's contract, streaming, loss and evaluator vs model kind, metric
   names), reported with YAML line numbers;
2. `dataset_problems`: once a dataset is loaded and its columns matched to its loss (routes per input or column),
   reported with the data checks;
3. `model_problems` and `built_model_problems`: once the model is built (routes the base model brings, which the
   recipe may not state; sequence length, prompts and pooling against its config and tokenizer).

Routing (`router_mapping`) is checked by one function, `routing_problems`, at stage 2 when the recipe states
the model's routes and again at stage 3 against the built model.
"""

from embedtrain.data.contract import ColumnContract, ColumnMapping
from embedtrain.data.training_data import PreparedDataset
from embedtrain.errors import did_you_mean
from embedtrain.evaluation.registry import model_kind_problems as evaluator_kind_problems
from embedtrain.losses import loss_contract
from embedtrain.losses.sparse.model_kind import model_kind_problems
from embedtrain.models.config import ModelConfig
from embedtrain.recipe.schema import DatasetConfig, Recipe

KeyPath = tuple[str | int, ...]
Problem = tuple[KeyPath, str]

SPLITS = ("train", "eval")


def recipe_problems(recipe: Recipe) -> list[Problem]:
    """Problems between sections, as (key path, message); run after field validation, so each can be reported at
    its own YAML line."""
    problems = []
    for split in SPLITS:
        for name, dataset in getattr(recipe.datasets, split).items():
            problems += _loss_reference_problems(recipe, split, name, dataset)
            problems += _prompt_name_problems(recipe, split, name, dataset)
            problems += _input_problems(recipe, split, name, dataset)
            problems += _mining_problems(split, name, dataset)
    problems += _streaming_problems(recipe)
    problems += _lora_problems(recipe)
    problems += _weights_dtype_problems(recipe)
    problems += model_kind_problems(recipe.losses, recipe.model.kind)
    problems += evaluator_kind_problems(recipe.evaluators, recipe.model.kind)
    names = [evaluator.name for evaluator in recipe.evaluators]
    for index, name in enumerate(names):
        if names.index(name) != index:
            problems.append((("evaluators", index, "name"), f"{name!r} is already the name of evaluators[{names.index(name)}]"))
    metric = recipe.training.metric_for_best_model
    if metric is not None and metric not in (available := recipe.metric_names()):
        problems.append((("training", "metric_for_best_model"),
                         f"{metric!r} is not produced by the evaluators or eval datasets"
                         f"{did_you_mean(metric, available)}; available: {available}"))
    return problems


def _loss_reference_problems(recipe: Recipe, split: str, name: str, dataset: DatasetConfig) -> list[Problem]:
    if dataset.loss is None and len(recipe.losses) > 1:
        return [(("datasets", split, name),
                 f"`loss:` is required when several losses are defined ({', '.join(recipe.losses)})")]
    if dataset.loss is not None and dataset.loss not in recipe.losses:
        return [(("datasets", split, name, "loss"), f"{dataset.loss!r} is not defined in losses "
                 f"({', '.join(recipe.losses)}){did_you_mean(dataset.loss, list(recipe.losses))}")]
    return []


def _prompt_name_problems(recipe: Recipe, split: str, name: str, dataset: DatasetConfig) -> list[Problem]:
    prompts, defined = dataset.prompts, recipe.model.prompts
    names = [prompts] if isinstance(prompts, str) else list((prompts or {}).values())
    undefined = [prompt for prompt in names if prompt not in defined]
    if not undefined:
        return []
    return [(("datasets", split, name, "prompts"),
             f"{undefined} not defined in model.prompts ({', '.join(defined) or 'none'}); define the prompt texts "
             f"there, so that they are saved with the model{did_you_mean(undefined[0], list(defined))}")]


def _input_problems(recipe: Recipe, split: str, name: str, dataset: DatasetConfig) -> list[Problem]:
    """What a dataset asks of its loss's inputs and label, known from the loss's contract before any data is read:
    prompts per input name an input, and group_by_label batches need a label."""
    loss_name = recipe.loss_name_for(dataset)
    if loss_name not in recipe.losses:
        return []  # reported by _loss_reference_problems
    contract = loss_contract(recipe.losses[loss_name])
    problems = []
    if isinstance(dataset.prompts, dict) and recipe.model.kind == "cross_encoder":
        problems.append((("datasets", split, name, "prompts"),
                         "a cross-encoder takes one prompt per dataset, prepended to the first text of each pair it "
                         "scores, not one per input; name one prompt of model.prompts, e.g. `prompts: query`"))
    elif isinstance(dataset.prompts, dict):
        roles = [*contract.inputs, *([contract.repeated_input] if contract.repeated_input else [])]
        problems += [(("datasets", split, name, "prompts", role),
                      f"{role!r} is not an input of the loss{did_you_mean(role, roles)}; its inputs are {', '.join(roles)}")
                     for role in dataset.prompts if role not in roles]
    if split == "train" and recipe.training.batch_sampler == "group_by_label" and not contract.label:
        problems.append((("training", "batch_sampler"), f"group_by_label groups rows by their label, but loss "
                         f"{loss_name!r} (datasets.{split}.{name}) takes no label"))
    return problems


MINED_PAIR_ROLES = ("anchor", "positive", "label")
"""What `columns:` maps for a dataset with `mine:`: the pairs mining reads (the loss reads the mined rows)."""


def _mining_problems(split: str, name: str, dataset: DatasetConfig) -> list[Problem]:
    if dataset.mine is None:
        return []
    where = ("datasets", split, name)
    problems = [(where + ("columns", role), f"{role!r}: with `mine:`, `columns:` maps the pairs that are mined "
                 f"({', '.join(MINED_PAIR_ROLES)}), and the loss reads the columns mining writes"
                 f"{did_you_mean(role, list(MINED_PAIR_ROLES))}")
                for role in dataset.columns or {} if role not in MINED_PAIR_ROLES]
    if dataset.streaming:
        problems.append((where + ("streaming",), "mining reads the whole dataset (every query against the whole "
                                                  "corpus); remove `streaming` or `mine`"))
    return problems


def _streaming_problems(recipe: Recipe) -> list[Problem]:
    problems = [(("datasets", "eval", name, "streaming"), "evaluation data is read whole; remove `streaming`")
                for name, dataset in recipe.datasets.eval.items() if dataset.streaming]
    streamed = [name for name, dataset in recipe.datasets.train.items() if dataset.streaming]
    if not streamed:
        return problems
    where, training = ("datasets", "train", streamed[0], "streaming"), recipe.training
    if len(recipe.datasets.train) > 1:
        problems.append((where, "a streamed dataset must be the only training dataset"))
    if training.max_steps is None:
        problems.append((where, "a stream has no known length: set training.max_steps"))
    if training.batch_sampler != "random":
        problems.append((where, f"training.batch_sampler {training.batch_sampler} needs random access; "
                                f"a stream is read in order (through a shuffle buffer)"))
    return problems


def _lora_problems(recipe: Recipe) -> list[Problem]:
    """TSDAE's decoder shares the encoder's weights by module name, and a LoRA adapter replaces the layers it adapts:
    the two cannot be tied (the decoder would train on frozen base weights, not what the encoder computes)."""
    if recipe.model.lora is None:
        return []
    return [(("losses", name, "tie_encoder_decoder"),
             "a decoder tied to the encoder cannot share a LoRA-adapted encoder's weights (model.lora); set "
             "tie_encoder_decoder: false with a decoder_name_or_path, or remove model.lora")
            for name, params in recipe.losses.items() if getattr(params, "tie_encoder_decoder", False)]


def _weights_dtype_problems(recipe: Recipe) -> list[Problem]:
    """bf16 base weights need bf16 autocast: without it the new layers' float32 weights would meet bf16 inputs, and
    the losses would compute in bf16."""
    if recipe.model.dtype != "bfloat16" or recipe.training.precision == "bf16":
        return []
    return [(("training", "precision"), f"model.dtype: bfloat16 computes in bf16; set training.precision: bf16 "
                                        f"(not {recipe.training.precision}), or model.dtype: float32")]


def dataset_problems(recipe: Recipe, split: str, name: str, mapping: ColumnMapping, contract: ColumnContract,
                     routes: tuple[str, ...] | None) -> list[str]:
    """Problems of one loaded dataset (its columns matched to `contract`) with the rest of the recipe: its routes.
    `routes` are the model's routes when the recipe states them (`declared_routes`), None when only the built model
    can tell."""
    if routes is None:
        return []
    config = getattr(recipe.datasets, split)[name]
    return routing_problems(f"datasets.{split}.{name}", config.router_mapping, mapping, contract, routes)


def declared_routes(model: ModelConfig) -> tuple[str, ...] | None:
    """The routes of the model the recipe describes, when the recipe alone says: () for a model without a router;
    None for a sparse model without `architecture`, which takes the base model's."""
    if model.kind in ("dense", "cross_encoder"):
        return ()
    return {"inference_free_splade": ("query", "document"), "splade": (), "csr": (), None: None}[model.architecture]


def route_of(router_mapping: dict[str, str], role: str, column: str, contract: ColumnContract) -> str | None:
    """An input's route: given for the input (or its repeated base, negative for negative_2) or for its column."""
    for key in (role, contract.base_input(role), column):
        if key in router_mapping:
            return router_mapping[key]
    return None


def routing_problems(where: str, router_mapping: dict[str, str] | None, mapping: ColumnMapping,
                     contract: ColumnContract, routes: tuple[str, ...]) -> list[str]:
    """`router_mapping` of one dataset against the model's `routes` (() for a model without a router): a router
    needs a route for every input, each an existing route, keyed by an input or a column feeding one."""
    if not routes:
        return [] if router_mapping is None else [
            f"{where}.router_mapping: the model has no router (only inference-free SPLADE, model.kind: sparse with "
            f"architecture: inference_free_splade, routes its inputs); remove router_mapping"]
    if router_mapping is None:
        return [f"{where}: the model routes queries and documents through different modules (routes "
                f"{', '.join(routes)}); add router_mapping, e.g. {{anchor: query, positive: document}}"]
    problems = []
    unknown = sorted(set(router_mapping.values()) - set(routes))
    if unknown:
        problems.append(f"{where}.router_mapping: routes {unknown} are not routes of the model ({', '.join(routes)})")
    known = [name for role, column in mapping.inputs for name in (role, contract.base_input(role), column)]
    for key in router_mapping:
        if key not in known:
            problems.append(f"{where}.router_mapping: {key!r} is neither an input of the loss nor a column feeding "
                            f"one{did_you_mean(key, known)}; the inputs are "
                            f"{', '.join(f'{role} (column {column})' for role, column in mapping.inputs)}")
    unrouted = [role for role, column in mapping.inputs if route_of(router_mapping, role, column, contract) is None]
    if unrouted:
        problems.append(f"{where}.router_mapping: no route for input(s) {', '.join(unrouted)}; map each input to "
                        f"one of {', '.join(routes)}")
    return problems



def model_problems(recipe: Recipe, datasets: dict[str, dict[str, PreparedDataset]], routes: tuple[str, ...]) -> list[str]:
    """Problems that only the built model shows: the routes it brings from its base model (`routes`, () for none).
    `datasets`: split -> name -> the prepared dataset."""
    return [problem for split, named in datasets.items() for name, dataset in named.items()
            for problem in routing_problems(f"datasets.{split}.{name}", getattr(recipe.datasets, split)[name].router_mapping,
                                            dataset.mapping, dataset.contract, routes)]


def built_model_problems(recipe: Recipe, model) -> list[str]:
    """What the built model shows that would otherwise fail hours into a run, or train silently wrong: a
    max_seq_length past the position embeddings, a prompt that leaves no room for the text, CLS pooling on a
    tokenizer that adds no CLS token, last-token pooling on one that appends no EOS token. `model`: the
    SentenceEmbedder or CrossEncoder; a model without a transformer input (static embeddings) has none of these
    limits."""
    # Duck-typed (a Hugging Face model and its tokenizer) so that this module, which every recipe load imports,
    # does not import torch.
    if recipe.model.kind == "cross_encoder":  # one transformer over both texts of a pair
        encoder, max_length = model.model.base_model, model.max_length
        return (_sequence_length_problems(recipe, encoder, max_length)
                + _prompt_room_problems(model.prompts, model.tokenizer, max_length))
    transformer = model.input_module
    if getattr(transformer, "auto_model", None) is None or getattr(transformer, "tokenizer", None) is None:
        return []
    return (_sequence_length_problems(recipe, transformer.auto_model, transformer.max_seq_length)
            + _prompt_room_problems(model.prompts, transformer.tokenizer, transformer.max_seq_length)
            + _cls_pooling_problems(recipe, model, transformer)
            + _last_token_pooling_problems(recipe, model, transformer))


def position_limit(auto_model) -> int | None:
    """The longest input the position embeddings cover, or None when the model has no absolute positions.
    RoBERTa-style models count positions from padding_idx + 1 (their position embedding has a padding_idx), so
    514 positions hold 512 tokens."""
    positions = getattr(auto_model.config, "max_position_embeddings", None)
    if not positions:
        return None
    position_embedding = getattr(getattr(auto_model, "embeddings", None), "position_embeddings", None)
    padding_idx = getattr(position_embedding, "padding_idx", None)
    return positions - (padding_idx + 1) if padding_idx is not None else positions


def _sequence_length_problems(recipe: Recipe, encoder, max_seq_length: int) -> list[str]:
    limit = position_limit(encoder)
    if limit is None or max_seq_length <= limit:
        return []
    return [f"model.max_seq_length: {max_seq_length} exceeds the {limit} positions that "
            f"{recipe.model.base}'s position embeddings cover (max_position_embeddings "
            f"{encoder.config.max_position_embeddings}); longer batches would fail with an index "
            f"error during training: set model.max_seq_length to at most {limit}"]


def _prompt_room_problems(prompts: dict[str, str], tokenizer, max_seq_length: int) -> list[str]:
    """A prompt as long as max_seq_length truncates every text away: the model would see the prompt alone."""
    problems = []
    for name, prompt in prompts.items():
        tokens = len(tokenizer(prompt, truncation=False)["input_ids"])  # special tokens included
        if prompt and tokens >= max_seq_length:
            problems.append(f"model.prompts.{name}: the prompt takes {tokens} tokens (special tokens included) of "
                            f"model.max_seq_length {max_seq_length}, leaving no room for the text; "
                            f"shorten the prompt or raise model.max_seq_length")
    return problems


def _cls_pooling_problems(recipe: Recipe, model, transformer) -> list[str]:
    """CLS pooling takes the first attended token (modules/pooling.py); without a special token there it would
    embed the first word of each text."""
    if not any("cls" in getattr(module, "modes", ()) for module in model):
        return []
    ids = transformer.tokenizer("a")["input_ids"]
    if ids and ids[0] in transformer.tokenizer.all_special_ids:
        return []
    return [f"model.pooling: cls pooling embeds the first token, but {recipe.model.base}'s tokenizer puts no "
            f"special token (CLS or BOS) there, so it would embed the first word of each text; use mean or "
            f"lasttoken pooling, or a tokenizer that adds a CLS token"]


def _last_token_pooling_problems(recipe: Recipe, model, transformer) -> list[str]:
    """Last-token pooling takes the last attended token (modules/pooling.py, as the reference does). Decoder embedders
    (Qwen3-Embedding, e5-mistral, gte-Qwen) are trained to summarise a text in the EOS token their tokenizer appends;
    a tokenizer that appends none (a plain decoder checkpoint's usually does not) would embed each text's last word.
    An encoder's closing special token (BERT's SEP) passes, as CLS pooling's check lets any special token pass.
    Padding is no concern: pooling finds the last attended position on either padding side."""
    if not any("lasttoken" in getattr(module, "modes", ()) for module in model):
        return []
    ids = transformer.tokenizer("a")["input_ids"]
    if ids and ids[-1] in transformer.tokenizer.all_special_ids:
        return []
    return [f"model.pooling: lasttoken pooling embeds the last token, but {recipe.model.base}'s tokenizer appends no "
            f"EOS token to a text, so each text would be embedded by its last word; use a tokenizer that appends EOS "
            f"(a decoder embedder's, e.g. Qwen3-Embedding's, whose post-processor is '$A <|endoftext|>'), or mean "
            f"pooling"]
