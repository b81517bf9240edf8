"""The recipe: the composition layer between the registries (losses, evaluators, models, data) and the engine.

schema.py and training.py define the whole recipe, loading.py reads it from YAML, checks.py holds every check
across its sections, plan.py turns it into checked data, build.py into the model and losses that train.
"""
