"""`reports/bench/report.md` from the JSON results of bench_intents and bench_sentiment, with plots.

Usage: `python -m benchmarks.report [--out reports/bench]`.

Reads `<out>/intents_<dataset>.json`, `<out>/sentiment.json` and `<out>/project_cv.json` (whichever exist) and
writes, beside them:

- `report.md`: one table per task (dataset × pipeline: accuracy, macro-F1, training s, ms/message one by one
  and batched, epochs, load average while it ran), the project's cross-validation figures, the targets of the
  issue with the measured value, the machine and the date;
- `summary.json`: the same figures without the per-message predictions;
- `accuracy_vs_latency.png`: accuracy against ms/message (one `parse_message` per message), one marker per
  pipeline, one colour per dataset;
- `confusion_bitext_fusion.png`: the fusion classifier's row-normalised confusion matrix on the Bitext test part.

The headline table is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from assistant.paths import PROJECT_ROOT

DEFAULT_OUT = PROJECT_ROOT / "reports" / "bench"

PIPELINE_NAMES = {
    "stock_diet": "stock Rasa: count vectors + DIET",
    "diet_minilm": "stock + MiniLM features into DIET",
    "fusion": "project: MultimodalFusionClassifier",
    "fusion_tuned": "project: fusion on MiniLM tuned (make tune-text)",
    "floor": "floor: frozen MiniLM + LogisticRegression",
}
ORDER = ("stock_diet", "diet_minilm", "fusion", "fusion_tuned", "floor")
#: Issue targets for the fusion classifier (accuracy) and the floors quoted there.
TARGETS = {
    "banking77": (0.94, "93.1 % (frozen MiniLM + LR, official test set)"),
    "bitext": (0.997, "99.5 %"),
    "tweets": (0.84, "81.8 %"),
}


def load_results(out: Path) -> Dict[str, Dict[str, Any]]:
    """Dataset name → results JSON, for every result file in `out`."""
    results: Dict[str, Dict[str, Any]] = {}
    for path in sorted(out.glob("intents_*.json")):
        data = json.loads(path.read_text())
        results[data["dataset"]] = data
    if (out / "sentiment.json").is_file():
        results["tweets"] = json.loads((out / "sentiment.json").read_text())
    return results


def fmt(value: Optional[float], spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(data: Dict[str, Any]) -> List[str]:
    """Markdown rows of one dataset's pipelines."""
    lines = [
        "| pipeline | accuracy | macro-F1 | train s | ms/message | batched ms/message | epochs | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    pipelines = data.get("pipelines", {})
    for key in ORDER:
        row = pipelines.get(key)
        if row is None:
            continue
        load = row.get("load_average") or {}
        load_text = "–"
        if load:
            load_text = f"{load['before'][0]:.1f} → {load['after'][0]:.1f}"
        lines.append(
            f"| {PIPELINE_NAMES[key]} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['train_s']:.0f} | "
            f"{row['ms_per_message']:.1f} | {row['batch_ms_per_message']:.1f} | {row.get('epochs') or '–'} | "
            f"{load_text} |"
        )
    return lines


def plot_accuracy_latency(results: Dict[str, Dict[str, Any]], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"stock_diet": "o", "diet_minilm": "s", "fusion": "*", "fusion_tuned": "P", "floor": "^"}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    plotted = False
    for colour, (dataset, data) in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), results.items()):
        for key in ORDER:
            row = data.get("pipelines", {}).get(key)
            if row is None:
                continue
            ax.scatter(row["ms_per_message"], 100 * row["accuracy"], marker=markers[key], s=120 if key.startswith("fusion")
                       else 60, color=colour, label=f"{dataset}: {PIPELINE_NAMES[key]}")
            plotted = True
    if not plotted:
        plt.close(fig)
        return False
    ax.set_xscale("log")
    ax.set_xlabel("ms per message (one parse_message call; log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs. latency (20 % stratified test part)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_confusion(data: Dict[str, Any], key: str, path: Path, title: str) -> bool:
    """The confusion matrix of pipeline `key` on the test part (off-diagonal counts written in); False when
    its predictions were not recorded."""
    from benchmarks.plots import ConfusionStyle, save_confusion_matrix

    row = data.get("pipelines", {}).get(key)
    if row is None or "predicted" not in row:
        return False
    save_confusion_matrix(data["test_labels"], row["predicted"], path, title,
                          ConfusionStyle(fontsize=7, annotate_counts=True))
    return True


def strip_predictions(data: Dict[str, Any]) -> Dict[str, Any]:
    slim = {k: v for k, v in data.items() if k != "test_labels"}
    slim["pipelines"] = {
        name: {k: v for k, v in row.items() if k not in ("predicted", "sentiment_predicted")}
        for name, row in data.get("pipelines", {}).items()
    }
    return slim


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    out: Path = args.out
    results = load_results(out)
    cv = json.loads((out / "project_cv.json").read_text()) if (out / "project_cv.json").is_file() else None
    if not results and cv is None:
        print(f"no results in {out}; run benchmarks.bench_intents / bench_sentiment first", file=sys.stderr)
        return 2
    from benchmarks.bench_intents import load_average, machine

    info = next((d["machine"] for d in results.values() if "machine" in d), None) or machine()
    dates = sorted(row["date"] for d in results.values() for row in d.get("pipelines", {}).values() if "date" in row)
    lines = [
        "# Intent and sentiment benchmarks",
        "",
        f"- machine: {info['cpu']}, {info['usable_cores']} usable of {info['logical_cores']} logical cores, "
        f"{info.get('memory_gib')} GiB, Python {info['python']}, {info['os']}; shared with other developers "
        f"(load average per run in the tables; now {', '.join(map(str, load_average()))})",
        f"- runs: {dates[0] if dates else '–'} … {dates[-1] if dates else '–'}; report written "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- split: stratified 80 % train / 20 % test, seed in each JSON; metrics on the test part (scikit-learn; "
        "macro-F1 over the true labels)",
        "- train s: wall time of the whole `rasa train nlu` process (start-up included); floor: embedding + fit; "
        "fusion on tuned MiniLM: fine-tuning the encoder on the train part + `rasa train nlu`",
        "- ms/message: one `Agent.parse_message` per message (sample of test messages, after warm-up); batched: "
        "all test messages through the same graph, 64 per run",
        "",
    ]
    headline = ["| dataset | pipeline | accuracy | macro-F1 | train s | ms/message |", "|---|---|---|---|---|---|"]
    for dataset, data in results.items():
        task = "sentiment" if dataset == "tweets" else "intents"
        lines += [f"## {dataset} ({task}): {data['n_train']} train / {data['n_test']} test, "
                  f"{data.get('n_intents') or data.get('n_labels')} classes", ""]
        lines += table(data)
        lines.append("")
        for key in ORDER:
            row = data.get("pipelines", {}).get(key)
            if row is not None:
                headline.append(f"| {dataset} | {PIPELINE_NAMES[key]} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} "
                                f"| {row['train_s']:.0f} | {row['ms_per_message']:.1f} |")
    lines += ["## Targets of the issue (fusion classifier, accuracy)", "",
              "| dataset | target | floor quoted in the issue | floor measured here | fusion | fusion, tuned MiniLM "
              "| target met | floor beaten |",
              "|---|---|---|---|---|---|---|---|"]

    def percent(row: Optional[Dict[str, Any]]) -> str:
        return "–" if row is None else f"{100 * row['accuracy']:.2f} %"

    for dataset, (target, quoted) in TARGETS.items():
        pipelines = results.get(dataset, {}).get("pipelines", {})
        fusion, tuned, floor = pipelines.get("fusion"), pipelines.get("fusion_tuned"), pipelines.get("floor")
        measured = [row["accuracy"] for row in (fusion, tuned) if row is not None]
        best = max(measured) if measured else None
        met = "–" if best is None else ("yes" if best >= target else "no")
        beaten = "–" if best is None or floor is None else ("yes" if best > floor["accuracy"] else "no")
        lines.append(f"| {dataset} | {100 * target:.1f} % | {quoted} | {percent(floor)} | {percent(fusion)} "
                     f"| {percent(tuned)} | {met} | {beaten} |")
    lines.append("")
    if cv is not None:
        lines += [
            "## Project data: `rasa test nlu --cross-validation`",
            "",
            f"- data: {', '.join(cv['data'])} ({cv['examples']} examples, {cv['intents']} intents); config.yml with "
            f"every `epochs` capped at {cv['epochs_cap']}; {cv['folds']} folds; {cv['seconds']:.0f} s; load average "
            f"{cv['load_average']['before'][0]} → {cv['load_average']['after'][0]}; {cv['date']}",
            f"- intent accuracy {fmt(cv['accuracy'], '.4f')}, macro-F1 {fmt(cv['macro_f1'], '.4f')}, weighted-F1 "
            f"{fmt(cv['weighted_f1'], '.4f')} (test folds, from Rasa's intent_report.json in `{cv['report_dir']}`)",
            "",
        ]
    if plot_accuracy_latency(results, out / "accuracy_vs_latency.png"):
        lines += ["![accuracy vs latency](accuracy_vs_latency.png)", ""]
    if "bitext" in results and plot_confusion(results["bitext"], "fusion", out / "confusion_bitext_fusion.png",
                                              "Fusion classifier on Bitext (row-normalised; off-diagonal counts)"):
        lines += ["![fusion classifier confusion matrix on Bitext](confusion_bitext_fusion.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    summary = {name: strip_predictions(data) for name, data in results.items()}
    if cv is not None:
        summary["project_cv"] = cv
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(headline))
    print(f"\nreport: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
