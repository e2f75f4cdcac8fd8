"""Property-based tests of parameter parsing: any text either parses to a valid value or raises a one-line
ParameterError naming the parameter; valid values survive a format/parse round trip."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gradfx.engine.errors import ParameterError
from gradfx.engine.params import Bool, Choice, Float, Floats, Images, Int, Schema

PARAMS = [
    Int("steps", 10, min=1, max=10_000),
    Float("lr", 0.01, min=0.0, max=10.0),
    Bool("flag", False),
    Choice("mode", "std", ("std", "mean", "l2")),
    Floats("weights", (1.0,), min=0.0),
    Images("style"),
]
SCHEMA = Schema(tuple(PARAMS), owner="prop")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARAMS), st.text(max_size=30))
def test_any_text_parses_or_fails_cleanly(param, text):
    try:
        value = param.coerce(text)
    except ParameterError as exc:
        msg = str(exc)
        assert repr(param.name) in msg and "\n" not in msg and "expected" in msg
        return
    if param.kind == "int":
        assert isinstance(value, int) and 1 <= value <= 10_000
    elif param.kind == "float":
        assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 10.0
    elif param.kind == "bool":
        assert isinstance(value, bool)
    elif param.kind == "choice":
        assert value in ("std", "mean", "l2")
    elif param.kind == "floats":
        assert value and all(math.isfinite(v) and v >= 0 for v in value)
    else:
        assert value and all(v and v == v.strip() for v in value)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.floats(0, 10, allow_nan=False), st.booleans(),
       st.sampled_from(("std", "mean", "l2")), st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=5))
def test_valid_values_round_trip_through_text(steps, lr, flag, mode, weights):
    values = {"steps": steps, "lr": lr, "flag": flag, "mode": mode, "weights": weights}
    resolved = SCHEMA.resolve(values)
    as_text = {name: SCHEMA[name].format(value) for name, value in resolved.items() if value is not None}
    assert SCHEMA.resolve(as_text) == resolved


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=4))
def test_unknown_names_are_always_refused(values):
    unknown = [k for k in values if k not in SCHEMA]
    try:
        SCHEMA.resolve(values)
    except ParameterError as exc:
        assert unknown or "is not allowed" in str(exc)
        if unknown:
            assert "unknown parameter" in str(exc) or "is not allowed" in str(exc)
    else:
        assert not unknown
