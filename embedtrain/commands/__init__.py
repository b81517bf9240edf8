"""The logic of CLI commands, kept out of embedtrain.cli so that the typer functions there stay thin."""
