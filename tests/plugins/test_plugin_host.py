"""The plugin host: discovery through entry points, isolation of broken plugins, GRADFX_PLUGINS, every hook."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from gradfx.engine import Effect, Int, Output, PluginError, hookimpl, hookspecs
from gradfx.engine.registry import Registry, normalize_name
from gradfx.tui.cli import main

TESTS = Path(__file__).resolve().parents[1]


def cli_json(capsys, *argv: str, status: int = 0):
    capsys.readouterr()
    assert main([*argv, "--json"]) == status
    return json.loads(capsys.readouterr().out)


def save_png(path: Path, h: int = 40, w: int = 40) -> Path:
    from PIL import Image

    y, x = np.mgrid[0:h, 0:w]
    Image.fromarray(np.stack([x * 6, y * 6, (x + y) * 3], -1).astype(np.uint8)).save(path)
    return path


class Flat(Effect):
    """A TensorFlow-free test effect: fills the input with a constant."""

    summary = "fill with a constant"
    params = (Int("value", 1, "value", min=0, max=255),)

    def __init__(self, name: str = "flat") -> None:
        self.name = name

    def run(self, ctx, params):
        return Output(np.full_like(ctx.input.rgb, params["value"] / 255))


# --- discovery of installed distributions -------------------------------------------------------------------


def test_installed_example_plugin_is_listed_with_distribution_and_runs_through_cli_and_api(
        examples, host, capsys, tmp_path):
    rows = {r["effect"]: r for r in cli_json(capsys, "list")}
    assert rows["posterize-dream"]["plugin"] == "posterize"
    assert rows["posterize-dream"]["from"] == "gradfx-example-plugin"

    src, out = save_png(tmp_path / "in.png"), tmp_path / "out.png"
    assert main(["run", "posterize-dream", str(src), "-o", str(out), "-q", "--weights", "random",
                 "-p", "steps=2", "-p", "levels=2", "--report", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["plugin"] == "posterize" and report["effect"] == "posterize-dream"

    from gradfx.engine import run

    result = run("posterize-dream", str(src), params={"steps": 2, "levels": 2}, weights="random")
    assert set(np.unique(result.image)) <= {0.0, 1.0}


def test_a_plugin_whose_import_raises_leaves_list_and_run_working_and_is_shown_in_plugins(
        examples, host, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # no folding in rich's table
    reg = host()
    assert not reg.plugins["broken"].ok and reg.plugins["posterize"].ok
    rows = {r["effect"] for r in cli_json(capsys, "list")}
    assert "posterize-dream" in rows and set(reg.plugins["gradfx"].effects) <= rows

    reg.add_plugin(type("P", (), {"gradfx_register_effects": hookimpl(
        lambda self, register: register(Flat()))})(), "flat-test")
    src, out = save_png(tmp_path / "in.png"), tmp_path / "out.png"
    assert main(["run", "flat", str(src), "-o", str(out), "-q", "-p", "value=255"]) == 0
    assert out.is_file()

    # a plugin failed: exit 1, so a script or CI notices (it exited 0)
    plugins = {p["name"]: p for p in cli_json(capsys, "plugins", status=1)["plugins"]}
    broken = plugins["broken"]
    assert broken["status"] == "failed" and broken["distribution"] == "gradfx-broken-plugin"
    assert broken["version"] == "0.0.1"
    assert "ImportError" in broken["errors"][0] and "broken on purpose" in broken["errors"][0]
    assert plugins["posterize"]["effects"] == ["posterize-dream"]
    assert plugins["posterize"]["version"] == "0.1.0"

    capsys.readouterr()
    assert main(["plugins"]) == 1  # the table names the failure and why
    text = capsys.readouterr().out
    assert "broken" in text and "failed" in text and "gradfx-broken-plugin" in text
    capsys.readouterr()
    assert main(["--debug", "plugins"]) == 1  # and --debug shows where
    assert "Traceback" in capsys.readouterr().out


@pytest.mark.parametrize("value, loaded", [
    ("none", set()),
    ("off", set()),
    ("posterize", {"posterize"}),                       # by entry-point name
    ("gradfx_example_plugin", {"posterize"}),           # by distribution name, normalised as pip does
    ("posterize,broken", {"posterize", "broken"}),
    ("all", {"posterize", "broken"}),
])
def test_gradfx_plugins_turns_external_plugins_off_or_limits_them(examples, host, monkeypatch, value, loaded):
    monkeypatch.setenv("GRADFX_PLUGINS", value)
    reg = host()
    external = {n for n, p in reg.plugins.items() if not p.builtin}
    assert external == loaded
    assert set(reg.disabled) == {"posterize", "broken"} - loaded
    assert "gradfx" in reg.plugins and reg.plugins["gradfx"].effects  # built-ins always load
    assert ("posterize-dream" in reg.effects) == ("posterize" in loaded)


def test_a_name_in_gradfx_plugins_that_matches_nothing_is_reported(examples, host, monkeypatch, capsys):
    monkeypatch.setenv("GRADFX_PLUGINS", "posterise,gradfx")  # the built-in plugin's name always matches
    assert host().unmatched_filter == ["posterise"]
    capsys.readouterr()
    main(["plugins"])
    assert "posterise" in capsys.readouterr().out


def test_normalize_name_follows_pep_503():
    assert normalize_name("Gradfx_Example.Plugin") == normalize_name("gradfx-example-plugin")


def test_two_distributions_claiming_one_plugin_name_load_the_first_and_report_the_second(install, host):
    effect = "from gradfx.engine import hookimpl\n@hookimpl\ndef gradfx_register_effects(register):\n    pass\n"
    install("dist-one", {"same": "clash_one"}, {"clash_one": effect})
    install("dist-two", {"same": "clash_two"}, {"clash_two": effect})
    install("dist-host", {"gradfx": "clash_one"})
    reg = host()
    claimed = [p for p in reg.plugins.values() if p.name.startswith("same")]
    assert len(claimed) == 2 and sum(p.ok for p in claimed) == 1
    failed = next(p for p in claimed if not p.ok)
    assert "already taken" in failed.errors[0] and failed.distribution in failed.name
    host_clash = reg.plugins["gradfx (dist-host)"]
    assert "gradfx itself" in host_clash.errors[0]
    assert reg.plugins["gradfx"].builtin and reg.plugins["gradfx"].ok


def test_an_import_that_calls_sys_exit_is_contained(install, host):
    install("exiting", {"exiting": "exiting_plugin"}, {"exiting_plugin": "import sys\nsys.exit(3)\n"})
    reg = host()
    assert "SystemExit" in reg.plugins["exiting"].errors[0]
    assert reg.effects  # the host still works


# --- hook: gradfx_register_effects ------------------------------------------------------------------------


class EffectsPlugin:
    def __init__(self, *things):
        self.things = things

    @hookimpl
    def gradfx_register_effects(self, register):
        for thing in self.things:
            register(thing)


def test_gradfx_register_effects_adds_effects_and_remove_plugin_takes_them_away(registry):
    info = registry.add_plugin(EffectsPlugin(Flat("flat-a"), Flat("flat-b")), "two")
    assert info.ok and info.effects == ["flat-a", "flat-b"]
    assert registry.effect_plugin["flat-b"] == "two"
    registry.remove_plugin("two")
    assert "flat-a" not in registry.effects and "two" not in registry.plugins


@pytest.mark.parametrize("thing, message", [
    (Flat, "pass an instance"),
    ("flat", "must be an instance of gradfx.engine.Effect"),
    (Flat("Bad Name"), "invalid"),
    (type("NoSummary", (Flat,), {"summary": ""})(), "no summary"),
    (type("NoBuild", (Effect,), {"name": "nobuild", "summary": "x"})(), "neither build() nor run()"),
    (type("BadModels", (Flat,), {"models": ("vgg16",)})(), "must be a tuple of model names"),
    (type("BadParams", (Flat,), {"params": (Int("a", 1), Int("a", 2))})(), "declared twice"),
])
def test_gradfx_register_effects_validates_each_registration_and_names_the_plugin(registry, thing, message):
    info = registry.add_plugin(EffectsPlugin(thing, Flat("flat-ok")), "checked")
    assert not info.ok and message in info.errors[0]
    assert info.effects == ["flat-ok"]  # the valid one still registered
    assert "checked" in [p.name for p in registry.failures()]


def test_gradfx_register_effects_name_clash_names_the_owner(registry):
    builtin = registry.plugins["gradfx"].effects[0]
    info = registry.add_plugin(EffectsPlugin(Flat(builtin)), "clasher")
    assert "already registered by plugin 'gradfx'" in info.errors[0]
    assert registry.effect_plugin[builtin] == "gradfx"


def test_gradfx_register_effects_that_raises_is_the_plugins_failure(registry):
    class Raising:
        @hookimpl
        def gradfx_register_effects(self, register):
            register(Flat("flat-first"))
            raise RuntimeError("boom")

    info = registry.add_plugin(Raising(), "raising")
    assert "gradfx_register_effects raised RuntimeError: boom" in info.errors[0]
    assert "RuntimeError" in info.tracebacks[0]
    assert registry.effects["flat-first"]  # what it registered before failing stays usable


def test_hook_mistakes_are_reported_helpfully(registry):
    class Typo:
        @hookimpl
        def gradfx_register_effect(self, register):
            register(Flat())

    class Returns:
        @hookimpl
        def gradfx_register_effects(self):  # pluggy allows fewer arguments than the spec
            return [Flat()]

    typo = registry.add_plugin(Typo(), "typo")
    assert "unknown hook 'gradfx_register_effect'" in typo.errors[0]
    assert "did you mean 'gradfx_register_effects'" in typo.errors[0]
    returns = registry.add_plugin(Returns(), "returns")
    assert returns.ok and "call register(thing)" in returns.warnings[0]
    with pytest.raises(PluginError, match="already registered"):
        registry.add_plugin(Typo(), "typo")


def test_adding_an_already_registered_object_under_another_name_is_a_no_op(registry):
    # `gradfx tui --plugin MODULE` for a module also installed under another entry-point name: pluggy's
    # "Plugin already registered under a different name" made the plugin show as failed
    plugin = EffectsPlugin(Flat("flat-once"))
    first = registry.add_plugin(plugin, "entry-name")
    again = registry.add_plugin(plugin, "module_name")
    assert again is first and again.ok and again.effects == ["flat-once"]
    assert "module_name" not in registry.plugins and registry.effect_plugin["flat-once"] == "entry-name"


# --- an exception inside an effect at run time -----------------------------------------------------------


def test_an_effect_that_raises_at_run_time_is_reported_with_effect_and_plugin(registry, make_image):
    from gradfx.engine import run

    class Crashing(Flat):
        def run(self, ctx, params):
            raise ZeroDivisionError("oops")

    class WrongShape(Flat):
        def run(self, ctx, params):
            return Output(np.zeros((4, 4)))

    registry.add_plugin(EffectsPlugin(Crashing("crashing"), WrongShape("wrong-shape"), Flat()), "buggy")
    with pytest.raises(PluginError, match=r"effect 'crashing' \(plugin 'buggy'\) failed: ZeroDivisionError: oops"):
        run("crashing", make_image(32, 32), weights="random")
    with pytest.raises(PluginError, match=r"'wrong-shape' \(plugin 'buggy'\) returned an image of shape"):
        run("wrong-shape", make_image(32, 32), weights="random")
    assert run("flat", make_image(32, 32), params={"value": 255}, weights="random").image.min() == 1.0  # still working


def test_cli_prints_a_crashing_effect_in_one_line(registry, tmp_path, capsys):
    class Crashing(Flat):
        def run(self, ctx, params):
            raise KeyError("missing")

    registry.add_plugin(EffectsPlugin(Crashing("crashing")), "buggy")
    # --weights random: no fall-back line before the compute (said before it, it is no part of the error)
    code = main(["run", "crashing", str(save_png(tmp_path / "in.png")), "-o", str(tmp_path / "o.png"), "-q",
                 "--weights", "random"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "'crashing'" in err and "'buggy'" in err and "--debug" in err


# --- hook: gradfx_register_models -------------------------------------------------------------------------


def tiny_spec(name: str = "tiny-net"):
    import keras

    from gradfx.engine import ModelSpec

    def build(include_top: bool = False, pooling: str = "max"):
        inp = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
        return keras.Model(inp, x, name=name.replace("-", "_"))

    return ModelSpec(name=name, summary="two conv layers", build=build, preprocess=lambda x: x * 2.0 - 1.0,
                     deprocess=lambda y: (y + 1.0) / 2.0, input_range=(-1.0, 1.0), min_size=8,
                     default_layers=("conv2",))


class Dream(Effect):
    name = "tiny-dream"
    summary = "raise conv2 of any model"
    params = (Int("steps", 4, "steps", min=1),)
    model = "tiny-net"

    def build(self, ctx, params):
        from gradfx.engine import Problem
        from gradfx.engine.objectives import layer_mean

        return Problem(layer_mean("conv2"), init=ctx.input.rgb, maximize=True, steps=params["steps"],
                       optimizer="sgd", lr=0.05, normalize="std")


class ModelsPlugin:
    def __init__(self, *specs, effects=()):
        self.specs, self.effects = specs, effects

    @hookimpl
    def gradfx_register_models(self, register):
        for spec in self.specs:
            register(spec)

    @hookimpl
    def gradfx_register_effects(self, register):
        for effect in self.effects:
            register(effect)


def test_gradfx_register_models_adds_a_backbone_that_effects_optimise_through(registry, make_image):
    from gradfx.engine import run

    info = registry.add_plugin(ModelsPlugin(tiny_spec(), effects=(Dream(),)), "tiny")
    assert "tiny-net" in registry.models and info.ok, info.errors
    assert registry.model_plugin["tiny-net"] == "tiny" and "tiny-net" in info.models
    result = run("tiny-dream", make_image(24, 24), weights="random", seed=2)
    assert result.report["model"] == "tiny-net"
    assert result.report["losses"][-1] > result.report["losses"][0]


def test_gradfx_register_models_validates_and_isolates(registry):
    class Raising:
        @hookimpl
        def gradfx_register_models(self, register):
            raise OSError("no such file")

    bad = registry.add_plugin(ModelsPlugin("vgg16", tiny_spec("vgg16")), "bad-models")
    raising = registry.add_plugin(Raising(), "raising-models")
    registry.models  # noqa: B018 - model hooks run lazily; failures appear once they have
    assert "a model must be a gradfx.engine.ModelSpec" in bad.errors[0]
    assert "model 'vgg16' is already registered by plugin 'gradfx'" in bad.errors[1]
    assert "OSError: no such file" in raising.errors[0]
    assert registry.model_plugin["vgg16"] == "gradfx"


def test_model_hooks_are_not_called_by_listing_effects(registry):
    calls = []

    class Counting:
        @hookimpl
        def gradfx_register_models(self, register):
            calls.append(1)

    registry.add_plugin(Counting(), "counting")
    assert calls == []
    registry.models  # noqa: B018
    assert calls == [1]


# --- the meta-test ------------------------------------------------------------------------------------------


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, f"{hookspecs.PROJECT}_spec")]


def test_every_hook_in_the_spec_has_a_test():
    """Fails when a hook is added to engine/hookspecs.py without a test function that names it."""
    hooks = hook_names()
    assert {"gradfx_register_effects", "gradfx_register_models"} <= set(hooks)
    tested: set[str] = set()
    for file in TESTS.rglob("test_*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                tested |= {h for h in hooks if h in node.name}
    missing = sorted(set(hooks) - tested)
    assert not missing, f"hooks without a test (name a test function test_<hook>_...): {missing}"


def test_hook_specs_are_documented():
    for name in hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.split()) > 20, f"hook {name} needs a docstring that says what to do and return"


def test_fresh_registries_do_not_share_state():
    a, b = Registry(external=False), Registry(external=False)
    a.add_plugin(EffectsPlugin(Flat("only-in-a")), "a")
    assert "only-in-a" in a.effects and "only-in-a" not in b.effects
