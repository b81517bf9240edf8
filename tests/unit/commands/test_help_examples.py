"""Every command's and group's `--help` ends with an "Examples" epilog of 2-4 invocations, and each invocation
parses against the options and arguments of the command it calls.

The commands are found by walking the typer app (`registered_commands`, `registered_groups`, recursively), so a new
command without examples fails here. An example is parsed with click's `make_context` (options, arguments, their
types and required ones checked, nothing run) after resolving its sub-command names from the root group. typer
carries its own copy of click (typer._click), so the click objects here are typer's."""

import shlex

import pytest
import typer
import typer.core
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from embedtrain.cli import app

runner = CliRunner()
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "2>"}


def _walk(typer_app: typer.Typer, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for info in typer_app.registered_commands:
        paths.append((*path, info.name or typer.main.get_command_name(info.callback.__name__)))
    for info in typer_app.registered_groups:
        group_path = (*path, info.name or info.typer_instance.info.name)
        paths.append(group_path)
        paths += _walk(info.typer_instance, group_path)
    return paths


ROOT = typer.main.get_command(app)
COMMANDS = _walk(app)


def _click_command(path: tuple[str, ...]):
    command = ROOT
    for name in path:
        command = command.commands[name]
    return command


def _examples(path: tuple[str, ...]) -> list[str]:
    """The example lines of a command's epilog, as the help shows them (rich markup rendered); none without an
    epilog that starts with "Examples" (which test_help_ends_with_two_to_four_examples reports)."""
    epilog = Text.from_markup(_click_command(path).epilog or "").plain
    lines = [line.strip() for line in epilog.splitlines() if line.strip()]
    return lines[1:] if lines[:1] == ["Examples"] else []


def _arguments(example: str) -> list[str]:
    """The arguments given to embedtrain: after a leading `embedtrain` (or `-m embedtrain`, as in `accelerate
    launch ... -m embedtrain train ...`), up to a shell operator (`|`, `>`, ...)."""
    lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    if tokens[0] == "embedtrain":
        start = 1
    else:
        start = next(i + 2 for i in range(len(tokens) - 1) if tokens[i:i + 2] == ["-m", "embedtrain"])
    arguments = []
    for token in tokens[start:]:
        if token in SHELL_OPERATORS:
            break
        arguments.append(token)
    return arguments


def _parse(arguments: list[str]):
    """Resolve the sub-command names from the root group, then parse the rest against that command."""
    command, path, rest = ROOT, (), list(arguments)
    while isinstance(command, typer.core.TyperGroup):
        assert rest and rest[0] in command.commands, f"no command {rest[:1]} under `embedtrain {' '.join(path)}`"
        path = (*path, rest[0])
        command = command.commands[rest.pop(0)]
    return path, command.make_context(" ".join(("embedtrain", *path)), rest)


EXAMPLES = [(path, example) for path in COMMANDS for example in _examples(path)]


def test_the_walk_finds_every_command():
    assert {("train",), ("validate-dataset",), ("eval",), ("list",), ("list", "losses"),
            ("list", "modules")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_ends_with_two_to_four_examples(path):
    result = runner.invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output
    examples = _examples(path)
    assert examples, f"`embedtrain {' '.join(path)}` has no epilog starting with Examples"
    assert 2 <= len(examples) <= 4, examples
    shown = " ".join(result.output.split())  # long lines wrap in the help: compare without line breaks
    for example in examples:
        assert " ".join(example.split()) in shown
    assert shown.endswith(" ".join(examples[-1].split()))


@pytest.mark.parametrize(("path", "example"), EXAMPLES,
                         ids=[f"{' '.join(path)}-{i}" for i, (path, _) in enumerate(EXAMPLES)])
def test_example_parses_against_its_command(path, example):
    # Shell substitution would make the arguments known only when a shell runs the line: examples spell them out.
    assert "$(" not in example and "`" not in example, f"{example!r}: write the arguments out"
    parsed_path, context = _parse(_arguments(example))
    assert parsed_path[:len(path)] == path, f"{example!r} is not an invocation of `embedtrain {' '.join(path)}`"
    assert context.command is _click_command(parsed_path)


@pytest.mark.parametrize(("example", "error"), [
    ("embedtrain train recipes/stsb.yaml --no-such-option", "NoSuchOption"),
    ("embedtrain list modules --json", "MissingParameter"),
    ("embedtrain eval MODEL --evaluator sts --batch-size many", "BadParameter"),
    ("embedtrain train a.yaml b.yaml", "UsageError"),
])
def test_the_parse_rejects_what_the_command_would(example, error):
    with pytest.raises(Exception) as raised:
        _parse(_arguments(example))
    assert type(raised.value).__name__ == error
    assert raised.value.exit_code == 2  # click's usage errors, what the command line would exit with


def test_no_such_command_is_rejected():
    with pytest.raises(AssertionError, match="no command"):
        _parse(_arguments("embedtrain list loss"))
