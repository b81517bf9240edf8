"""The recipe catalogue, installed as `embedtrain.catalogue` (see pyproject.toml): one YAML file per recipe, and the
quickstart's demo data in data/. `embedtrain recipes ls|show|cp` reads it through importlib.resources."""
