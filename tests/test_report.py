"""The HTML report, the plot kinds and decision importance.

The report is rendered in headless Chromium (Debian's ``chromium``, installed by
``scripts/install.sh``): the page must log nothing to the console and its screenshot must
not be blank. A page with a script error checks that the console check can fail.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from archsearch.cli.main import main
from archsearch.space.nb201 import NB201Space
from archsearch.study.importance import decision_importance
from archsearch.study.report import cell_svg


def search(nb201_csv, out, strategy, *flags):
    args = ["search", "--space", "nb201", "--strategy", strategy, "--evaluator", "nb201-table"]
    args += ["--table", str(nb201_csv), "--budget", "30", "--quiet", "--out", str(out), *flags]
    assert main(args) == 0
    return out


@pytest.fixture
def single(nb201_csv, tmp_path):
    flags = ["--objective", "cifar10_valid", "--constraint", "params<=4e5"]
    return search(nb201_csv, tmp_path / "single", "evolution", *flags)


@pytest.fixture
def multi(nb201_csv, tmp_path):
    flags = ["--objective", "cifar10_valid", "--objective", "params:min"]
    return search(nb201_csv, tmp_path / "multi", "nsga2", *flags)


def report(study, tmp_path, capsys):
    page = tmp_path / f"{study.name}.html"
    assert main(["report", str(study), "--to", str(page)]) == 0
    capsys.readouterr()
    return page, page.read_text(encoding="utf-8")


def test_the_report_holds_every_section_and_needs_nothing_outside(single, tmp_path, capsys):
    _, page = report(single, tmp_path, capsys)
    headings = ["Configuration", "Trajectory", "Best architecture", "Top 10 architectures"]
    headings += ["Which decisions matter", "Choice rules", "Failed and refused trials"]
    for heading in headings:
        assert f"<h2>{heading}</h2>" in page
    assert "Pareto front" not in page  # one objective
    assert "<script" not in page and "<link" not in page
    references = re.findall(r"(?:src|href)\s*=\s*[\"']([^\"']*)", page)
    assert all(r.startswith("#") for r in references), "the page must load nothing"
    # the constraint refused some proposals: each is listed with the value that broke it
    assert "infeasible" in page and "breaks params&lt;=400000" in page
    # the best cell is drawn as its DAG: 4 nodes, 6 labelled edges
    best = page[page.index("<h2>Best architecture</h2>") :]
    drawing = best[: best.index("</svg>")]
    assert drawing.count("<circle") == 4 and drawing.count("<path") == 6


def test_a_multi_objective_report_shows_the_front_and_its_hypervolume(multi, tmp_path, capsys):
    _, page = report(multi, tmp_path, capsys)
    assert "<h2>Pareto front</h2>" in page and "hypervolume" in page


def test_strings_from_the_study_file_are_escaped():
    svg = cell_svg([(0, 1, "<script>alert(1)</script>")])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


@pytest.mark.parametrize("kind", ["trajectory", "pareto", "importance"])
def test_every_plot_kind_draws_a_png(multi, tmp_path, capsys, kind):
    png = tmp_path / f"{kind}.png"
    assert main(["plot", str(multi), "--to", str(png), "--kind", kind]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_to_an_unwritable_path_is_one_error_line(single, tmp_path, capsys):
    assert main(["report", str(single), "--to", str(tmp_path)]) == 2
    assert main(["report", str(single), "--to", str(tmp_path / "no" / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("archsearch: error:") for line in err)


def test_importance_finds_the_decision_that_decides_and_scores_noise_near_zero():
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    decisive = space.decisions[2].label
    scores = [float(a[decisive] == "nor_conv_3x3") + 0.1 * rng.normal() for a in archs]
    found = decision_importance(space, archs, scores)
    assert found[0].decision == decisive and found[0].share > 0.8
    assert found[0].best_choice == "nor_conv_3x3"
    assert all(i.share < 0.03 for i in found[1:]), "irrelevant decisions must score ~0"


# ----------------------------------------------------------------------------- browser
def render_in_chromium(page, tmp_path):
    """Chromium's console messages while it renders ``page``, and its screenshot."""
    shot = tmp_path / f"{page.stem}.png"
    run = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return console, shot


chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (scripts/install.sh)"
)


@chromium
def test_the_console_check_sees_a_script_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>notAFunction();</script></body></html>")
    console, _ = render_in_chromium(bad, tmp_path)
    assert any("notAFunction" in line for line in console)


@chromium
def test_the_report_renders_in_chromium_without_console_errors(multi, tmp_path, capsys):
    import matplotlib.image

    page, _ = report(multi, tmp_path, capsys)
    console, shot = render_in_chromium(page, tmp_path)
    assert console == []
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005, "no dark pixels: nothing was drawn"


def test_a_one_shot_studys_per_epoch_diagnostics_are_tabled(single, tmp_path, capsys):
    import json

    history = [
        {"epoch": e, "train_loss": 2.0 / e, "entropy": 1.7 - 0.2 * e, "skip_share": 0.1 * e}
        for e in (1, 2, 3)
    ]
    (single / "oneshot.json").write_text(json.dumps({"method": "darts", "history": history}))
    _, page = report(single, tmp_path, capsys)
    section = page[page.index("<h2>One-shot training</h2>") :]
    assert "<th>entropy</th>" in section and "<th>skip_share</th>" in section
    assert section.count("<tr>") == 4  # the header and three epochs
