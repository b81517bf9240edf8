"""Importable helpers shared by the tests (not collected): tiny models, shared texts and batches, comparison asserts,
the StopAt observer and the loss parity harnesses. Imported as `from helpers.xxx import ...` (pytest puts tests/ on
sys.path: `pythonpath` in pyproject.toml)."""
