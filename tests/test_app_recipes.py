"""Recipes and configuration resolution: every shipped recipe loads and trains a few batches on
tiny data; defaults < recipe or file < flags; each method's default recipe."""

import math
import re

import pytest
import torch

from torchspike import data
from torchspike.app import cli, datasets, recipes
from torchspike.app.config import ConfigError, EventPropConfig, from_dict
from torchspike.app.load import build
from torchspike.app.loop import Splits, fit, lr_factor
from torchspike.data import events as ev


def _tiny(dataset: str, n: int, seed: int = 0):
    """``n`` random samples shaped as ``dataset``'s: tensors, or an event source whose samples
    hold 2,000 events within the first 0.1 s (N-MNIST's density in its first saccade: enough
    to make hidden neurons fire)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % datasets.num_classes(dataset)
    if not datasets.is_events(dataset):
        return torch.rand(n, *data.input_shape(dataset), generator=g), y
    sensor = ev.sensor(dataset)

    def read(i: int):
        k = torch.Generator().manual_seed(i)
        t = torch.sort(torch.randint(0, 100_000, (2000,), generator=k)).values
        x = torch.randint(0, sensor.width, (2000,), generator=k)
        yy = torch.randint(0, sensor.height, (2000,), generator=k)
        p = torch.randint(0, sensor.polarities, (2000,), generator=k)
        return ev.make_events(t, x, yy, p, sensor)

    names = [str(c) for c in range(datasets.num_classes(dataset))]
    return datasets.EventSource(ev.EventDataset(y, read, sensor=sensor, classes=names))


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_loads_and_trains_a_few_batches(name):
    recipe = recipes.get(name)
    for key in ("title", "reproduces", "source", "readout", "target", "wall_time"):
        assert recipe.header.get(key), f"{name}: [recipe] needs {key}"
    cfg = recipes.resolve(recipe=name).config
    assert cfg.epochs >= 1 and 0 < recipe.header["target"] <= 1
    cfg.epochs = 1
    if cfg.method == "stdp":
        from torchspike.stdp import fit as stdp_fit

        library = cfg.library(threads=1)
        library.update_interval = 32
        x, y = _tiny(cfg.dataset, 32)
        result = stdp_fit(library, (x, y), (x[:8], y[:8]))
        assert result.metrics["test_spikes_per_image"] >= 0
        return
    batches = 2
    if datasets.is_events(cfg.dataset):  # a few small batches and layers: events cost
        cfg.batch_size = min(cfg.batch_size, 8)
        cfg.hidden = [min(h, 64) for h in cfg.hidden]
    train = _tiny(cfg.dataset, batches * cfg.batch_size)
    val = datasets.as_source(train).take(torch.arange(16))
    if datasets.is_events(cfg.dataset):
        val = _tiny(cfg.dataset, 8, seed=1)
    torch.manual_seed(0)
    method, model = build(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = fit(cfg, method, model, Splits(train, val), log=lambda _: None)
    assert math.isfinite(metrics["epochs"][0]["train_loss"])
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{name}: no parameter changed"


@pytest.mark.parametrize(
    "method, dataset, recipe",
    [
        ("bptt", "digits", "digits"),
        ("bptt", "mnist", "tutorial5"),
        ("eventprop", "yinyang", "eventprop-yinyang"),
        ("eventprop", "mnist", "eventprop-seed"),
        ("stdp", "mnist", "diehl-cook-100"),
    ],
)
def test_a_method_and_data_set_start_from_their_recipe(method, dataset, recipe):
    resolved = recipes.resolve(overrides={"method": method, "dataset": dataset})
    assert resolved.recipe == recipe and resolved.origin() == f"recipe {recipe}"
    assert resolved.config.dataset == dataset


def test_flags_override_a_recipe_and_recipes_override_defaults():
    resolved = recipes.resolve(recipe="tutorial5", overrides={"epochs": 3, "lr": 1e-3})
    cfg = resolved.config
    assert (cfg.epochs, cfg.lr, cfg.hidden, cfg.steps) == (3, 1e-3, [1000], 25)
    assert resolved.overrides == {"epochs": 3, "lr": 1e-3}


def test_a_config_file_is_a_recipe_of_ones_own(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[settings]\nmethod = "eventprop"\ndataset = "yinyang"\nhidden = [30]\n')
    resolved = recipes.resolve(config_file=str(path), overrides={"epochs": 2})
    cfg = resolved.config
    assert isinstance(cfg, EventPropConfig) and cfg.hidden == [30] and cfg.epochs == 2
    assert resolved.recipe is None and resolved.config_file == str(path.resolve())
    flat = tmp_path / "flat.toml"  # settings at the top level work too
    flat.write_text('method = "bptt"\nsteps = 7\n')
    assert recipes.resolve(config_file=str(flat)).config.steps == 7


def test_none_in_a_config_file_is_no_value_where_a_setting_may_have_none(tmp_path):
    """TOML has no null: "none" sets an optional model parameter to None."""
    path = tmp_path / "paper.toml"
    path.write_text(
        '[settings]\nmethod = "stdp"\ndataset = "digits"\n'
        '[settings.params]\nrule = "power_law"\ntau_post2 = "none"\nx_tar = 0.3\n'
    )
    params = recipes.resolve(config_file=str(path)).config.library(threads=1).params
    assert params == {"rule": "power_law", "tau_post2": None, "x_tar": 0.3}


@pytest.mark.parametrize(
    "text, match",
    [
        ("[settings]\nsteps = 'many'\n", "steps must be an integer, got 'many'"),
        ("[settings]\nn_neurons = 5\n", r"unknown settings.*n_neurons \(stdp\)"),
        ("[settings\n", "not valid TOML"),
        ("[settings]\nmethod = 'hebb'\n", "method must be one of"),
        ("[settings]\nmethod = ['bptt']\n", r"method must be one of .*, got \['bptt'\]"),
        ("[settings]\nhidden = [10, -1]\n", r"hidden sizes must be integers > 0"),
        ("[settings]\nlr = nan\n", "lr must be a finite number"),
        ("[settings]\nmethod = 'eventprop'\ninit = [[1, 2]]\n", "init must give"),
        ("[settings]\nmethod = 'stdp'\nparams = {rule = 'pair'}\n", "rule must be one of"),
        (
            "[settings]\nmethod = 'stdp'\nparams = {rule = 'power_law'}\n",
            "rule='power_law' has no slow post trace: set tau_post2=None",
        ),
        ("[settings]\nmethod = 'stdp'\nparams = {tau_pre = 'none'}\n", "tau_pre must be a num"),
    ],
)
def test_bad_config_files_name_the_file_and_setting(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        recipes.resolve(config_file=str(path))
    assert "bad.toml" in str(err.value)


def test_a_changed_hidden_size_drops_the_recipe_init_with_a_note():
    resolved = recipes.resolve(recipe="eventprop-yinyang", overrides={"hidden": [50, 50]})
    assert resolved.config.init is None and "init" in resolved.notes[0]


def test_recipe_settings_that_flags_make_pointless_are_reset_with_a_note():
    resolved = recipes.resolve(recipe="eventprop-seed", overrides={"loss": "max-voltage"})
    assert resolved.config.rescue_silent == 0.0
    assert any("rescue_silent" in note for note in resolved.notes)


@pytest.mark.parametrize(
    "overrides, reset",
    [
        ({"loss": "max-voltage"}, ("ttfs_xi", "ttfs_alpha", "ttfs_beta")),
        ({"encoding": "binary-time"}, ("latency_start", "latency_end")),
    ],
)
def test_eventprop_settings_that_flags_make_pointless_are_reset_with_a_note(overrides, reset):
    """The ttfs loss's parameters and the latency window do nothing with another loss or code."""
    resolved = recipes.resolve(recipe="eventprop-yinyang", overrides=overrides)
    for name in reset:
        assert getattr(resolved.config, name) == getattr(EventPropConfig(), name)
        assert any(f"{name} does nothing" in note for note in resolved.notes)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"rec_std": 0.1}, "rec_std does nothing without recurrent hidden layers"),
        ({"ttfs_xi": 0.1}, "ttfs_xi does nothing with loss 'max-voltage' (only ttfs)"),
        (
            {"encoding": "binary-time", "latency_end": 0.01},
            "latency_end does nothing with encoding 'binary-time' (only latency)",
        ),
    ],
)
def test_eventprop_settings_that_do_nothing_are_refused(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict({"method": "eventprop", "loss": "max-voltage", **values}, "run.json")


@pytest.mark.parametrize(
    "schedule, factors",
    [
        ("none", [1, 1, 1, 1]),
        ("cosine", [1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]),
        ("step", [1, 1, 0.5, 0.5]),
        ("exponential", [1, 0.5, 0.25, 0.125]),
    ],
)
def test_lr_schedules(schedule, factors):
    cfg = from_dict(
        {"schedule": schedule, "epochs": 4, "lr_step": 2, "lr_gamma": 0.5}
        if schedule in ("step", "exponential")
        else {"schedule": schedule, "epochs": 4},
        "test",
    )
    assert [lr_factor(cfg, e) for e in range(4)] == pytest.approx(factors)


def test_recipes_command_lists_and_shows(capsys):
    assert cli.main(["recipes"]) == 0
    listed = capsys.readouterr().out
    for name in recipes.names():
        assert name in listed
    assert cli.main(["recipes", "tutorial5"]) == 0
    shown = capsys.readouterr().out
    assert "# reproduces: 93.87%" in shown and "lr = 0.0005" in shown and "steps = 25" in shown
    assert cli.main(["recipes", "nope"]) == 2


@pytest.mark.parametrize("name", recipes.names())
def test_a_shown_recipe_is_a_config_file_of_the_same_run(name, capsys, tmp_path):
    """``torchspike recipes NAME`` prints TOML that, saved and given to ``--config``, resolves
    to the recipe's settings (None written as "none", also inside a table)."""
    assert cli.main(["recipes", name]) == 0
    path = tmp_path / "shown.toml"
    path.write_text(capsys.readouterr().out)
    assert recipes.resolve(config_file=str(path)).config == recipes.resolve(recipe=name).config


def test_help_shows_each_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[bptt 1000; eventprop 350]" in text  # --hidden: the defaults differ by method
    assert "[0.95]" in text and "--recipe" in text and "the default of --method" in text
