"""A plugin's status says what is true, and GRADFX_PLUGINS is named where it explains a missing effect."""

from __future__ import annotations

import json

import pytest
from helpers import TinyDream

from gradfx.engine import hookimpl
from gradfx.engine.errors import UnknownEffectError
from gradfx.tui.cli import main


class RaisesAfterOne:
    @hookimpl
    def gradfx_register_effects(self, register):
        register(TinyDream())
        raise RuntimeError("the second effect's import failed")


class ClashesWithABuiltin:
    @hookimpl
    def gradfx_register_effects(self, register):
        register(TinyDream())
        register(type("Clash", (TinyDream,), {"name": "deepdream"})())


def test_a_plugin_that_registered_some_effects_is_partly_loaded_not_failed(registry, capsys):
    # both were "failed to load" while their first effect was listed and ran
    raising = registry.add_plugin(RaisesAfterOne(), "raising")
    assert raising.status == "partly loaded" and raising.effects == ["tiny-dream"]
    assert raising.describe_status() == "partly loaded: 1 registered, then it failed"
    registry.remove_plugin("raising")
    clash = registry.add_plugin(ClashesWithABuiltin(), "clash")
    assert clash.describe_status() == "partly loaded: 1 of 2" and "already registered" in clash.errors[0]
    assert registry.problems() == ["1 plugin(s) did not load fully: clash (partly loaded: 1 of 2)"]
    assert main(["plugins", "--json"]) == 1  # partly loaded is a failure too: exit 1 (it exited 0)
    shown = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert shown["clash"]["status"] == "partly loaded" and shown["gradfx"]["status"] == "ok"
    assert main(["list"]) == 0
    assert "clash (partly loaded: 1 of 2)" in " ".join(capsys.readouterr().out.split())


def test_an_effect_hidden_by_gradfx_plugins_says_so(examples, host, monkeypatch):
    monkeypatch.setenv("GRADFX_PLUGINS", "broken")
    reg = host()
    with pytest.raises(UnknownEffectError) as caught:
        reg.effect("posterize-dream")
    message = str(caught.value)
    assert "GRADFX_PLUGINS='broken' leaves out installed plugin(s) posterize" in message, message
    monkeypatch.setenv("GRADFX_PLUGINS", "all")
    from gradfx.engine.registry import Registry

    with pytest.raises(UnknownEffectError) as caught:
        Registry().effect("nope")
    assert "GRADFX_PLUGINS" not in str(caught.value)  # nothing left out: no hint


def test_a_gradfx_plugins_name_that_matches_nothing_is_said_by_list_too(examples, host, monkeypatch, capsys):
    # only 'gradfx plugins' showed it
    monkeypatch.setenv("GRADFX_PLUGINS", "posterise")
    host()
    assert main(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "GRADFX_PLUGINS names 'posterise', which matches no installed plugin" in out
