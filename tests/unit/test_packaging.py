"""What `pip install embedtrain` installs: every package of embedtrain/ (pyproject.toml lists them, since the
catalogue's folder is mapped to another name) and the recipe catalogue, recipes/ as embedtrain.catalogue."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    folders = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "embedtrain").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    missing = folders - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert listed - folders == {"embedtrain.catalogue", "embedtrain.catalogue.data"}
    assert _setuptools()["package-dir"] == {"embedtrain.catalogue": "recipes"}


@pytest.mark.slow
def test_the_wheel_carries_the_catalogue(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools builds in the source tree (build/, *.egg-info)
    for folder in ("embedtrain", "recipes"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / file, source / file)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(tmp_path)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("embedtrain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"embedtrain/catalogue/{path.relative_to(ROOT / 'recipes').as_posix()}"
                for pattern in ("*.yaml", "data/*.csv") for path in (ROOT / "recipes").glob(pattern)}
    assert len(expected) > 10 and expected <= names
    assert "embedtrain/commands/recipes.py" in names
