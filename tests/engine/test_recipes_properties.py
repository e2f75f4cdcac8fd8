"""Property-based tests of recipe parsing and validation: whatever the text or the tables hold, a recipe
either loads and validates, or fails with a one-line gradfx error naming the recipe (and the step, when a
step is at fault) — never another exception, and never after compute has started."""

from __future__ import annotations

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradfx.engine import Effect, Float, Int, hookimpl
from gradfx.engine.errors import GradfxError, RecipeError
from gradfx.engine.running.recipes import dumps_recipe, loads_recipe, parse_recipe, validate_recipe


class Dial(Effect):
    name = "dial"
    summary = "never runs: only validated"
    params = (Int("steps", 5, "steps", min=1, max=100), Float("gain", 1.0, "gain", min=0.0))

    def build(self, ctx, params):  # pragma: no cover - validation only
        raise AssertionError("validation must not compute")


class DialPlugin:
    @hookimpl
    def gradfx_register_effects(self, register):
        register(Dial())


scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), st.booleans())
values = st.one_of(scalars, st.lists(scalars, max_size=3))
step_tables = st.fixed_dictionaries(
    {}, optional={"effect": st.sampled_from(["dial", "dail", "", "nope"]), "steps": values, "gain": values,
                  "stpes": values, "model": st.sampled_from(["vgg16", "nope"])})
recipes = st.fixed_dictionaries(
    {}, optional={"step": st.lists(step_tables, max_size=3), "seed": values, "weights": values, "sed": values})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=recipes)
def test_any_recipe_table_validates_or_fails_with_one_clean_line(registry, data):
    if "dial" not in registry.plugins:  # the fixture is shared by all examples of this test
        registry.add_plugin(DialPlugin(), "dial")
    try:
        validate_recipe(parse_recipe(data, source="r.toml"), registry=registry)
    except GradfxError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("r.toml"), msg
        return
    # it validated: then every step named the effect, only its parameters, with values in range
    steps = data["step"]
    assert steps and all(s.get("effect") == "dial" and "stpes" not in s for s in steps)
    for s in steps:
        assert "steps" not in s or 1 <= float(s["steps"]) <= 100
        assert "gain" not in s or float(s["gain"]) >= 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_recipe_or_a_recipe_error(text):
    try:
        loads_recipe(text, source="r.toml")
    except RecipeError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("r.toml")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"steps": st.integers(1, 100), "gain": st.floats(0, 1e6)}), min_size=1,
                max_size=4), st.integers(0, 2**31))
def test_valid_recipes_round_trip_through_toml(steps, seed):
    text = tomli_w.dumps({"seed": seed, "step": [{"effect": "dial", **s} for s in steps]})
    recipe = loads_recipe(text, source="r.toml")
    again = loads_recipe(dumps_recipe(recipe), source="r.toml")
    assert again.seed == seed and [(s.effect, s.params) for s in again.steps] == [
        ("dial", s) for s in steps]
