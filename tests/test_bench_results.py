"""bench/run.py's report: RESULTS.md regenerated from the sections' record, one table per backbone, merging reruns
and keeping the sections other bench scripts write. No benchmark runs here (and nothing is timed)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_run():
    sys.path.insert(0, str(BENCH))  # run.py imports its neighbour baselines.py lazily
    environ = dict(os.environ)  # run.py sets GRADFX_OFFLINE for its own process: not for the other tests
    try:
        spec = importlib.util.spec_from_file_location("gradfx_bench_run", BENCH / "run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gradfx_bench_run", None)
        sys.path.remove(str(BENCH))
        os.environ.clear()
        os.environ.update(environ)


def _row(goal: str, met: bool | None) -> dict:
    return {"goal": goal, "gradfx": "1 s", "baseline": "2 s", "ratio": 0.5, "target": "<= 1x", "met": met, "note": ""}


def _record(mode: str = "full") -> dict:
    run = {"command": "python bench/run.py", "started": "2026-12-05 17:00", "minutes": 1.0, "load_start": "1.0",
           "load_end": "2.0"}
    return {"mode": mode, "machine": {"cores": "2"}, "settings": {"x": 1},
            "runs": {"2026-12-05 17:00": run, "2026-12-05 16:00": {**run, "started": "2026-12-05 16:00"}},
            "sections": {"random/style": {"run": "2026-12-05 17:00", "rows": [_row("random style goal", True)],
                                          "notes": ["how random style was measured"]},
                         "trained/featurevis": {"run": "2026-12-05 17:00", "rows": [_row("trained fv goal", False)],
                                                "notes": ["how trained fv was measured"]}}}


def test_one_table_per_backbone_and_the_other_scripts_sections_kept(bench_run, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    batch = "## Batch (`python bench/batch.py`)\n\nbatch figures, as bench/batch.py wrote them"
    out.write_text("# old\n\n## Trained backbone: development measurements\n\nhand-typed\n\n" + batch + "\n")
    bench_run.write_results(_record(), out)
    text = out.read_text()

    random_at, trained_at = text.index(f"## {bench_run.BACKBONES['random'].title}"), \
        text.index(f"## {bench_run.BACKBONES['trained'].title}")
    assert random_at < text.index("random style goal") < trained_at < text.index("trained fv goal")
    assert "| trained fv goal | 1 s | 2 s | 0.500x | <= 1x | **no** |" in text
    assert "Not met: trained fv goal" in text
    assert "**featurevis** (run 2026-12-05 17:00)" in text and "- how trained fv was measured" in text
    assert text.rstrip().endswith(batch)  # bench/batch.py's section, verbatim
    assert "hand-typed" not in text  # what run.py measures is regenerated, never kept by hand
    # the run no section refers to any more is dropped from the machine table
    assert "2026-12-05 16:00" not in text and "| 2026-12-05 17:00 | `python bench/run.py` |" in text


def test_a_rerun_replaces_its_sections_and_keeps_the_others(bench_run, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    bench_run.write_results(_record(), out)
    record = bench_run.load_record(out.with_suffix(".json"), "full")
    assert set(record["sections"]) == {"random/style", "trained/featurevis"}
    record["sections"]["trained/featurevis"] = {"run": "2026-12-05 18:30", "rows": [_row("trained fv goal", True)],
                                                "notes": []}
    record["runs"]["2026-12-05 18:30"] = {**record["runs"]["2026-12-05 17:00"], "started": "2026-12-05 18:30"}
    bench_run.write_results(record, out)
    text = out.read_text()
    assert "random style goal" in text and "Not met" not in text
    assert "2026-12-05 17:00" in text and "2026-12-05 18:30" in text  # each section names its own run
    assert json.loads(out.with_suffix(".json").read_text())["sections"]["trained/featurevis"]["rows"][0]["met"]
    # a quick run never merges with the full run's figures
    assert bench_run.load_record(out.with_suffix(".json"), "quick")["sections"] == {}


def test_the_imagenet_table_comes_third(bench_run, tmp_path: Path) -> None:
    record = _record()
    record["sections"]["imagenet/featurevis"] = {"run": "2026-12-05 17:00", "rows": [_row("imagenet fv goal", True)],
                                                 "notes": ["how imagenet fv was measured"]}
    out = tmp_path / "RESULTS.md"
    bench_run.write_results(record, out)
    text = out.read_text()
    titles = [text.index(f"## {bench_run.BACKBONES[key].title}") for key in ("random", "trained", "imagenet")]
    assert titles == sorted(titles) and titles[2] < text.index("imagenet fv goal")
    assert text.index("### " + bench_run.BACKBONES["imagenet"].title) < text.index("how imagenet fv was measured")


def test_the_imagenet_table_measures_the_feature_vis_default_layer_on_inception(bench_run) -> None:
    from gradfx.engine.registry import get_registry

    bb = bench_run.BACKBONES["imagenet"]
    model = bb.model_for("featurevis")
    assert model == bb.model_for("deepdream") == "inception_v3" and bb.model_for("style") == "vgg19"
    default = get_registry().effect("feature-vis").schema["objective"].default_for(model)
    layer = default.split(":")[0]  # mixed4_pre_relu: the channel before the ReLU of mixed4
    assert bb.fv_objective.format(last=15) == f"{layer}:0-15"
    assert layer == f"{bb.fv_layer}_pre_relu"  # ranked on the layer itself, after its ReLU


def test_imagenet_without_its_networks_says_how_to_get_them(bench_run, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(SystemExit) as exc:
        bench_run.main(["--backbone", "imagenet", "--out", str(tmp_path / "RESULTS.md")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "vgg19-imagenet" in err and "inception_v3-imagenet" in err and "gradfx weights fetch" in err
    assert not (tmp_path / "RESULTS.md").exists()  # nothing measured, nothing written


def test_a_run_on_another_machine_says_where_it_differs(bench_run, tmp_path: Path) -> None:
    record = _record()
    record["machine"] = {"cores": "2", "AVX512-BF16": "no"}
    record["runs"]["2026-12-05 17:00"]["machine"] = {"cores": "2", "AVX512-BF16": "yes"}
    out = tmp_path / "RESULTS.md"
    bench_run.write_results(record, out)
    line = next(ln for ln in out.read_text().splitlines() if ln.startswith("| 2026-12-05 17:00 |"))
    assert line.endswith("| AVX512-BF16 yes |")  # only what differs from the machine table
