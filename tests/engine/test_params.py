import json

import pytest

from gradfx.engine.errors import ParameterError
from gradfx.engine.params import (
    Bool,
    Choice,
    Float,
    Floats,
    Image,
    ImageOr,
    Images,
    Int,
    Param,
    Schema,
    Str,
    parse_assignments,
)

SCHEMA = Schema(
    (
        Int("steps", 10, "steps", min=1, max=1000),
        Float("lr", 0.05, "learning rate", min=0),
        Bool("flag", False),
        Choice("mode", "std", ("std", "mean", "l2")),
        Floats("weights", (1.0, 2.0), min=0),
        Image("guide"),
        Images("style", required=True),
        Str("layers", "a:1"),
    ),
    owner="fx",
)


def test_defaults_and_coercion_from_text():
    out = SCHEMA.resolve({"steps": "20", "lr": "1e-3", "flag": "yes", "mode": "l2", "weights": "0.5, 3",
                          "style": "a.png,b.png"})
    assert out == {"steps": 20, "lr": 0.001, "flag": True, "mode": "l2", "weights": (0.5, 3.0), "guide": None,
                   "style": ("a.png", "b.png"), "layers": "a:1"}


def test_native_values_from_toml_pass_through():
    out = SCHEMA.resolve({"steps": 5, "lr": 1, "flag": True, "weights": [1, 2], "style": ["x.png"]})
    assert out["steps"] == 5 and out["lr"] == 1.0 and out["weights"] == (1.0, 2.0) and out["style"] == ("x.png",)


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"steps": "abc"}, "'steps': 'abc' is not allowed (not an integer)"),  # not float()'s own message
        ({"lr": "fast"}, "'lr': 'fast' is not allowed (not a number)"),
        ({"steps": "0"}, "from 1 to 1000"),
        ({"steps": 2.5}, "not an integer"),
        ({"steps": True}, "not an integer"),
        ({"lr": "-1"}, ">= 0"),
        ({"lr": "nan"}, "not finite"),
        ({"flag": "maybe"}, "true or false"),
        ({"mode": "st"}, "did you mean 'std'"),
        ({"weights": "1,-2"}, "out of range"),
        ({"weights": ""}, "empty list"),
    ],
)
def test_bad_values_name_parameter_value_and_allowed(values, fragment):
    with pytest.raises(ParameterError) as err:
        SCHEMA.resolve({"style": "s.png", **values})
    msg = str(err.value)
    assert fragment in msg and "effect 'fx'" in msg and "\n" not in msg


def test_unknown_and_required_parameters():
    with pytest.raises(ParameterError, match="unknown parameter 'stpes'.*did you mean 'steps'"):
        SCHEMA.resolve({"stpes": 1, "style": "s.png"})
    with pytest.raises(ParameterError, match="'style' is required"):
        SCHEMA.resolve({})


def test_declaration_errors_are_loud():
    with pytest.raises(ValueError, match="kind"):
        Param("x", "complex")
    with pytest.raises(ParameterError):
        Int("x", 0, min=1)  # its own default is out of range
    with pytest.raises(ValueError, match="declared twice"):
        Schema((Int("a", 1), Int("a", 2)))


def test_format_round_trips():
    for p in SCHEMA:
        if p.default is not None:
            assert p.coerce(p.format(p.default)) == p.default


def test_parse_assignments():
    assert parse_assignments(["steps=3", "layers=a:1,b:2", "octave-scale=1.4"]) == {
        "steps": "3", "layers": "a:1,b:2", "octave_scale": "1.4"}
    with pytest.raises(ParameterError, match="NAME=VALUE"):
        parse_assignments(["steps"])


def test_map_paths_finds_file_paths_and_leaves_the_rest():
    up = str.upper
    assert Image("g").map_paths(" a.png ", up) == "A.PNG"
    assert Images("s").map_paths("a.png, b.png", up) == "A.PNG,B.PNG"  # command-line text
    assert Images("s").map_paths(["a.png", "b.png"], up) == ["A.PNG", "B.PNG"]  # a recipe's list
    assert Images("s").map_paths(("a.png",), up) == ("A.PNG",)  # coerced
    init = ImageOr("init", "content", ("content", "noise"), "start")
    assert init.map_paths("noise", up) == "noise" and init.map_paths("start.png", up) == "START.PNG"
    assert init.has_paths and not Str("layers", "a").has_paths and Str("layers", "a").map_paths("x.png", up) == "x.png"
    assert init.allowed() == "one of content, noise, or an image path" and init.kind == "str"
    assert init.coerce("anything.png") == "anything.png"  # existence is checked where paths resolve: resolve_params()
    assert Int("n", 1).map_paths(3, up) == 3 and Image("g").map_paths(None, up) is None


def test_schema_files_lists_every_path():
    schema = Schema((Image("guide"), Images("style"), ImageOr("init", "content", ("content",)), Str("x", "y")))
    values = {"guide": "g.png", "style": ("a.png", "b.png"), "init": "i.png", "x": "not-a-path.png"}
    assert schema.files(values) == [("guide", "g.png"), ("style", "a.png"), ("style", "b.png"), ("init", "i.png")]
    assert schema.files({**values, "init": "content", "guide": None}) == [("style", "a.png"), ("style", "b.png")]


@pytest.mark.parametrize(("text", "negative", "fragment"), [
    ("a,a:2", True, "layer 'a' is listed twice"),  # style transfer summed repeats
    ("a,,b", False, "empty item between commas"),  # style transfer skipped empty items
    ("a:-1", False, "weight '-1' of layer 'a' is negative"),
    ("a:x", True, "weight 'x' of layer 'a' is not a number"),
    ("a:0,b:0", True, "every weight is zero"),
    ("1a", True, "'1a' is not a layer name"),
    ("a:inf", True, "weight of layer 'a' is not finite"),
])
def test_one_layer_weight_parser_and_its_rules(text, negative, fragment):
    # deepdream and style transfer each had a parser with different rules; both declare Layers parameters now
    from gradfx.engine.layers import Layers, parse_layer_weights

    with pytest.raises(ValueError, match=fragment):
        parse_layer_weights(text, negative=negative)
    with pytest.raises(ParameterError) as err:  # at parameter time, before any model (and a recipe's --check)
        Layers("style_layers", "a", negative=negative).coerce(text, where="step 1")
    assert str(err.value).startswith("step 1: parameter 'style_layers'") and fragment in str(err.value)
    assert parse_layer_weights(" a ,b:0.5") == (("a", 1.0), ("b", 0.5))
    assert parse_layer_weights("a:-1,b", negative=True) == (("a", -1.0), ("b", 1.0))


def test_both_effects_declare_their_layers_with_the_one_parser(registry):
    from gradfx.engine.layers import LayerWeights
    from gradfx.engine.running.plan import resolve_params

    for effect, name, negative in (("deepdream", "layers", True), ("style-transfer", "style_layers", False),
                                   ("style-transfer", "content_layers", False)):
        param = registry.effect(effect).schema[name]
        assert isinstance(param, LayerWeights) and param.negative is negative, (effect, name)
    with pytest.raises(ParameterError, match="'style_layers'.*listed twice"):
        resolve_params("style-transfer", {"style": __file__, "style_layers": "block1_conv1,block1_conv1"})


def test_a_size_the_models_minimum_bounds_says_so_where_the_allowed_values_are_shown(registry, capsys):
    from gradfx.tui.cli import main

    assert Int("size", 128, min=16, max=4096, model_min=True).allowed() == (
        "an integer from 16 to 4096, at least the model's minimum input (gradfx models lists it)")
    assert Int("tile", 0, min=0, model_min="off").allowed().endswith(", 0 or at least the model's minimum input "
                                                                     "(gradfx models lists it)")
    assert Int("steps", 1, min=1).allowed() == "an integer >= 1"
    # gradfx show said "an integer from 16 to 4096" and a run on inception_v3 then refused 64
    assert main(["show", "feature-vis", "--json"]) == 0
    shown = {p["name"]: p["allowed"] for p in json.loads(capsys.readouterr().out)["params"]}
    assert "at least the model's minimum input" in shown["size"] and "minimum" not in shown["steps"]


def test_a_parameter_can_apply_only_when_another_has_certain_values():
    lr = Float("lr", 0.02, "Adam's step").only_when(optimizer="adam")
    decay = Float("decay", 1.0).only_when(param=("fft", "fft+decorrelated"), steps=3)
    schema = Schema((Choice("optimizer", "adam", ("adam", "lbfgs")), Choice("param", "fft", ("fft", "fft+decorrelated", "pixel")),
                     Int("steps", 3), lr, decay), owner="fx")
    assert lr.applies({"optimizer": "adam"}) and not lr.applies({"optimizer": "lbfgs"})
    assert lr.applies({}) and Int("n", 1).applies({"anything": 1})  # no condition, or nothing to judge by
    assert decay.applies(schema.resolve({"param": "fft"})) and not decay.applies(schema.resolve({"param": "pixel"}))
    assert not decay.applies(schema.resolve({"steps": 4}))
    assert (lr.condition(), decay.condition()) == ("optimizer=adam", "param=fft or fft+decorrelated and steps=3")
    assert Int("n", 1).condition() == ""


@pytest.mark.parametrize("condition", [{"optimizer": "Adam"}, {"nope": "adam"}, {"lr": 0.1}, {"steps": "3"}])
def test_only_when_must_name_another_parameter_and_values_it_takes(condition):
    # a typo would hide the parameter for good (or show it always): refused when the effect registers
    with pytest.raises((ValueError, ParameterError), match="lr"):
        Schema((Choice("optimizer", "adam", ("adam", "lbfgs")), Int("steps", 3),
                Float("lr", 0.02).only_when(**condition)), owner="fx")


def test_built_in_parameters_that_apply_only_sometimes_say_so(registry, capsys):
    from gradfx.tui.cli import main

    conditions = {(name, p.name): p.condition() for name in ("style-transfer", "deepdream", "feature-vis")
                  for p in registry.effect(name).schema if p.applies_when}
    assert conditions == {
        ("style-transfer", "lr"): "optimizer=adam", ("feature-vis", "decay"): "param=fft+decorrelated or fft",
        **{(effect, name): "temporal=flow" for effect in ("style-transfer", "deepdream")
           for name in ("temporal_weight", "temporal_steps", "temporal_frames")},
        ("deepdream", "temporal_carry"): "temporal=flow"}
    assert main(["show", "style-transfer"]) == 0  # on lr's line
    assert any(line.startswith("lr ") and line.endswith("; only with optimizer=adam")
               for line in capsys.readouterr().out.splitlines())
    assert main(["show", "style-transfer", "-v"]) == 0  # under lr's help
    assert "    only with optimizer=adam\n" in capsys.readouterr().out
    assert main(["show", "style-transfer", "--json"]) == 0
    shown = {p["name"]: p["only_when"] for p in json.loads(capsys.readouterr().out)["params"]}
    assert shown["lr"] == "optimizer=adam" and shown["steps"] == ""
