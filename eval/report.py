"""Writing an evaluation as `results.md` (scaled, for reading), `results.json` and `results.csv` (native units)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from talking_faces.atomic import atomic_write

from .runner import EvalResult

# metric -> (scale exponent of the Markdown table, unit). Fixed, so tables stay comparable.
SCALES = {"LVE": (-5, "m²"), "FDD": (-7, "m²"), "V-LVE": (-6, "m²"), "diversity": (-3, "m"), "sample diversity": (-3, "m"),
          "MVE": (-3, "m")}
METRICS = tuple(SCALES)
COLUMNS = ("method", "dataset", *METRICS, "sequences", "frames")


def to_json(result: EvalResult) -> dict:
    return {
        "rows": result.rows,
        "regions": result.regions,
        "aggregation": result.aggregation,
        "units": {m: unit for m, (_, unit) in SCALES.items()},
        "skipped": result.skipped,
        "config": result.config,
    }


def to_markdown(result: EvalResult) -> str:
    header = ["Method", "Dataset", *(f"{m} (×1e{e} {u})" for m, (e, u) in SCALES.items()), "Sequences", "Frames"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        values = ["–" if row[m] is None else f"{row[m] / 10.0 ** SCALES[m][0]:.4f}" for m in METRICS]
        cells = [row["method"], row["dataset"], *values, str(row["sequences"]), str(row["frames"])]
        lines.append("| " + " | ".join(cells) + " |")
    regions = result.regions
    notes = [
        "",
        f"Regions: {regions['kind']} from `{regions['source']}`; LVE/V-LVE on {regions['lve']['from']} "
        f"({regions['lve']['unique']} unique of {regions['lve']['entries']}), FDD on {regions['fdd']['from']} "
        f"({regions['fdd']['unique']} unique of {regions['fdd']['entries']}).",
        "",
        "Aggregation:",
        *(f"- {name}: {text}" for name, text in result.aggregation.items()),
    ]
    if result.skipped:
        notes.append(f"\nSkipped {len(result.skipped)} sequences without predictions: {', '.join(result.skipped)}.")
    return "\n".join(lines + notes) + "\n"


def to_csv(result: EvalResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: ("" if row[k] is None else repr(row[k]) if isinstance(row[k], float) else row[k]) for k in COLUMNS})
    return buffer.getvalue()


def write_reports(result: EvalResult, out: Path) -> list[Path]:
    """Write the three files into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"results.md": to_markdown(result), "results.json": json.dumps(to_json(result), indent=2) + "\n",
             "results.csv": to_csv(result)}
    for name, text in files.items():
        atomic_write(out / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    return [out / name for name in files]
