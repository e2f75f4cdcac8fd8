"""Effects over the frames of a video: the frames before the current one (:mod:`.frames`), optical flow and
its consistency mask (:mod:`.flow`, OpenCV), and ``temporal=flow``'s start, loss and parameters
(:mod:`.consistency`). Importing this package imports neither TensorFlow nor OpenCV."""
