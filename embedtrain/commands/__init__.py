"""What the CLI's commands compute, apart from the argument parsing and printing in `embedtrain.cli`."""
