"""The names of what a run writes into its output directory (README "What a run leaves behind"), in a module that
imports nothing: `embedtrain report` reads a run without loading the training stack."""

RESOLVED_RECIPE = "recipe.yaml"  # the recipe as resolved (defaults and overrides applied)
RUN_FILE = "run.json"  # the manifest (engine/manifest.py)
METRICS_LOG = "metrics.jsonl"  # one record per logging step and per evaluation
METRICS_FILE = "metrics.json"  # the evaluation of the final model
FINAL = "final"  # the final model, with its card
LOGS = "logs"  # the trackers' files, in logs/<tracker>, and codecarbon's in logs/codecarbon
EMISSIONS_FOLDER = f"{LOGS}/codecarbon"

# run.json's status
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
