"""Image and video files: loading any image Pillow reads (:mod:`.load`, its modes and array layouts in
:mod:`.convert`), the pixel limit against decompression bombs and absurd sizes (:mod:`.pixel_limit`),
resizing and 8-bit conversion of image arrays (:mod:`.arrays`), saving (:mod:`.save`) through atomic writes
(:mod:`.atomic`), labelled contact sheets (:mod:`.sheets`), generated sample images (:mod:`.samples`) and
video files through PyAV (:mod:`.video`). Nothing here imports TensorFlow."""
