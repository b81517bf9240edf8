"""The logic of CLI commands, kept out of cli.py so that cli.py stays a thin list of typer functions."""
