"""The converters of the fetched networks on fake checkpoints (no torch, no real weights): every tensor lands in
its layer, misfits are refused before any weight is set, and the pinned fingerprints refuse untrained
networks."""

from __future__ import annotations

import io
from pathlib import Path

import fake_torch as fake
import keras
import numpy as np
import pytest

from gradfx.engine.models.index import adain, efficientnet, inception
from gradfx.engine.models.index.convert import check
from gradfx.engine.models.index.errors import FingerprintError
from gradfx.engine.models.index.networks import NETWORKS
from gradfx.engine.models.index.torchzip import read_tensors

#: TorchScript conv -> Keras kernel shape, read off the real default_1.pt (OIHW there)
_KNOWN_INCEPTION_KERNELS = {
    "conv": (3, 3, 3, 32),
    "mixed.tower.conv_1": (5, 5, 48, 64),
    "mixed_4.tower.conv_1": (1, 7, 128, 128),
    "mixed_4.tower_1.conv_1": (7, 1, 128, 128),
    "mixed_8.tower.conv_1": (3, 3, 192, 320),
    "mixed_9.tower_mixed_conv": (1, 3, 384, 384),
    "mixed_10.tower_1_mixed_conv_1": (3, 1, 384, 384),
    "mixed_10.tower_2_conv": (1, 1, 2048, 192),
}


@pytest.fixture(scope="module")
def fid_model() -> keras.Model:
    return inception.build_inception_v3_fid()


def _fake_fid_tensors(model: keras.Model) -> dict[str, np.ndarray]:
    """FID-layout tensors whose values say which conv they belong to: kernel i+1, beta i+1, mean -(i+1) ..."""
    tensors = {}
    for index, (name, (conv, _norm)) in enumerate(zip(inception.torch_conv_names(),
                                                      inception.conv_bn_layers(model), strict=True)):
        out_channels = conv.kernel.shape[-1]
        oihw = tuple(np.array(conv.kernel.shape)[[3, 2, 0, 1]])
        tensors[f"{inception.FID_PREFIX}{name}.weight"] = np.full(oihw, index + 1, np.float32)
        tensors[f"{inception.FID_PREFIX}{name}.beta"] = np.full(out_channels, index + 1, np.float32)
        tensors[f"{inception.FID_PREFIX}{name}.mean"] = np.full(out_channels, -(index + 1), np.float32)
        tensors[f"{inception.FID_PREFIX}{name}.var"] = np.full(out_channels, 2 * (index + 1), np.float32)
    return tensors


def test_inception_structure(fid_model: keras.Model) -> None:
    pool = fid_model.get_layer(inception.MIXED10_POOL_NAME)
    assert isinstance(pool, keras.layers.MaxPooling2D)
    assert (pool.pool_size, pool.strides, pool.padding) == ((3, 3), (1, 1), "same")
    averages = [layer for layer in fid_model.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    assert len(averages) == 8  # mixed0-mixed9's pool branches; Keras' plain model has 9
    names = inception.torch_conv_names()
    assert len(names) == len(set(names)) == 94
    pairs = inception.conv_bn_layers(fid_model)
    kernels = {name: tuple(conv.kernel.shape) for name, (conv, _) in zip(names, pairs, strict=True)}
    assert {name: kernels[name] for name in _KNOWN_INCEPTION_KERNELS} == _KNOWN_INCEPTION_KERNELS


def test_inception_weights_land_in_order(fid_model: keras.Model) -> None:
    archive = fake.torchscript_zip(_fake_fid_tensors(fid_model), archive_name="out_jit_module")
    units = inception.inception_v3_weights(read_tensors(io.BytesIO(archive)))
    inception.load_into(fid_model, units)
    for index, (conv, norm) in enumerate(inception.conv_bn_layers(fid_model)):
        assert np.all(np.asarray(conv.kernel) == index + 1), conv.name
        beta, mean, var = (np.asarray(w) for w in norm.weights)
        assert (beta[0], mean[0], var[0]) == (index + 1, -(index + 1), 2 * (index + 1)), norm.name


def test_inception_rejects_incomplete_or_misshapen_weights(fid_model: keras.Model) -> None:
    tensors = _fake_fid_tensors(fid_model)
    del tensors["net.layers.mixed_3.tower.conv_2.var"]
    with pytest.raises(KeyError, match="mixed_3.tower.conv_2.var"):
        inception.inception_v3_weights(tensors)
    tensors = {name: -array for name, array in _fake_fid_tensors(fid_model).items()}
    tensors["net.layers.mixed_4.tower.conv_1.weight"] = np.zeros((128, 128, 7, 1), np.float32)  # 7x1, not 1x7
    before = np.asarray(inception.conv_bn_layers(fid_model)[0][0].kernel).copy()
    with pytest.raises(ValueError, match="mixed_4.tower.conv_1"):
        inception.load_into(fid_model, inception.inception_v3_weights(tensors))
    np.testing.assert_array_equal(inception.conv_bn_layers(fid_model)[0][0].kernel, before)  # nothing was set


def test_inception_fingerprint_refuses_other_weights(fid_model: keras.Model) -> None:
    with pytest.raises(FingerprintError, match="mixed2"):
        check(fid_model, inception.CONVERTER, NETWORKS["inception_v3-imagenet"].fingerprint, "inception")


def _fake_lite0_state_dict() -> dict[str, np.ndarray]:
    """Random tensors with the EfficientNet-PyTorch keys and shapes of efficientnet-lite0-57934424.pth."""
    rng = np.random.default_rng(0)
    state: dict[str, np.ndarray] = {}

    def conv(prefix: str, out: int, inp: int, kernel: int) -> None:
        state[f"{prefix}.weight"] = rng.standard_normal((out, inp, kernel, kernel)).astype(np.float32)

    def norm(prefix: str, channels: int) -> None:
        for part in ("weight", "bias", "running_mean", "running_var"):
            state[f"{prefix}.{part}"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
        state[f"{prefix}.num_batches_tracked"] = np.array(0, np.int64)

    conv("_conv_stem", 32, 3, 3)
    norm("_bn0", 32)
    for block in efficientnet.blocks():
        prefix, hidden = f"_blocks.{block.torch_index}", block.filters_in * block.expand
        if block.expand != 1:
            conv(f"{prefix}._expand_conv", hidden, block.filters_in, 1)
            norm(f"{prefix}._bn0", hidden)
        conv(f"{prefix}._depthwise_conv", hidden, 1, block.kernel)
        norm(f"{prefix}._bn1", hidden)
        conv(f"{prefix}._project_conv", block.filters_out, hidden, 1)
        norm(f"{prefix}._bn2", block.filters_out)
    conv("_conv_head", 1280, 320, 1)
    norm("_bn1", 1280)
    state["_fc.weight"] = rng.standard_normal((1000, 1280)).astype(np.float32)
    state["_fc.bias"] = rng.standard_normal(1000).astype(np.float32)
    return state


def test_efficientnet_structure() -> None:
    blocks = efficientnet.blocks()
    assert len(blocks) == 16
    assert [block.name for block in blocks][:4] == ["block1a", "block2a", "block2b", "block3a"]
    assert [block.torch_index for block in blocks] == list(range(16))
    assert sum(block.residual for block in blocks) == 9
    # the real file holds 4,694,073 numbers: these plus 49 num_batches_tracked counters
    assert efficientnet.build_efficientnet_lite0().count_params() == 4_694_024


def test_efficientnet_weights_from_fake_legacy_file(tmp_path: Path) -> None:
    model = efficientnet.build_efficientnet_lite0(classifier_activation=None)
    state = _fake_lite0_state_dict()
    assert len(state) == 296  # as in efficientnet-lite0-57934424.pth
    tree, storages = fake.contiguous(state)
    path = tmp_path / "lite0.pth"
    path.write_bytes(fake.legacy_pth(tree, storages))
    efficientnet.load_into(model, efficientnet.efficientnet_lite0_weights(read_tensors(path)))
    np.testing.assert_array_equal(model.get_layer("block2b_dwconv").kernel,
                                  state["_blocks.2._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(model.get_layer("block7a_project_conv").kernel,
                                  state["_blocks.15._project_conv.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("logits").kernel, state["_fc.weight"].T)
    gamma, beta, mean, var = (np.asarray(w) for w in model.get_layer("top_bn").weights)
    np.testing.assert_array_equal(np.stack([gamma, beta, mean, var]),
                                  np.stack([state[f"_bn1.{p}"] for p in ("weight", "bias", "running_mean",
                                                                         "running_var")]))
    with pytest.raises(FingerprintError):
        check(model, efficientnet.CONVERTER, {**NETWORKS["efficientnet_lite0-imagenet"].fingerprint, "logits"
                                             : (0.0, 1.0)}, "lite0")


def test_efficientnet_load_into_refuses_missing_layers() -> None:
    model = efficientnet.build_efficientnet_lite0()
    weights = efficientnet.efficientnet_lite0_weights(_fake_lite0_state_dict())
    del weights["block4b_bn"]
    with pytest.raises(ValueError, match="block4b_bn"):
        efficientnet.load_into(model, weights)


def _fake_adain_state(spec: tuple, extra: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Reference-layout conv tensors whose values say which conv they are: weight index + 1, bias -index."""
    state = {}
    channels = 3 if spec is adain.ENCODER_SPEC else 512
    for conv in (s for s in spec if isinstance(s, adain.Conv)):
        state[f"{conv.torch_index}.weight"] = np.full((conv.filters, channels, conv.kernel, conv.kernel),
                                                      conv.torch_index + 1, np.float32)
        state[f"{conv.torch_index}.bias"] = np.full(conv.filters, -conv.torch_index, np.float32)
        channels = conv.filters
    for index in extra:  # VGG19's layers after relu4_1, which the encoder does not use
        state[f"{index}.weight"] = np.zeros((512, 512, 3, 3), np.float32)
        state[f"{index}.bias"] = np.zeros(512, np.float32)
    return state


@pytest.mark.parametrize("which", ["encoder", "decoder"])
def test_adain_weights_land_in_their_layers(which: str, tmp_path: Path) -> None:
    converter, spec = (adain.ENCODER, adain.ENCODER_SPEC) if which == "encoder" else (adain.DECODER, adain.DECODER_SPEC)
    state = _fake_adain_state(spec, extra=(32, 35) if which == "encoder" else ())
    tree, storages = fake.contiguous(state)
    path = tmp_path / "net.pth"
    path.write_bytes(fake.legacy_pth(tree, storages))  # the reference files are legacy (pre-1.6) checkpoints
    model = converter.build()
    converter.load(model, read_tensors(path))
    for conv in (s for s in spec if isinstance(s, adain.Conv)):
        kernel, bias = (np.asarray(w) for w in model.get_layer(conv.name).weights)
        assert kernel.shape[:2] == (conv.kernel, conv.kernel) and kernel.shape[-1] == conv.filters
        assert np.all(kernel == conv.torch_index + 1) and np.all(bias == -conv.torch_index), conv.name


def test_adain_refuses_alien_or_missing_entries() -> None:
    decoder = adain.build_decoder()
    state = _fake_adain_state(adain.DECODER_SPEC)
    with pytest.raises(ValueError, match="unexpected"):
        adain.DECODER.load(decoder, {**state, "30.weight": np.zeros(1, np.float32)})
    del state["14.bias"]
    with pytest.raises(KeyError, match="14.bias"):
        adain.DECODER.load(decoder, state)
    encoder = adain.build_encoder()
    with pytest.raises(ValueError, match="unexpected"):  # an index the encoder uses, but not a conv's
        adain.ENCODER.load(encoder, {**_fake_adain_state(adain.ENCODER_SPEC), "3.running_mean": np.zeros(3)})


def test_adain_networks_shapes_and_reflection_padding() -> None:
    image = np.random.default_rng(0).random((1, 13, 21, 3)).astype(np.float32)
    padded = adain.ReflectionPad2D(2)(image)
    np.testing.assert_array_equal(padded, np.pad(image, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect"))
    features = adain.build_encoder()(image)
    assert [tuple(f.shape[1:3]) for f in features] == [(13, 21), (7, 11), (4, 6), (2, 3)]  # torch's ceil mode
    assert tuple(adain.build_decoder()(features[-1]).shape) == (1, 16, 24, 3)
