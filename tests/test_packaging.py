"""Every file the package needs at run time ships in its wheel: setuptools takes only the Python
modules unless ``[tool.setuptools.package-data]`` names the others (recipes, the C source)."""

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "torchspike"


def test_every_non_python_file_of_the_package_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["torchspike"]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern)}
    needed = {
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert needed, "the package has recipes and a C source: the glob found nothing"
    assert sorted(map(str, needed - shipped)) == []
