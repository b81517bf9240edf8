"""The recipe: its pydantic schema and loading from YAML with overrides."""
