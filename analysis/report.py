"""Self-contained HTML report of a cross-simulator comparison (figures embedded as base64 PNG).

:func:`write_report` writes ``report.json`` (everything, machine-readable) and ``report.html``
(summary table, backend status, per-statistic distributions per backend, cross-correlograms,
rasters side by side) into a folder. The HTML needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from cortexsim.analysis.compare import STATISTICS
from cortexsim.results import write_json_atomic

__all__ = ["write_report", "render_html", "figure_to_base64"]

RASTER_NEURONS = 50
"""Neurons per population shown in the rasters."""
RASTER_WINDOW_MS = 500.0
"""Time shown in the rasters (ms, from the start of the analysis window)."""
_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_base64(fig) -> str:
    """A matplotlib figure as a base64-encoded PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _populations(report: dict) -> list[str]:
    names: list[str] = []
    for runs in report.get("summaries", {}).values():
        for run in runs:
            names.extend(p for p in run if p not in names)
    return names


def _distribution_figure(report: dict, population: str) -> str | None:
    """Per statistic: per-neuron distributions of each backend (pooled runs) and the per-run values."""
    backends = list(report.get("summaries", {}))
    stats = [s for s in STATISTICS if any(math.isfinite(run.get(population, {}).get(s, math.nan) or math.nan)
                                          for b in backends for run in report["summaries"][b])]
    if not stats:
        return None
    cols = min(4, len(stats))
    rows = math.ceil(len(stats) / cols)
    fig = _figure(3.2 * cols, 2.6 * rows)
    for k, stat in enumerate(stats):
        ax = fig.add_subplot(rows, cols, k + 1)
        label, unit = STATISTICS[stat]
        per_neuron = {b: np.concatenate([np.asarray(run.get(population, {}).get(stat, []), dtype=float)
                                         for run in report.get("per_neuron", {}).get(b, [])] or [np.zeros(0)])
                      for b in backends}
        pooled = np.concatenate(list(per_neuron.values()))
        pooled = pooled[np.isfinite(pooled)]
        if pooled.size > 1 and pooled.min() < pooled.max():
            bins = np.linspace(pooled.min(), pooled.max(), 30)
            for j, b in enumerate(backends):
                values = per_neuron[b][np.isfinite(per_neuron[b])]
                if values.size:
                    ax.hist(values, bins=bins, density=True, histtype="step", color=_COLOURS[j % 6], label=b)
            ax.set_ylabel("density (neurons/pairs)")
            for j, b in enumerate(backends):  # per-run summaries as ticks on top
                for run in report["summaries"][b]:
                    value = run.get(population, {}).get(stat)
                    if value is not None and math.isfinite(value):
                        ax.axvline(value, color=_COLOURS[j % 6], alpha=0.6, lw=1, ls="--")
        else:
            for j, b in enumerate(backends):
                values = [run.get(population, {}).get(stat) for run in report["summaries"][b]]
                values = [v for v in values if v is not None and math.isfinite(v)]
                ax.plot(np.full(len(values), j), values, "o", color=_COLOURS[j % 6], label=b)
            ax.set_xticks(range(len(backends)))
            ax.set_xticklabels(backends)
            ax.set_xlim(-0.5, len(backends) - 0.5)
            ax.set_ylabel("per-run value")
        ax.set_title(f"{stat} ({unit})", fontsize=9)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(f"{population}: distributions per backend (histograms: neurons of all runs; "
                 "dashed: per-run means)", fontsize=9)
    return figure_to_base64(fig)


def _cch_figure(report: dict, population: str) -> str | None:
    fig = _figure(5.5, 3.0)
    ax = fig.add_subplot()
    drawn = False
    for j, (backend, runs) in enumerate(report.get("cch", {}).items()):
        usable = [run[population] for run in runs if population in run and len(run[population]["mean"])
                  and np.isfinite(np.asarray(run[population]["mean"], dtype=float)).all()]
        if not usable:
            continue
        curves = [np.asarray(entry["mean"], dtype=float) for entry in usable]
        lags = np.asarray(usable[0]["lags_ms"], dtype=float)
        stack = np.vstack(curves)
        mean, sd = stack.mean(axis=0), stack.std(axis=0)
        ax.plot(lags, mean, color=_COLOURS[j % 6], label=f"{backend} (mean of {len(curves)} runs)")
        ax.fill_between(lags, mean - sd, mean + sd, color=_COLOURS[j % 6], alpha=0.2)
        drawn = True
    if not drawn:
        return None
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xlabel("lag (ms)")
    ax.set_ylabel("normalised CCH (1 = independent)")
    ax.set_title(f"{population}: cross-correlograms of sample pairs (band: run-to-run SD)", fontsize=9)
    ax.legend(fontsize=7)
    return figure_to_base64(fig)


def _raster_figure(rasters: dict, population: str, window_ms: tuple[float, float]) -> str | None:
    backends = [b for b in rasters if population in rasters[b] and len(rasters[b][population])]
    if not backends:
        return None
    start = window_ms[0]
    stop = min(window_ms[1], start + RASTER_WINDOW_MS)
    fig = _figure(4.0 * len(backends), 3.0)
    for j, backend in enumerate(backends):
        ax = fig.add_subplot(1, len(backends), j + 1)
        for k, train in enumerate(rasters[backend][population][:RASTER_NEURONS]):
            t = np.asarray(train.rescale("ms").magnitude, dtype=float)
            t = t[(t >= start) & (t <= stop)]
            ax.plot(t, np.full(t.size, k), "|", color="k", markersize=3)
        ax.set_xlim(start, stop)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("neuron")
        ax.set_title(f"{backend} (first run)", fontsize=9)
    fig.suptitle(f"{population}: spike rasters", fontsize=9)
    return figure_to_base64(fig)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "-" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:3px 7px;font-size:13px;text-align:right}th{background:#eee}
td.l{text-align:left}tr.differ td{background:#fdd}tr.agree td.v{background:#dfd}tr.untested td.v{background:#eee}
.status-ok{color:#070}.status-bad{color:#b00;font-weight:bold}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
.verdict{font-size:1.3em;font-weight:bold}"""


def render_html(report: dict, figures: list[tuple[str, str]]) -> str:
    """The report as one HTML document; ``figures`` are (caption, base64 PNG) pairs."""
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Validation report: {esc(str(report.get('model', '')))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Cross-simulator validation of <code>{esc(str(report.get('model', '')))}</code></h1>",
             f"<p class='verdict' id='verdict'>{esc(str(report.get('verdict', '')))} "
             f"({report.get('n_differ', 0)} of {report.get('n_compared', 0)} tested statistics differ)</p>"]
    statement = report.get("detectable_difference", {}).get("statement")
    if statement:
        parts.append(f"<p id='detectable'><b>Detectable difference</b>: {esc(statement)}</p>")
    if report.get("silent_populations"):
        parts.append("<p id='silent'>Not compared (no spikes on any backend): "
                     f"{esc(', '.join(report['silent_populations']))}</p>")
    notes = [f"{name}: {note}" for name, info in report.get("backends", {}).items() for note in info.get("notes", [])]
    if notes:
        parts.append("<ul id='notes'>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    config = report.get("config", {})
    first, repeats = config.get("seed"), config.get("repeats")
    seeds = f"{first} to {first + repeats - 1}" if isinstance(first, int) and isinstance(repeats, int) else "-"
    parts.append(f"<p>{repeats} runs per backend (seeds {seeds}), {_fmt(report.get('duration_ms'))} ms each, "
                 "statistics over "
                 f"[{_fmt(report.get('transient_ms'))}, {_fmt(report.get('duration_ms'))}] ms; Welch t-tests "
                 f"against the run-to-run spread, {esc(str(config.get('correction')))} correction at "
                 f"alpha = {config.get('alpha')}.</p>")
    if config.get("alterations"):
        parts.append("<p><b>Test hook active</b>: " + ", ".join(
            f"{esc(a['parameter'])} x {a['factor']} on {esc(a['backend'])}" for a in config["alterations"]) + "</p>")
    parts.append("<h2>Backends</h2><table id='backends'><tr><th>backend</th><th>status</th><th>runs</th>"
                 "<th>wall time (s)</th><th>message</th></tr>")
    for name, info in report.get("backends", {}).items():
        cls = "status-ok" if info["status"] == "ok" else "status-bad"
        parts.append(f"<tr><td class='l'>{esc(name)}</td><td class='l {cls}'>{esc(info['status'])}</td>"
                     f"<td>{info['n_runs']}</td><td>{_fmt(info['wall_time_s'], 3)}</td>"
                     f"<td class='l'>{esc(info['message'])}</td></tr>")
    parts.append("</table><h2>Summary</h2><table id='summary'><tr><th>population</th><th>statistic</th>"
                 "<th>backends</th><th>mean a</th><th>mean b</th><th>SD a</th><th>SD b</th><th>difference</th>"
                 "<th>tolerance</th><th>relative</th><th>Hedges' g</th><th>p</th><th>p adjusted</th>"
                 "<th>verdict</th></tr>")
    for c in report.get("comparisons", []):
        unit = STATISTICS.get(c["statistic"], ("", ""))[1]
        parts.append(f"<tr class='{esc(c['verdict'])}'><td class='l'>{esc(c['population'])}</td>"
                     f"<td class='l'>{esc(c['statistic'])} ({esc(unit)})</td>"
                     f"<td class='l'>{esc(c['group_a'])} vs {esc(c['group_b'])}</td>"
                     + "".join(f"<td>{_fmt(c[k])}</td>" for k in ("mean_a", "mean_b", "sd_a", "sd_b", "difference",
                                                                  "tolerance", "relative_difference", "hedges_g",
                                                                  "p_value", "p_adjusted"))
                     + f"<td class='l v' title='{esc(c.get('reason', ''))}'>{esc(c['verdict'])}</td></tr>")
    parts.append("</table><p>tolerance: half-width of the Bonferroni-level confidence interval of the difference "
                 "(from the run-to-run spread); relative = difference / |mean a|.</p><h2>Figures</h2>")
    for caption, data in figures:
        parts.append(f"<figure><img class='figure' alt='{esc(caption)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    versions = report.get("versions", {})
    parts.append("<h2>Environment</h2><p>" + ", ".join(f"{esc(k)} {esc(str(v))}" for k, v in versions.items())
                 + f"</p><p>{esc(str(report.get('machine', {})))}</p></body></html>")
    return "\n".join(parts)


def write_report(out_dir, report: dict, rasters: dict, window_ms: tuple[float, float]) -> dict:
    """Write ``report.json`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    report : dict
        JSON-serialisable report: model, config, verdict, backends, summaries, comparisons, and
        optionally per_neuron / cch data for the figures.
    rasters : dict
        Backend -> population -> list of neo.SpikeTrain (one run) for the rasters.
    window_ms : (float, float)
        Analysis window (ms).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for population in _populations(report):
        for caption, maker in ((f"{population}: statistics per backend", lambda p: _distribution_figure(report, p)),
                               (f"{population}: cross-correlograms", lambda p: _cch_figure(report, p)),
                               (f"{population}: rasters side by side",
                                lambda p: _raster_figure(rasters, p, window_ms))):
            data = maker(population)
            if data is not None:
                figures.append((caption, data))
    write_json_atomic(out / "report.json", report)
    html_path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(render_html(report, figures), encoding="utf-8")
    tmp.replace(html_path)
    return {"html": html_path, "json": out / "report.json"}
