"""Models and weights: which weights a backbone gets (:mod:`.weights`, the HED-fine-tuned VGG16 in
:mod:`.trained_vgg16`), built, weighted and frozen networks cut into feature extractors (:mod:`.extractor`),
and the device they run on (:mod:`.device`). The backbones themselves are described by
:mod:`gradfx.engine.modelspecs`, part of the plugin contract. Importing this package imports no TensorFlow."""
