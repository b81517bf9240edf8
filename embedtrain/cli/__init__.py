"""The `embedtrain` command line. Thin: parse arguments, call the library (embedtrain.commands), map errors to exit
codes. One module per group of commands; importing them registers their commands on `app`, in the order
`embedtrain --help` lists them: training first."""

# ruff: noqa: I001, F401  (the import order is the order of the commands in --help)
from embedtrain.cli import training, evaluation, mining, catalogue
from embedtrain.cli.app import app, main

__all__ = ["app", "main"]
