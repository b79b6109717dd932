"""The report reads well on a laptop (issue 13, point 6): rendered from the SYNTHETIC report
fixtures with the test config's study files and one SYNTHETIC study whose citation, caveats, id
and link are as long as the longest bundled ones, opened in headless Chromium at 1280×900, no
table or figure is wider than its container or the page, and long citations and caveats are
collapsed behind a click.

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

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pytest

from crsmeta.report import ReportInputs, plots, tables
from crsmeta.report.render import report_html
from fixtures.report.build import write_fixture_project

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
# measures the page once it has loaded and writes the result into it, for --dump-dom to print
MEASURE = """<script>
window.addEventListener('load', () => {
  const page = document.documentElement;
  const where = (el) => el.id || (el.closest('[id]') || {}).id || el.tagName;
  const wide = [];
  for (const el of document.querySelectorAll('main table, main figure, main svg, main pre')) {
    const box = el.parentElement;
    const width = el.getBoundingClientRect().width, room = box.getBoundingClientRect().width;
    if (width > room + 1 || box.scrollWidth > box.clientWidth + 1)
      wide.push({element: el.tagName.toLowerCase(), in: where(el), width: Math.round(width), room: Math.round(room)});
  }
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
                                    height: page.scrollHeight, wide, clip});
  document.body.appendChild(out);
});
</script>"""
LONG_STUDY = """\
id: SYNTHETIC_layout_very_long_study_id_2024
citation: "SYNTHETIC {citation}"
url: https://example.org/synthetic/a/very/long/path/that/does/not/break/anywhere/download_zip?file=supplementary
population: car_t_crs
design: retrospective_cohort
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


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    inputs = ReportInputs.from_paths(**write_fixture_project(root, synthetic=True))
    studies = tables.load_studies([*sorted((ROOT / "tests/config/studies").glob("*.yaml")), long_study(root)])
    page = root / "report.html"
    page.write_text(report_html(dataclasses.replace(inputs, studies=[*inputs.studies, *studies])), encoding="utf-8")
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
