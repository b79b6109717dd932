"""The report reads well on a laptop (issue 13, point 6): rendered from the SYNTHETIC report
fixtures with the test config's study files and one SYNTHETIC study whose citation, caveats, id
and link are as long as the longest bundled ones, opened in headless Chromium at 1280×900, no
table or figure is wider than its container or the page, and long citations and caveats are
collapsed behind a click. The report includes a living history of several snapshots (what
changed, inclusion per update) and cumulative estimates, and the tables collapsed behind a click
are measured open.

Chromium is Debian's (package chromium): installed with apt-get when missing, as
tests/cluster/run_slurm.sh installs SLURM; the test skips only where it cannot install it (not
root, or no apt-get). Chromium's own --dump-dom and --screenshot do the work: a copy of the report
gets a short script that measures the layout once the page has loaded and writes the measurements
into the page, which --dump-dom prints. The screenshots are left under pytest's tmp_path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from datetime import datetime, timedelta, timezone

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from crsmeta import history
from crsmeta import tables as contracts
from crsmeta.cumulative import cumulative_table
from crsmeta.model.analyses import CUMULATIVE_PREFIX
from crsmeta.report import ReportInputs, plots, tables
from crsmeta.report.render import report_html
from crsmeta.studies import PartialDate, load_studies, load_study
from fixtures.report.build import write_fixture_project
from test_history import history_outputs

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
# the tables of the living review's sections, which only a report with a history and cumulative
# estimates has (the cumulative table is collapsed behind a click)
LIVING_TABLES = {"what changed": "#history-table", "inclusion per update": "#inclusion-history-table",
                 "exclusions per update": "#inclusion-history-reasons", "cumulative": "#cumulative ~ details table"}
# measures the page once it has loaded, every <details> open, and writes the result into it, for
# --dump-dom to print
MEASURE = """<script>
window.addEventListener('load', () => {
  const page = document.documentElement;
  const where = (el) => el.id || (el.closest('[id]') || {}).id || el.tagName;
  const size = (el) => {
    const box = el.parentElement;
    const width = el.getBoundingClientRect().width, room = box.getBoundingClientRect().width;
    return {width: Math.round(width), room: Math.round(room),
            fits: width <= room + 1 && box.scrollWidth <= box.clientWidth + 1};
  };
  const closed = [...document.querySelectorAll('details:not([open])')];
  closed.forEach((details) => { details.open = true; });
  const wide = [];
  for (const el of document.querySelectorAll('main table, main figure, main svg, main pre')) {
    const measured = size(el);
    if (!measured.fits) wide.push({element: el.tagName.toLowerCase(), in: where(el), ...measured});
  }
  const living = {};
  for (const [name, selector] of Object.entries(LIVING_TABLES)) {
    const el = document.querySelector(selector);
    living[name] = el && size(el);
  }
  closed.forEach((details) => { details.open = false; });
  const clip = [...document.querySelectorAll('details.clip')].map((details) => {
    const summary = details.querySelector('summary');
    const closed = summary.getBoundingClientRect().height;
    details.open = true;
    const open = summary.getBoundingClientRect().height;
    details.open = false;
    return {in: where(details), closed, open, line: parseFloat(getComputedStyle(summary).lineHeight)};
  });
  const out = document.createElement('pre');
  out.id = 'layout-measured';
  out.textContent = JSON.stringify({scrollWidth: page.scrollWidth, clientWidth: page.clientWidth,
                                    height: page.scrollHeight, wide, living, clip});
  document.body.appendChild(out);
});
</script>""".replace("LIVING_TABLES", json.dumps(LIVING_TABLES))
LONG_STUDY = """\
id: SYNTHETIC_layout_very_long_study_id_2024
citation: "SYNTHETIC {citation}"
url: https://example.org/synthetic/a/very/long/path/that/does/not/break/anywhere/download_zip?file=supplementary
population: car_t_crs
design: cohort
grading_scale: not_reported
published: 2024-05-14
added: 2026-11-21
synthetic: true
caveats: [{caveats}]
"""


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; skips where it cannot be."""
    found = shutil.which("chromium")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("needs Debian's chromium: not installed, and installing it needs root and apt-get")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "-y", "-q", "install", "chromium"]
    result = subprocess.run(install, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "-q", "update"], capture_output=True, text=True, env=env)
        result = subprocess.run(install, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and shutil.which("chromium"), f"apt-get could not install chromium:\n{result.stderr}"
    return shutil.which("chromium")


def run_chromium(browser: str, page: Path, profile: Path, *arguments: str, height: int = HEIGHT) -> str:
    """Chromium on ``page`` at WIDTH × ``height``, with a fresh profile; its standard output."""
    command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
               *arguments, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-2000:]}"
    return result.stdout


def long_study(directory: Path) -> Path:
    """A SYNTHETIC study file whose texts are as long as the longest bundled ones (a 450-character
    citation, 1,700 characters of caveats, a 40-character id, a long URL)."""
    citation = "Author A, " * 39 + "A made-up title about cytokine release syndrome. Test J 2024."
    sentence = "a long sentence about the extraction " * 9
    caveats = ", ".join(f'"SYNTHETIC caveat {i}: {sentence}."' for i in range(5))
    path = directory / "long.yaml"
    path.write_text(LONG_STUDY.format(citation=citation, caveats=caveats), encoding="utf-8")
    return path


def living_history(root: Path, paths: dict, long_path: Path) -> list[history.Snapshot]:
    """SYNTHETIC snapshots of the fixture review as a curator's updates would leave them: the
    fixture's studies first, then one study more per update (the long study last), the estimates
    moving across the thresholds, and each update excluding values for a reason as long as the
    bundled data's."""
    effects = contracts.read(contracts.EFFECTS, paths["effects"])
    rows = contracts.read(contracts.AUDIT_ROWS, paths["rows"])
    diagnostics = contracts.read(contracts.DIAGNOSTICS, paths["diagnostics"])
    study_files = {Path(path).stem: [path] for path in paths["studies"]}
    added = [*sorted((ROOT / "tests/config/studies").glob("*.yaml")), long_path]
    reason = ("curator: the value was read off a figure whose axis is on a log scale without tick labels, "
              "so the value cannot be read to better than an order of magnitude (SYNTHETIC reason)")
    recorded: list[history.Snapshot] = []
    for update, study_file in enumerate([None, *added]):
        if study_file is not None:
            study_files[load_study(study_file, ROOT).id] = [study_file]
        excluded = pd.DataFrame([{"study_id": "synA2024", "status": "excluded",
                                  "reason": f"{reason}, update {number}"} for number in range(update)])
        moved = effects.assign(theta_median=effects["theta_median"] - 0.15 * update,
                               p_reduction=np.clip(effects["p_reduction"] + 0.03 * update, 0, 1))
        snapshot = history.build_snapshot(
            effects=moved, rows=pd.concat([rows, excluded], ignore_index=True), diagnostics=diagnostics,
            study_files=study_files, settings={"seed": 1}, now=datetime(2026, 3, 1, tzinfo=timezone.utc)
            + timedelta(days=30 * update))
        recorded = history.record_snapshot(snapshot, root / "snapshots")
    return recorded


def cumulative_steps(paths: dict) -> pd.DataFrame:
    """SYNTHETIC cumulative estimates: the fixture's main estimates at two earlier publication
    dates, shifted, through the table's own code (crsmeta.cumulative)."""
    effects_all = contracts.read(contracts.EFFECTS_ALL, paths["effects_all"])
    main = effects_all[effects_all["analysis"] == "main"]
    published = {"synC2022": PartialDate.parse("2022-11"), "synB2023": PartialDate.parse("2023-06-30"),
                 "synA2024": PartialDate.parse("2024-02")}
    steps = [main.assign(analysis=f"{CUMULATIVE_PREFIX}{date}", theta_median=main["theta_median"] + shift)
             for date, shift in ((published["synC2022"], 0.4), (published["synB2023"], 0.2))]
    return cumulative_table(pd.concat([effects_all, *steps], ignore_index=True), published, list(published))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    paths = write_fixture_project(root, synthetic=True)
    long_path = long_study(root)
    recorded = living_history(root, paths, long_path)
    inputs = ReportInputs.from_paths(**paths, **history_outputs(root, recorded))
    studies = tables.study_records(load_studies([*sorted((ROOT / "tests/config/studies").glob("*.yaml")), long_path],
                                                ROOT))
    page = root / "report.html"
    inputs = dataclasses.replace(inputs, studies=[*inputs.studies, *studies], cumulative=cumulative_steps(paths))
    page.write_text(report_html(inputs), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def measured(report: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    browser = chromium()
    page = report.with_name("measured.html")
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = run_chromium(browser, page, tmp_path_factory.mktemp("profile"), "--dump-dom")
    found = re.search(r'<pre id="layout-measured">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script wrote nothing: did the page load?"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_nothing_is_wider_than_the_page_or_its_container(measured):
    assert measured["clientWidth"] >= WIDTH - 20, measured
    assert measured["scrollWidth"] <= measured["clientWidth"], "the page scrolls sideways"
    assert measured["wide"] == [], "wider than their container: " + json.dumps(measured["wide"], indent=1)


def test_the_living_reviews_tables_fit(measured):
    """What changed, inclusion and exclusions per update, cumulative estimates: each in the report
    and no wider than its container."""
    assert {name: size and size["width"] > 0 for name, size in measured["living"].items()} == dict.fromkeys(
        LIVING_TABLES, True), "missing from the report: " + json.dumps(measured["living"])
    assert all(size["fits"] for size in measured["living"].values()), json.dumps(measured["living"], indent=1)


def test_long_citations_and_caveats_collapse_behind_a_click(measured):
    clipped = [c for c in measured["clip"] if c["in"] == "study-SYNTHETIC_layout_very_long_study_id_2024"]
    assert len(clipped) == 2, "the long study's citation and caveats"
    for details in clipped:
        assert details["closed"] <= 2.5 * details["line"], details
        assert details["open"] > 3 * details["closed"], details


def test_screenshots_at_laptop_width(report, measured, tmp_path):
    """1280×900 and the whole page, for a person to look at (pytest's tmp_path)."""
    browser = chromium()
    shots = {"report-1280x900.png": HEIGHT, "report-1280-full.png": min(measured["height"], 16000)}
    for name, height in shots.items():
        run_chromium(browser, report, tmp_path / f"profile-{height}", f"--screenshot={tmp_path / name}", height=height)
        assert (tmp_path / name).stat().st_size > 10_000, name


def test_rank_plot_labels_do_not_run_into_the_titles_below():
    """Eight markers' τ, two rows of panels: no title, axis label or tick label of one panel over
    another's (ArviZ's own grid put the axis labels on the titles of the row below)."""
    markers = ["IL-6", "ferritin", "CRP", "IFN-gamma", "IL-10", "IL-2R", "TNF", "temperature"]
    draws = np.abs(np.random.default_rng(0).normal(size=(2, 100, len(markers))))
    idata = az.from_dict(posterior={"tau": draws}, dims={"tau": ["marker"]}, coords={"marker": markers})
    figure = plots.rank_plots(idata, ["tau"]).flat[0].figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [(ax, text.get_window_extent(renderer)) for ax in figure.axes
             for text in (ax.title, ax.xaxis.label, *ax.get_xticklabels()) if text.get_text()]
    assert len(figure.axes) == len(markers)
    clashes = [(a.get_title(), b.get_title()) for i, (a, box) in enumerate(texts) for b, other in texts[i + 1:]
               if a is not b and box.overlaps(other)]
    plt.close(figure)
    assert clashes == []
