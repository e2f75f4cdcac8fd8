"""Device selection: CPU always works; asking for a GPU that is not there is a one-line DeviceError."""

from __future__ import annotations

import logging

import pytest
import tensorflow as tf

from gradfx.engine.errors import DeviceError
from gradfx.engine.models.device import device_name, quiet_tensorflow, select_device

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
no_gpu_only = pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")


@pytest.mark.parametrize("spec", ["cpu", "CPU", "cpu:0", "/CPU:0", " cpu "])
def test_cpu_forms(spec: str) -> None:
    assert select_device(spec) == "/CPU:0"


def test_cpu_device_string_places_ops() -> None:
    with tf.device(select_device("cpu")):
        x = tf.ones((2, 2)) * 3
    assert "CPU" in x.device


@no_gpu_only
@pytest.mark.parametrize("spec", [None, "auto", ""])
def test_auto_falls_back_to_cpu(spec: str | None) -> None:
    assert select_device(spec) == "/CPU:0"


@no_gpu_only
@pytest.mark.parametrize("spec", ["gpu", "gpu:0", "GPU:1"])
def test_missing_gpu_is_a_device_error(spec: str) -> None:
    with pytest.raises(DeviceError) as info:
        select_device(spec)
    message = str(info.value)
    assert "no GPU visible to TensorFlow" in message and "--device cpu" in message
    assert "\n" not in message


@pytest.mark.parametrize("spec", ["tpu:x", "gpu:x", "gpu:-1", "cuda", "cpu:1", "gpu0", 3])
def test_bad_syntax_lists_the_forms(spec: object) -> None:
    with pytest.raises(DeviceError) as info:
        select_device(spec)  # type: ignore[arg-type]
    assert "cpu" in str(info.value)


def test_device_name_cpu() -> None:
    assert device_name("cpu") == "CPU"


@no_gpu_only
def test_device_name_of_missing_gpu_raises() -> None:
    with pytest.raises(DeviceError):
        device_name("gpu")


def test_quiet_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    tf_logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(tf_logger, "level", logging.NOTSET)
    quiet_tensorflow()
    import os

    import absl.logging

    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert tf_logger.level == logging.ERROR
    assert absl.logging.get_verbosity() == absl.logging.ERROR


@pytest.mark.parametrize("code", [
    "import gradfx.engine.objectives",  # what a plugin author's module imports first
    "import gradfx.engine.optimise.solver",
    "from gradfx.engine.modelspecs import VGG16; VGG16.layer_names()",  # the plan's layer check, TF's first use
])
def test_the_engine_s_first_tensorflow_import_prints_nothing(code: str) -> None:
    """Importing gradfx.engine.objectives printed TensorFlow's start-up log (oneDNN, CUDA stubs, CPU features,
    twice), and so did `gradfx run` and `gradfx batch` when the plan's layer check built the first network."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRADFX_DEBUG")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_bfloat16_is_native_only_where_the_cpu_says_so(tmp_path, monkeypatch):
    # emulated bfloat16 ran feature-vis on VGG16 at 4.2 s a step against float32's 0.8 s on a CPU without it
    from gradfx.engine.models import device
    from gradfx.engine.registry import Registry

    for flags, native in (("fpu avx512f avx512_vnni", False), ("fpu avx512f avx512_bf16", True),
                          ("fpu amx_bf16 amx_tile", True), (None, False)):
        cpuinfo = tmp_path / "cpuinfo"
        if flags is None:
            cpuinfo.unlink(missing_ok=True)  # not Linux: unknown, so float32
        else:
            cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(device, "CPUINFO", str(cpuinfo))
        device.native_bfloat16.cache_clear()
        assert device.native_bfloat16() is native, flags
    device.native_bfloat16.cache_clear()
    precision = Registry(external=False).effect("feature-vis").schema["precision"]
    assert precision.default_for("vgg16") == ("bfloat16" if device.native_bfloat16() else "float32")
    assert precision.default_for("inception_v3") == "float32"
