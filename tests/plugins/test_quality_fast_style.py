"""fast-style's quality on the trained AdaIN networks and real photographs (issue 26's goals at 256 px), and its
batches on Ray. Marked slow; the networks come from ``GRADFX_TEST_KERAS_HOME`` when set (CI fetches there), else the
environment's cache; skipped, saying why, when they cannot be had (``gradfx weights fetch adain-vgg19-encoder
adain-decoder``)."""

from __future__ import annotations

import pytest
from helpers import trained_networks
from photos import PHOTOS, photo, style_judge

from gradfx.engine import run
from gradfx.engine.images import samples
from gradfx.engine.images.save import save_image
from gradfx.plugins.fast_style import NETWORKS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def trained():
    with trained_networks(NETWORKS) as models:
        yield models


@pytest.mark.parametrize("name", PHOTOS)
def test_at_256_px_it_carries_the_style_and_keeps_the_photograph(name, tmp_path):
    content = photo(name, 256)
    for style in (samples.painting(256), samples.strokes(256)):
        path = save_image(tmp_path / "style.png", style, overwrite=True)
        out = run("fast-style", content, params={"style": str(path)}).image
        assert out.shape == content.shape
        # the goals: at most half the photograph's Gram distance, nearer the photograph than the style
        style_ratio, content_ratio = style_judge(content, style)(out)
        assert style_ratio <= 0.5 and content_ratio < 1, (name, style_ratio, content_ratio)


def test_ray_batch_gives_the_local_batchs_images(tmp_path, make_image):
    ray = pytest.importorskip("ray")
    from gradfx.engine.batch import run_batch

    (tmp_path / "in").mkdir()
    for i in range(2):
        save_image(tmp_path / "in" / f"{i}.png", photo(PHOTOS[i], 96))
    style = str(save_image(tmp_path / "style.png", samples.painting(96)))
    local = run_batch("fast-style", [tmp_path / "in"], tmp_path / "local", params={"style": style})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    try:
        remote = run_batch("fast-style", [tmp_path / "in"], tmp_path / "ray", params={"style": style}, ray=True,
                           workers=1)
    finally:
        ray.shutdown()
    assert local.ok and remote.ok and len(remote.done) == 2
    for i in range(2):
        assert (tmp_path / "ray" / f"{i}.png").read_bytes() == (tmp_path / "local" / f"{i}.png").read_bytes()
