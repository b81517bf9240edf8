"""`embedtrain --version`: one line per package, the versions the installed metadata holds, `not installed` for a
missing optional package, and nothing heavy (torch) or optional (sentence-transformers) imported to print them."""

import platform
import subprocess
import sys
from importlib.metadata import version

from typer.testing import CliRunner

from embedtrain import __version__
from embedtrain.card import environment
from embedtrain.cli import app

runner = CliRunner()


def _lines(output: str) -> dict[str, str]:
    return dict(line.split(maxsplit=1) for line in output.strip().splitlines())


def test_version_prints_one_line_per_package_with_its_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert list(lines) == ["embedtrain", "python", "torch", "transformers", "datasets", "accelerate",
                           "sentence-transformers"]
    assert lines["embedtrain"] == __version__
    assert lines["python"] == platform.python_version()
    for name in ("torch", "transformers", "datasets", "accelerate", "sentence-transformers"):
        assert lines[name] == version(name)


def test_a_missing_package_is_reported_not_installed(monkeypatch):
    real = environment.version

    def without_sentence_transformers(name):
        if name == "sentence-transformers":
            raise environment.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(environment, "version", without_sentence_transformers)
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout)["sentence-transformers"] == "not installed"


def test_version_imports_neither_torch_nor_sentence_transformers():
    code = ("import sys; from typer.testing import CliRunner; from embedtrain.cli import app; "
            "result = CliRunner().invoke(app, ['--version']); assert result.exit_code == 0, result.output; "
            "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
