"""The validation report opens in a real headless browser (Chromium) with its table and figures.

Needs Debian's chromium package (``apt-get install -y chromium``); skipped with that hint where absent.
The report is built from synthetic spike trains through the same code path as ``cortexsim validate``
(population_statistics -> compare_groups -> write_report), so no simulator is needed.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from cortexsim.analysis.compare import compare_groups, population_statistics
from cortexsim.analysis.report import write_report
from cortexsim.analysis.spike_statistics import to_spiketrains

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

# Runs after the page has loaded: records in the DOM whether every embedded image decoded.
IMAGE_CHECK = ("<script>window.addEventListener('load', function () {"
               "var imgs = Array.prototype.slice.call(document.images);"
               "document.body.setAttribute('data-images', imgs.length);"
               "document.body.setAttribute('data-decoded', imgs.filter(function (i) {"
               "return i.complete && i.naturalWidth > 0; }).length); });</script>")


def synthetic_report(tmp_path):
    rng = np.random.default_rng(2)
    summaries, per_neuron, cch, rasters = {}, {}, {}, {}
    for backend, rate in (("nest", 10.0), ("brian2", 10.0)):
        details = []
        for _ in range(3):
            trains = to_spiketrains([np.sort(rng.uniform(0, 1000, rng.poisson(rate))) for _ in range(30)], 1000.0)
            details.append({"excitatory": (trains, population_statistics(trains, 0.0, 1000.0))})
        summaries[backend] = [{p: s.summary for p, (_, s) in d.items()} for d in details]
        per_neuron[backend] = [{p: s.per_neuron for p, (_, s) in d.items()} for d in details]
        cch[backend] = [{p: {"lags_ms": s.cch_lags_ms, "mean": s.cch_mean} for p, (_, s) in d.items()}
                        for d in details]
        rasters[backend] = {"excitatory": details[0]["excitatory"][0]}
    comparisons = compare_groups(summaries)
    report = {"model": "synthetic", "verdict": "all statistics agree", "n_differ": 0,
              "n_compared": len(comparisons), "duration_ms": 1000.0, "transient_ms": 0.0,
              "config": {"seed": 1, "repeats": 3, "alpha": 0.05, "correction": "holm", "alterations": []},
              "backends": {b: {"status": "ok", "message": "", "n_runs": 3, "wall_time_s": 1.0} for b in summaries}
              | {"brainscales": {"status": "missing", "message": "not installed", "n_runs": 0, "wall_time_s": 0.0}},
              "summaries": summaries, "comparisons": [vars(c) for c in comparisons],
              "per_neuron": per_neuron, "cch": cch}
    files = write_report(tmp_path / "report", report, rasters, (0.0, 1000.0))
    return files, len(comparisons)


def test_report_files_are_self_contained(tmp_path):
    files, n_comparisons = synthetic_report(tmp_path)
    html = files["html"].read_text()
    assert html.count("data:image/png;base64,") == 3  # distributions, cross-correlograms, rasters
    assert not re.search(r"""(src|href)=['"](?!data:)""", html)  # nothing loaded from elsewhere
    assert html.count("<tr class=") == n_comparisons
    assert files["json"].exists()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found: install it with "
                    "`apt-get update && apt-get install -y chromium` (Debian) to run the browser test")
def test_report_renders_in_headless_chromium(tmp_path):
    files, n_comparisons = synthetic_report(tmp_path)
    page = files["html"].with_name("checked.html")
    page.write_text(files["html"].read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    profile = tmp_path / "chromium-profile"
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                             "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<table id=\"summary\">" in dom
    assert len(re.findall(r"<tr class=\"(agree|differ|untested)\"", dom)) == n_comparisons
    assert 'data-images="3"' in dom and 'data-decoded="3"' in dom, dom[:500]
    screenshot = tmp_path / "shot.png"
    shot = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
                           "--window-size=1200,900", files["html"].as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
