"""`dreamfusion experiment`: grids, resumability, write-up, and the quick grids' quality.

The quick grids are real runs of the default preset (a few minutes on 2 cores): they
fail CI when a change makes the results worse.
"""
import json
from pathlib import Path

import pytest

from dreamfusion import runs
from dreamfusion.cli import main
from dreamfusion.experiments import ABLATION, ablation_grid, table1_grid, write_section

GEO_SHAPE_FLOOR = 0.875
"""Mean Geo shape R-precision of the quick grid's three runs. In the full ablation grid
(25b5e00, docs/RESULTS.md) all 36 runs with view prompts scored 1.0 and the two
malformed pyramids of the base (IoU 0.31, 0.33) 0 and 0.375: the floor allows three of
the 24 views to miss."""


def test_full_grids_cover_the_paper_experiments():
    table1 = table1_grid(quick=False, seeds=[0, 1])
    # every single-colour and front-coloured caption, for each method of Table 1
    assert len(table1) == 216 * 2 * 3
    assert {r.setting for r in table1} == {"dreamfusion", "dreamfields", "clipmesh"}
    ablation = ablation_grid(quick=False, seeds=[0, 1])
    assert len(ablation) == 6 * 4 * 2 and {r.setting for r in ablation} == set(ABLATION)
    assert all("front" in r.caption for r in ablation)
    folders = {r.folder(Path("x")) for r in table1 + ablation}
    assert len(folders) == len(table1) + len(ablation)  # no two runs share a folder


def test_table1_subset_spreads_over_the_world():
    from dreamfusion.toyworld.captions import parse_caption
    grid = table1_grid(quick=False, seeds=[0, 1], methods=["dreamfusion"], subset=12)
    captions = {r.caption for r in grid}
    assert len(grid) == 12 * 2 and len(captions) == 12
    objects = [parse_caption(c).obj for c in captions]
    assert {o.shape for o in objects} == {"sphere", "cube", "cylinder", "cone", "torus",
                                          "pyramid"}
    assert len({o.color for o in objects}) == 6
    assert sum(o.front_color is not None for o in objects) == 6
    # a larger subset keeps the smaller one's captions (finished runs are reused)
    assert captions <= {r.caption for r in table1_grid(False, [0], ["dreamfusion"], 24)}


def test_write_section_replaces_its_own_block_only(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nhand-written text\n")
    write_section(path, "table1", "first")
    write_section(path, "table1", "second")
    write_section(path, "ablation", "other")
    text = path.read_text()
    assert text.startswith("# Results\n\nhand-written text\n")
    assert "first" not in text and text.count("second") == 1 and "other" in text


@pytest.fixture(scope="module")
def table1_quick(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    results = root / "RESULTS.md"
    assert main(["experiment", "table1", "--quick", "--root", str(root / "t1"),
                 "--results", str(results)]) == 0
    return root, results


def test_table1_quick_scores_and_pattern(table1_quick):
    root, results = table1_quick
    data = json.loads((root / "t1" / "table1.json").read_text())
    assert not any(r["failed"] for r in data["rows"])
    baselines = [r for r in data["rows"] if r["setting"] != "dreamfusion"]
    assert {r["method"] for r in baselines} == {"dreamfields", "clipmesh"}
    for row in baselines:
        assert row["color_right"] and "color_r_precision_b" in row
        # the guide's similarity to the caption grew: the baseline learned something
        clip = [step["clip"] for step in runs.load_checkpoint(
            Path(row["run"]), warn=print)["loss_log"]]
        assert sum(clip[-50:]) / 50 < sum(clip[:50]) / 50 - 0.1
    rows = [r for r in data["rows"] if r["setting"] == "dreamfusion"]
    assert len(rows) == 3
    color = sum(r["color_r_precision"] for r in rows) / 3
    assert color >= 0.5  # the right caption of 216 is first for most views
    # Geo shape (six shapes ranked on textureless renders) measures the geometry: the
    # true clay renders score 1.0 under both models, trained runs GEO_SHAPE_FLOOR.
    gt = data["gt_photos"]
    assert gt["geo_shape_r_precision"] >= 0.9 and gt["geo_shape_r_precision_b"] >= 0.9
    assert sum(r["geo_shape_r_precision"] for r in rows) / 3 >= GEO_SHAPE_FLOOR
    assert all(r["shape_right"] and r["color_right"] for r in rows)
    assert sum(r["iou"] for r in rows) / 3 >= 0.75
    assert data["gt_photos"]["color_r_precision"] >= color - 0.2
    assert "<!-- experiment:table1-quick -->" in results.read_text()
    assert (results.parent / "table1-quick.png").exists()  # one run per method


def test_table1_quick_rerun_keeps_finished_runs(table1_quick, capsys):
    root, results = table1_quick
    stamp = {p: p.stat().st_mtime_ns for p in (root / "t1").rglob("checkpoint.pt")}
    assert main(["experiment", "table1", "--quick", "--root", str(root / "t1"),
                 "--results", str(results)]) == 0
    assert "5 already finished" in capsys.readouterr().err
    assert stamp == {p: p.stat().st_mtime_ns for p in (root / "t1").rglob("checkpoint.pt")}
    assert results.read_text().count("<!-- experiment:table1-quick -->") == 1


@pytest.mark.slow  # 4 full runs, ~4 min: the default test run must stay under 15 min
def test_ablation_quick_shows_the_janus_fix(tmp_path):
    assert main(["experiment", "ablation", "--quick", "--root", str(tmp_path)]) == 0
    rows = {r["setting"]: r for r in json.loads((tmp_path / "ablation.json").read_text())["rows"]}
    assert set(rows) == set(ABLATION) and not any(r["failed"] for r in rows.values())
    # no view prompts: the front colour spreads to the back (all of it, or mixed with the
    # body colour: at a3a3c0c the back came out orange, (0.85, 0.60, 0.04), between the
    # yellow front and the red body); with everything, the back is the body colour
    assert not rows["(i) base"]["back_right"]
    assert rows["(iv) + textureless shading"]["back_right"]
    assert not rows["(iv) + textureless shading"]["janus"]
    assert (tmp_path / "ablation-quick.png").exists()
