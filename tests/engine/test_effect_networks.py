"""Effects that run networks of their own (``Effect.networks``, ``model = None``): the plan decides their weights
once before any compute (cached, fetched once online with progress, one line offline), ``ctx.network`` builds
each once per process, reports name them. A fake catalogue entry with a one-conv graph; the cache and the
fetch are faked (the fetcher has its own tests)."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gradfx.engine import Effect, Float, Output, ParameterError, PluginError, WeightsError
from gradfx.engine.models import effect_networks, index
from gradfx.engine.models.index import networks
from gradfx.engine.models.index.convert import Converter, fingerprint_input
from gradfx.engine.models.index.networks import Network, Package


def _build():
    import keras

    image = keras.Input((None, None, 3))
    return keras.Model(image, keras.layers.Conv2D(3, 1, name="mix")(image))


CONVERTER = Converter(build=_build, load=lambda model, tensors: None, probe=lambda: fingerprint_input(8))
FAKE = Network(name="fake-net", model="fake", licence="MIT", description="a one-conv colour mixer",
               package=Package("fakenet", "1.0", "fakenet-1.0.tar.gz", "0" * 64, 1, "sdist"), member="m.pth",
               member_sha256="1" * 64, member_size=1, cache_file="fake_net.weights.h5", cache_size=1,
               converter=CONVERTER)


class Mixer(Effect):
    name = "net-mixer"
    summary = "runs a network of its own"
    model = None
    networks = ("fake-net",)
    params = (Float("gain", 1.0, "how much of the network's output", min=0),)

    def networks_for(self, params):
        return self.networks if params["gain"] > 0 else ()

    def run(self, ctx, params):
        out = ctx.input.rgb
        if params["gain"] > 0:
            out = np.clip(np.abs(ctx.network("fake-net")(out[None]).numpy()[0]) * params["gain"], 0, 1)
        ctx.progress("mix", 1, 1, image=out)
        return Output(out)


class Greedy(Mixer):
    name = "net-greedy"
    networks = ()

    def run(self, ctx, params):
        ctx.network("fake-net")  # not declared: a plugin bug
        return Output(ctx.input.rgb)


class Outer(Mixer):
    name = "net-outer"

    def run(self, ctx, params):  # another effect, as part of this run
        return Output(ctx.run_effect("net-mixer", ctx.input.rgb, gain=params["gain"]).image)


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """The fake network in the catalogue and, once "fetched", in a cache (a weights file of the graph)."""
    monkeypatch.setattr(networks, "NETWORKS", {**networks.NETWORKS, FAKE.name: FAKE})
    file = tmp_path / FAKE.cache_file
    model = _build()
    model.get_layer("mix").set_weights([np.eye(3, dtype=np.float32)[None, None] * 0.5, np.zeros(3, np.float32)])
    model.save_weights(str(file))
    state = {"cached": False, "fetches": [], "builds": 0}
    monkeypatch.setattr(index, "cached", lambda name: file if state["cached"] and name == FAKE.name else None)

    def fetch(names, progress=None):
        state["fetches"].append(list(names))
        if progress is not None:
            from gradfx.engine import ProgressEvent

            progress(ProgressEvent("downloading fakenet-1.0.tar.gz", 0, 1, 1, 1, float("nan"), 0.0, 1, 1, "bytes"))
        state["cached"] = True
        return [file for _ in names]

    monkeypatch.setattr(index, "fetch", fetch)
    graph = index.graph

    def counting_graph(name):
        state["builds"] += 1
        return graph(name)

    monkeypatch.setattr(index, "graph", counting_graph)
    effect_networks.clear_cache()
    yield state
    effect_networks.clear_cache()


@pytest.fixture
def reg(registry, fake_cache):
    plugin = types.ModuleType("net_plugin_test")
    from gradfx.engine import hookimpl

    @hookimpl
    def gradfx_register_effects(register):
        for effect in (Mixer(), Greedy(), Outer()):
            register(effect)

    plugin.gradfx_register_effects = gradfx_register_effects
    sys.modules[plugin.__name__] = plugin
    info = registry.add_plugin(plugin, "net-plugin")
    assert info.ok, info.errors
    yield registry
    registry.remove_plugin("net-plugin")


def test_offline_without_the_network_is_one_line_before_any_compute(reg, fake_cache, monkeypatch, make_image):
    from gradfx.engine.running.plan import draft

    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        draft([("net-mixer", {})], make_image(16, 16), chain=False)
    message = str(err.value)
    assert "\n" not in message and "gradfx weights fetch fake-net" in message and "effect 'net-mixer'" in message
    assert fake_cache["fetches"] == [] and fake_cache["builds"] == 0
    # parameters that need no network need none
    assert draft([("net-mixer", {"gain": 0})], make_image(16, 16), chain=False).steps[0].networks == ()


def test_online_it_is_fetched_once_with_progress_then_built_once_per_process(reg, fake_cache, monkeypatch,
                                                                             make_image):
    from gradfx.engine import run
    from gradfx.engine.models.weights import reporting_fetches

    monkeypatch.delenv("GRADFX_OFFLINE", raising=False)
    seen, events = [], []

    @contextlib.contextmanager
    def bar():  # what the CLI's download bar is: entered around the fetch, its callback receives the events
        yield seen.append

    with reporting_fetches(bar):
        first = run("net-mixer", make_image(16, 16), progress=events.append)
    second = run("net-mixer", make_image(16, 16, seed=1))
    assert fake_cache["fetches"] == [["fake-net"]] and [e.message for e in seen] == ["bytes"]
    assert fake_cache["builds"] == 1  # the second run's network came from the process's cache
    np.testing.assert_allclose(first.image, make_image(16, 16) * 0.5, atol=1e-6)  # the trained weights
    assert events[-1].preview() is not None and events[-1].stage == "mix"
    report = second.report
    assert report["model"] is None and report["weights"]["resolved"] == "trained"
    assert report["networks"][0]["name"] == "fake-net" and report["networks"][0]["source"] == FAKE.source
    assert "a one-conv colour mixer" in report["weights"]["description"]


def test_random_weights_are_seeded_by_the_run(reg, fake_cache, make_image):
    from gradfx.engine import run

    a, b = (run("net-mixer", make_image(16, 16), weights="random", seed=s).image for s in (1, 2))
    again = run("net-mixer", make_image(16, 16), weights="random", seed=1).image
    assert np.array_equal(a, again) and not np.array_equal(a, b)
    assert fake_cache["fetches"] == []


def test_a_model_or_backbone_weights_would_be_ignored_so_they_are_refused(reg, fake_cache, make_image, tmp_path):
    from gradfx.engine.running.plan import draft

    fake_cache["cached"] = True
    with pytest.raises(ParameterError, match="reads no backbone model.*leave the model out"):
        draft([("net-mixer", {})], make_image(16, 16), model="vgg19", chain=False)
    with pytest.raises(ParameterError, match="--weights hed: no step reads a backbone"):
        draft([("net-mixer", {})], make_image(16, 16), weights="hed", chain=False)
    with pytest.raises(WeightsError, match="unknown weights 'imagenett'"):
        draft([("net-mixer", {})], make_image(16, 16), weights="imagenett", chain=False)
    # a chain's model is every step's that names none, and a backbone step takes hed
    plan = draft([("net-mixer", {}), ("deepdream", {"steps": 1})], make_image(32, 32), model="vgg19")
    assert [s.model for s in plan.steps] == [None, "vgg19"]


def test_an_undeclared_network_is_the_plugins_bug(reg, fake_cache, make_image):
    from gradfx.engine import run

    fake_cache["cached"] = True
    with pytest.raises(PluginError, match="net-greedy.*asked for the network 'fake-net'.*networks_for"):
        run("net-greedy", make_image(16, 16))


def test_another_effect_inside_a_run_uses_the_same_networks(reg, fake_cache, make_image):
    from gradfx.engine import run

    fake_cache["cached"] = True
    out = run("net-outer", make_image(16, 16), params={"gain": 2.0})
    np.testing.assert_allclose(out.image, np.clip(make_image(16, 16), 0, 1), atol=1e-6)  # 0.5 * 2
    assert out.report["networks"][0]["name"] == "fake-net" and fake_cache["builds"] == 1


def test_registration_checks_the_networks(registry):
    from gradfx.engine import hookimpl

    class Unknown(Mixer):
        name = "net-unknown"
        networks = ("no-such-net",)

    class ModelsWithout(Mixer):
        name = "net-models"
        models = ("vgg19",)

    plugin = types.ModuleType("net_bad_plugin")

    @hookimpl
    def gradfx_register_effects(register):
        register(Unknown())
        register(ModelsWithout())

    plugin.gradfx_register_effects = gradfx_register_effects
    info = registry.add_plugin(plugin, "net-bad")
    try:
        errors = " ".join(info.errors)
        assert "no network called 'no-such-net'" in errors and "model None (no backbone) takes no models" in errors
        assert "net-unknown" not in registry.effects
    finally:
        registry.remove_plugin("net-bad")


def test_the_cli_says_it_in_one_line(reg, fake_cache, monkeypatch, tmp_path, capsys, make_image):
    from gradfx.engine.images.save import save_image
    from gradfx.tui.cli import main

    monkeypatch.setenv("GRADFX_OFFLINE", "1")
    image = save_image(tmp_path / "in.png", make_image(16, 16))
    assert main(["run", "net-mixer", str(image), "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gradfx weights fetch fake-net" in err
    assert not Path(tmp_path / "out.png").exists()
