"""The optimisation core every effect shares: a :class:`~.solver.Problem` solved by the one loop in
:mod:`.solver` (stages, steps, progress, checkpoints), with its image parameterisations
(:mod:`.parameterizations`), gradient normalisation and clipping (:mod:`.gradients`), optimisers
(:mod:`.optimizers`, and SciPy's L-BFGS-B in :mod:`.lbfgs`), octave and tile schedules (:mod:`.schedule`) and
the large-image paths (:mod:`.tiling`). Objectives and transforms, which plugins compose, are
:mod:`gradfx.engine.objectives` and :mod:`gradfx.engine.transforms`. The modules import TensorFlow."""
