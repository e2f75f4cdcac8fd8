"""Cancelling a chain: the step running finishes, no later step starts."""

from __future__ import annotations

from helpers import TinyPlugin


def test_cancelling_as_a_chain_step_ends_stops_the_chain(registry, make_image):
    # Escape near the end of step 1 said "cancelling after the current step" and step 2 ran on
    from gradfx.engine import run_chain
    from gradfx.engine.progress import CancelToken

    registry.add_plugin(TinyPlugin(), "tiny")
    token, seen = CancelToken(), []

    def progress(event):
        seen.append(event.stage)
        if event.step == event.steps:  # step 1's last optimisation step: the optimisation itself is over
            token.cancel()

    result = run_chain([("tiny-dream", {"steps": 2}), ("tiny-dream", {"steps": 2})], make_image(40, 40),
                       weights="random", progress=progress, cancel=token)
    assert result.report["steps_run"] == 1 and result.partial and result.report["status"] == "cancelled"
    assert not any(stage.startswith("step 2/2") for stage in seen)
