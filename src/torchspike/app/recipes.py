"""Recipes: TOML files shipped in ``torchspike/app/recipes/``, each every setting of one
published run, with a ``[recipe]`` header (what it reproduces, its source, the read-out of the
figure, the target and the expected wall time) and a ``[settings]`` table.

A configuration is resolved as: a method's defaults < the recipe (``--recipe``, else the recipe
that is the default for the method and data set) or a user's ``--config FILE`` < flags.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .config import CLASSES, ConfigError, RunConfig, default, from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HEADER_KEYS = ("title", "reproduces", "source", "readout", "target", "metric", "wall_time")


@dataclass
class Recipe:
    name: str
    header: dict[str, Any]
    settings: dict[str, Any]
    defaults_for: list[tuple[str, str]] = field(default_factory=list)


def _parse(text: str, source: str, name: str) -> Recipe:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None
    header = doc.get("recipe", {})
    if "settings" in doc:
        settings = doc["settings"]
        extra = sorted(set(doc) - {"recipe", "settings"})
        if extra:
            raise ConfigError(f"{source}: unknown tables {extra}; use [recipe] and [settings]")
    else:  # a user's file may hold the settings at the top level
        settings = {k: v for k, v in doc.items() if k != "recipe"}
    if not isinstance(header, dict) or not isinstance(settings, dict):
        raise ConfigError(f"{source}: [recipe] and [settings] must be tables")
    unknown = sorted(set(header) - {*HEADER_KEYS, "defaults_for"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown keys in [recipe]: {unknown}; it describes the run "
            f"({', '.join(HEADER_KEYS)}, defaults_for): settings go in [settings]"
        )
    pairs = header.get("defaults_for", [])
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs
    ):
        raise ConfigError(
            f"{source}: [recipe] defaults_for must be a list of [method, dataset] pairs, e.g. "
            f'[["bptt", "mnist"]], got {pairs!r}'
        )
    pairs = [tuple(p) for p in pairs]
    info = {k: v for k, v in header.items() if k != "defaults_for"}
    return Recipe(name, info, settings, pairs)


def names() -> list[str]:
    """The shipped recipes' names."""
    folder = resources.files(__package__) / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def get(name: str) -> Recipe:
    """The shipped recipe ``name``."""
    if name not in names():
        raise ConfigError(f"--recipe: no recipe {name!r}; known: {', '.join(names())}")
    path = resources.files(__package__) / "recipes" / f"{name}.toml"
    return _parse(path.read_text(), f"recipe {name}", name)


def from_file(path: str | Path) -> Recipe:
    """A user's configuration file (same format as a recipe)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")  # TOML is UTF-8
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config: {path} is not UTF-8 text, which TOML must be") from None
    return _parse(text, str(path), path.stem)


def default_for(method: str, dataset: str) -> Recipe | None:
    """The recipe whose settings are the defaults of ``method`` on ``dataset``, if any."""
    for name in names():
        recipe = get(name)
        if (method, dataset) in recipe.defaults_for:
            return recipe
    return None


@dataclass
class Resolved:
    config: RunConfig
    recipe: str | None  # the shipped recipe it started from
    config_file: str | None
    overrides: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def origin(self) -> str:
        if self.recipe:
            return f"recipe {self.recipe}"
        if self.config_file:
            return f"config file {self.config_file}"
        return f"the {self.config.method} defaults"


def resolve(
    *,
    recipe: str | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Resolved:
    """The checked configuration of a new run; ``overrides`` are the flags given."""
    overrides = dict(overrides or {})
    if recipe and config_file:
        raise ConfigError("--recipe and --config both given: use one")
    base: Recipe | None = None
    if recipe:
        base = get(recipe)
    elif config_file:
        base = from_file(config_file)
    values: dict[str, Any] = dict(base.settings) if base else {}
    source = f"recipe {base.name}" if recipe and base else config_file
    if base is not None and "method" in overrides:
        own = values.get("method", "bptt")
        if overrides["method"] != own:
            raise ConfigError(
                f"--method {overrides['method']} conflicts with {source} (method {own}): "
                f"pick a recipe of that method (torchspike recipes)"
            )
    if base is None:  # the default recipe of the method and data set, if there is one
        method = overrides.get("method", "bptt")
        dataset = overrides.get("dataset", _default_dataset(method))
        base = default_for(method, dataset)
        if base is not None:
            recipe, values, source = base.name, dict(base.settings), f"recipe {base.name}"
        else:
            values = {"method": method}
    notes = []
    init = values.get("init")
    if "hidden" in overrides and "init" not in overrides and init is not None:
        hidden = [h for h in overrides["hidden"] if h != 0]
        if len(init) != len(hidden) + 1:  # the recipe's init was for its own layers
            values["init"] = None
            notes.append(
                f"--hidden changes the number of weight matrices: {source}'s init {init} is "
                f"dropped, the layers' default initialisation is used"
            )
    values.update(overrides)
    where = source or "the flags given"
    where += " with the flags given" if source and overrides else ""
    draft = from_dict(values, where, check=False)
    for name in base.settings if base else ():  # recipe settings the flags made pointless
        why = draft.uses(name)
        if name not in overrides and why and values[name] != default(type(draft), name):
            values[name] = default(type(draft), name)
            notes.append(f"{source}'s {name} {why}: reset to {values[name]!r}")
    config = from_dict(values, where)
    path = str(Path(config_file).resolve()) if config_file else None
    return Resolved(config, recipe, path, overrides, notes)


def _default_dataset(method: str) -> str:
    return CLASSES[method]().dataset if method in CLASSES else "digits"
