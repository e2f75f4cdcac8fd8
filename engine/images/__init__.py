"""Image and video files: loading any image Pillow reads and saving atomically (:mod:`.imageio`,
:mod:`.atomic`), labelled contact sheets (:mod:`.sheets`), generated sample images (:mod:`.samples`) and video
files through PyAV (:mod:`.video`). Nothing here imports TensorFlow."""
