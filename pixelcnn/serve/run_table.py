"""The Models page's table: one row per run, computed again only when the run folder's files change."""

from __future__ import annotations

from typing import Any

from .memo import SharedMemo
from ..store.metrics import METRICS_NAME, curves, progress_of, read_events
from ..explain.results import recorded_digit_score, recorded_test_bits_per_dim
from .runs import RunInfo, parameter_count, recorded_summary, run_settings

_rows = SharedMemo(max_entries=8192)


def run_row(info: RunInfo) -> dict[str, Any]:
    """Settings, progress and measured results of one run, as the Models table shows them; reused while
    the folder's stamp and status stay the same (2,000 run folders are a table, not 2,000 file reads)."""
    row, _ = _rows.get_or_compute((info.path, info.stamp, info.status), lambda: _row(info))
    return dict(row)


def _row(info: RunInfo) -> dict[str, Any]:
    model_cfg, train_cfg, steps_per_epoch = run_settings(info)
    events = read_events(info.path / METRICS_NAME)
    progress = progress_of(events)
    recorded = recorded_summary(info)  # an uploaded checkpoint's own record: it comes without metrics
    vals = [v for _, v in curves(events)["val"]]
    test = recorded_test_bits_per_dim(info.path, events)
    return {
        "model": info.name, "source": info.kind, "kind": model_cfg.get("kind", "pixelcnn"), "status": info.status,
        "width": model_cfg.get("hidden"), "blocks": model_cfg.get("n_blocks"),
        "parameters": parameter_count(model_cfg),
        "epochs": round(progress["step"] / steps_per_epoch if progress["step"] else recorded.get("epochs", 0), 2),
        "started from": started_from(train_cfg),
        "batch": train_cfg.get("batch_size"), "lr": train_cfg.get("lr"),
        "best val bits/dim": min(vals) if vals else recorded.get("best_val_bits_per_dim"),
        "test bits/dim": test if test is not None else recorded.get("test_bits_per_dim"),
        "digit score": recorded_digit_score(info.path),
    }


def started_from(train_cfg: dict[str, Any]) -> str | None:
    """Where a run's weights began: "random weights", the checkpoint a warm start (``--init-from``) loaded,
    named as it was then, or None where the settings do not say. A continued run's epochs and curves are
    its own, counted from those weights, so the table says which it is."""
    if "init_from" not in train_cfg:
        return None
    start = train_cfg["init_from"]
    if start is None:
        return "random weights"
    return start if isinstance(start, str) else None
