"""A shipped model's measured results (``results.json``) and the README's results table.

``python -m pixelcnn report`` measures and writes ``results.json`` beside the
checkpoint; ``python -m pixelcnn results`` prints the table from those files,
so every number in the README's table comes from a command run on the
shipped artefacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..store.checkpoint import Checkpoint
from ..store.files import atomic_write, is_number, read_json_object
from ..store.metrics import METRICS_NAME, progress_of, read_events
from ..errors import ConfigError
from ..models import count_parameters
from ..training.config import MAX_EPOCHS
from ..training.evaluate import evaluate

RESULTS_NAME = "results.json"
CHECK_IMAGES = 500


def training_record(run_dir: Path) -> dict[str, Any]:
    """Epochs, steps, wall-clock training time, devices and best validation bits/dim, from ``metrics.jsonl``."""
    events = read_events(Path(run_dir) / METRICS_NAME)
    starts = [e for e in events if e.get("event") == "start"]
    trains = [e for e in events if e.get("event") == "train"]
    vals = [e["bits_per_dim"] for e in events if e.get("event") == "val"]
    last = trains[-1] if trains else {}
    return {
        "steps": last.get("step", 0),
        "epochs": round(float(last.get("epoch", 0.0)), 2),
        "train_seconds": round(float(last.get("elapsed", 0.0)), 1),
        "devices": sorted({str(e.get("device_name") or e.get("device", "?")) for e in starts}),
        "sessions": len(starts),
        "best_val_bits_per_dim": min(vals) if vals else None,
    }


GUIDANCE_SHOWN = (0.0, 1.0, 3.0)


def measure(ckpt: Checkpoint, test_images: np.ndarray, samples: np.ndarray,
            test_labels: np.ndarray | None = None) -> dict[str, Any]:
    """Test bits/dim on every test image and on the first :data:`CHECK_IMAGES` (the shipped-model test's
    check), and the digit score of ``samples`` (the 100 of ``samples.png``).

    A conditional model is scored given ``test_labels``, and :func:`conditional_record` adds its other
    readings."""
    from .digits import digit_score, load_classifier

    model = ckpt.model
    classifier = load_classifier()[0]
    score = digit_score(classifier, samples)
    labels = test_labels if ckpt.config.classes else None
    by_temperature = digit_score_by_temperature(model, classifier, score["score"])
    return {
        "digit_score": score["score"],
        "digits_read": score["histogram"],
        "digit_score_by_temperature": by_temperature,
        "best_temperature": best_temperature(by_temperature),
        "kind": ckpt.config.kind,
        "parameters": count_parameters(model),
        "test_bits_per_dim": evaluate(model, test_images, labels=labels),
        "test_images": len(test_images),
        f"test{CHECK_IMAGES}_bits_per_dim": evaluate(model, test_images[:CHECK_IMAGES],
                                                     labels=None if labels is None else labels[:CHECK_IMAGES]),
        **(conditional_record(model, test_images, labels, classifier) if labels is not None else {}),
        **training_record(ckpt.path.parent),
    }


TEMPERATURES = (1.0, 0.9, 0.8, 0.7)


def digit_score_by_temperature(model, classifier, at_one: float, seed: int = 0, n: int = 100) -> dict[str, float]:
    """The digit score of ``n`` samples (seed ``seed``) at each temperature of :data:`TEMPERATURES`; at 1
    it is ``at_one``, the score of the exercise's samples already drawn. Cooler sampling draws cleaner
    strokes and fewer odd pixels, at the cost of variety."""
    from .digits import digit_score
    from ..sampling import sample

    scores = {"1": at_one}
    for temperature in TEMPERATURES[1:]:
        images = sample(model, n, seed=seed, temperature=temperature)
        scores[f"{temperature:g}"] = digit_score(classifier, images)["score"]
    return scores


def best_temperature(scores: dict[str, float]) -> str:
    """The temperature (as its key) whose digit score is highest; the hotter one on a tie."""
    return max(scores, key=lambda t: (scores[t], float(t)))


def recorded_temperature_scores(run_dir: str | Path) -> dict[str, float]:
    """The digit score by temperature that ``report`` measured, or {} (none recorded, or malformed)."""
    scores = read_results(run_dir).get("digit_score_by_temperature")
    if not isinstance(scores, dict) or len(scores) > len(TEMPERATURES):
        return {}
    valid = {}
    for key, value in scores.items():
        try:
            temperature = float(key)
        except (TypeError, ValueError):
            return {}
        if not 0 < temperature <= 1 or not is_number(value) or not 0 <= value <= 1:
            return {}
        valid[f"{temperature:g}"] = float(value)
    return valid


def temperature_text(scores: dict[str, float]) -> str:
    """One line on the digit score by temperature that ``report`` measured (empty for none)."""
    if not scores:
        return ""
    best = best_temperature(scores)
    cells = ", ".join(f"{scores[t]:.2f} at T = {t}" for t in scores)
    return (f"Digit score of 100 samples (seed 0) measured by `report`: {cells}; highest at T = {best}. "
            f"The exercise's samples are drawn at T = 1.")


def asked_for_samples(model, guidance: float, per_digit: int = 10, seed: int = 0,
                      temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``per_digit`` samples of each digit (one row per digit, seed ``seed``) at ``guidance`` and
    ``temperature``, and their labels."""
    from ..sampling import sample

    labels = np.repeat(np.arange(model.config.classes), per_digit)
    return sample(model, len(labels), seed=seed, labels=labels, guidance=guidance, temperature=temperature), labels


def conditional_record(model, test_images: np.ndarray, test_labels: np.ndarray, classifier) -> dict[str, Any]:
    """A conditional model's other readings of the test set (shown no label; the mixture over labels and the
    generative classifier's accuracy, from :mod:`pixelcnn.explain.posterior`) and, at each guidance weight of
    :data:`GUIDANCE_SHOWN`, the share of 100 samples (ten per digit, seed 0) read as the digit asked for, at
    T = 1 (with their digit score) and at each temperature of :data:`TEMPERATURES`."""
    from .digits import digit_score
    from .posterior import generative_reading

    reading = generative_reading(model, test_images, test_labels)
    asked = {}
    for guidance in GUIDANCE_SHOWN:
        read = {}
        for temperature in TEMPERATURES:
            images, labels = asked_for_samples(model, guidance, temperature=temperature)
            read[f"{temperature:g}"] = digit_score(classifier, images, labels)
        asked[f"{guidance:g}"] = {"asked_for": read["1"]["asked_for"], "digit_score": read["1"]["score"],
                                  "asked_for_by_temperature": {t: r["asked_for"] for t, r in read.items()}}
    return {"test_no_label_bits_per_dim": evaluate(model, test_images),
            "test_marginal_bits_per_dim": reading["marginal_bits_per_dim"],
            "generative_accuracy": reading["accuracy"], "guidance": asked}


def recorded_asked_for(run_dir: str | Path) -> dict[tuple[str, str], float]:
    """The asked-for share by (guidance, temperature) that ``report`` measured, or {} (none recorded, or
    malformed: a share outside [0, 1], a key that is no guidance or temperature it measures)."""
    guided = read_results(run_dir).get("guidance")
    if not isinstance(guided, dict):
        return {}
    shares = {}
    for guidance, reading in guided.items():
        by_temperature = reading.get("asked_for_by_temperature") if isinstance(reading, dict) else None
        if not isinstance(by_temperature, dict):
            return {}
        for temperature, share in by_temperature.items():
            if not (_is_key_of(guidance, GUIDANCE_SHOWN) and _is_key_of(temperature, TEMPERATURES)
                    and is_number(share) and 0 <= share <= 1):
                return {}
            shares[guidance, temperature] = float(share)
    return shares


def _is_key_of(key: Any, values: tuple[float, ...]) -> bool:
    return isinstance(key, str) and key in {f"{v:g}" for v in values}


def best_asked_for(shares: dict[tuple[str, str], float]) -> tuple[str, str]:
    """The (guidance, temperature) whose asked-for share is highest; on a tie the weaker guidance, then the
    hotter temperature: the one that keeps the most variety."""
    return max(shares, key=lambda k: (shares[k], -float(k[0]), float(k[1])))


def asked_for_text(shares: dict[tuple[str, str], float]) -> str:
    """One line on how often a conditional model draws the digit asked for, as ``report`` measured it
    (empty for no readings)."""
    at_one = {w: share for (w, t), share in shares.items() if t == "1"}
    if not at_one:
        return ""
    w, t = best_asked_for(shares)
    cells = ", ".join(f"{share:.2f} at guidance {g}" for g, share in at_one.items())
    return (f"Drawn as the digit asked for (100 samples, ten per digit, seed 0, read by the digit classifier; "
            f"measured by `report`): at T = 1: {cells}; highest {shares[w, t]:.2f} at guidance {w}, T = {t}.")


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    atomic_write(Path(run_dir) / RESULTS_NAME, lambda f: f.write(json.dumps(results, indent=2).encode()))


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's ``results.json``, or {} if it has none."""
    return read_json_object(Path(run_dir) / RESULTS_NAME)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


RESULT_FIELDS = {
    "kind": lambda v: isinstance(v, str),
    "parameters": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "epochs": is_number,
    "train_seconds": is_number,
    "devices": lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v),
    "best_val_bits_per_dim": lambda v: v is None or is_number(v),
    "test_bits_per_dim": is_number,
    "digit_score": lambda v: v is None or is_number(v),
}


def check_results(folder: Path, results: dict[str, Any]) -> dict[str, Any]:
    """``results`` if every field the table shows has its type, else a one-line :class:`ConfigError`."""
    bad = [name for name, valid in RESULT_FIELDS.items() if not valid(results.get(name))]
    if bad:
        raise ConfigError(f"{Path(folder) / RESULTS_NAME} is malformed ({', '.join(bad)}); rerun "
                          f"`python -m pixelcnn report --checkpoint {folder}`")
    return results


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(run_dirs: list[Path]) -> str:
    """The README's results table (Markdown) for run folders that hold a ``results.json``."""
    lines = ["| model | kind | parameters | epochs | training time | trained on | best val bits/dim | test bits/dim "
             "| digit score (T = 1) | best digit score (T) |", "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for folder in run_dirs:
        r = read_results(folder)
        if not r:
            continue
        check_results(folder, r)
        val, score = r.get("best_val_bits_per_dim"), r.get("digit_score")
        lines.append(f"| `{Path(folder).name}` | {r['kind']} | {r['parameters']:,} | {r['epochs']:g} | "
                     f"{_minutes(r['train_seconds'])} | {', '.join(r['devices'])} | {_optional(val, '.4f')} | "
                     f"{r['test_bits_per_dim']:.4f} | {_optional(score, '.2f')} | {_best_cell(folder)} |")
    return "\n".join(lines)


def _best_cell(folder: Path) -> str:
    scores = recorded_temperature_scores(folder)
    if not scores:
        return "-"
    best = best_temperature(scores)
    return f"{scores[best]:.2f} ({best})"


def conditional_table(run_dirs: list[Path]) -> str:
    """The README's table of conditional models (Markdown): the three test readings, the generative
    classifier's accuracy, the asked-for digit score (with the plain digit score) at each guidance at T = 1, and
    the highest asked-for score over guidance and temperature ("-" where ``report`` measured T = 1 alone)."""
    weights = [f"{w:g}" for w in GUIDANCE_SHOWN]
    lines = ["| model | test bits/dim given the label | with no label | mixture over labels | generative "
             "accuracy | " + " | ".join(f"asked-for (digit score), w = {w}" for w in weights)
             + " | best asked-for (w, T) |", "|---|---:|---:|---:|---:|" + "---:|" * (len(weights) + 1)]
    for folder in run_dirs:
        r = read_results(folder)
        guided = r.get("guidance")
        if not isinstance(guided, dict) or not all(isinstance(guided.get(w), dict) for w in weights) or not all(
                is_number(r.get(k)) for k in ("test_bits_per_dim", "test_no_label_bits_per_dim",
                                            "test_marginal_bits_per_dim", "generative_accuracy")):
            raise ConfigError(f"{Path(folder) / RESULTS_NAME} holds no conditional readings; run `python -m "
                              f"pixelcnn report --checkpoint {folder}` on a conditional model")
        cells = [f"{_share(guided[w], 'asked_for')} ({_share(guided[w], 'digit_score')})" for w in weights]
        lines.append(f"| `{Path(folder).name}` | {r['test_bits_per_dim']:.4f} | {r['test_no_label_bits_per_dim']:.4f} "
                     f"| {r['test_marginal_bits_per_dim']:.4f} | {r['generative_accuracy']:.4f} | "
                     + " | ".join(cells) + f" | {_best_asked_cell(folder)} |")
    return "\n".join(lines)


def _share(reading: dict[str, Any], name: str) -> str:
    return f"{float(reading.get(name, float('nan'))):.2f}"


def _best_asked_cell(folder: Path) -> str:
    shares = recorded_asked_for(folder)
    if not shares:
        return "-"
    w, t = best_asked_for(shares)
    return f"{shares[w, t]:.2f} ({w}, {t})"


def _validations(folder: Path, clock: str) -> list[tuple[float, float]]:
    """A run's validations as (its ``clock`` field: "epoch" or "elapsed", bits/dim), in the order written;
    events without both as numbers are skipped."""
    return [(e[clock], e["bits_per_dim"]) for e in read_events(Path(folder) / METRICS_NAME)
            if e.get("event") == "val" and is_number(e.get(clock)) and is_number(e.get("bits_per_dim"))]


def validation_table(run_dirs: list[Path], every: int = 1) -> str:
    """Validation bits/dim by epoch (every ``every``-th epoch, and the last), one column per run (Markdown)."""
    series = {Path(folder).name: {round(epoch): bits for epoch, bits in _validations(folder, "epoch")
                                  if 0 <= epoch <= MAX_EPOCHS} for folder in run_dirs}
    lasts = {max(s) for s in series.values() if s}
    epochs = [e for e in range(1, max(lasts, default=0) + 1) if e % every == 0 or e == 1 or e in lasts]
    lines = ["| epoch | " + " | ".join(series) + " |", "|---:|" + "---:|" * len(series)]
    for epoch in epochs:
        cells = [f"{s[epoch]:.4f}" if epoch in s else "" for s in series.values()]
        if any(cells):
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


MAX_TABLE_MINUTES = 1e6  # about two years: a clock beyond it is a malformed record, and the rows stay bounded


def validation_by_minutes_table(run_dirs: list[Path], every: int) -> str:
    """Validation bits/dim by minutes of training, one column per run (Markdown): at every ``every``-th minute
    of the run's recorded clock (``elapsed``, which a resumed run carries on), the latest validation at or
    before it; a run's cells stop at the first mark after its last validation. Runs trained side by side on
    one machine for the same minutes read here at equal cost, whatever each step costs them."""
    series = {Path(folder).name: sorted((seconds / 60, bits) for seconds, bits in _validations(folder, "elapsed")
                                        if 0 <= seconds / 60 <= MAX_TABLE_MINUTES) for folder in run_dirs}
    end = max((s[-1][0] for s in series.values() if s), default=0.0)
    marks = range(every, int(np.ceil(end / every)) * every + 1, every)
    lines = ["| minutes | " + " | ".join(series) + " |", "|---:|" + "---:|" * len(series)]
    for mark in marks:
        cells = [_latest_by(s, mark) if s and mark - every < s[-1][0] else "" for s in series.values()]
        if any(cells):
            lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latest_by(series: list[tuple[float, float]], minute: float) -> str:
    before = [bits for at, bits in series if at <= minute]
    return f"{before[-1]:.4f}" if before else ""


def recorded_digit_score(run_dir: str | Path) -> float | None:
    """The digit score ``report`` measured for a run, or None (none recorded, or not a number)."""
    score = read_results(run_dir).get("digit_score")
    return float(score) if is_number(score) else None


def recorded_test_bits_per_dim(run_dir: str | Path, events: list[dict[str, Any]] | None = None) -> float | None:
    """A run's test bits/dim: measured by ``report`` (``results.json``), else the run's own test event.

    ``events`` are the run's metrics events if the caller already holds them (the dashboard caches them).
    """
    measured = read_results(run_dir).get("test_bits_per_dim")
    if is_number(measured):
        return float(measured)
    return progress_of(read_events(Path(run_dir) / METRICS_NAME) if events is None else events)["test"]
