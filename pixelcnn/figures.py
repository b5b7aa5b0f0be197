"""Images and figures made from arrays, shared by the dashboard and the CLI."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .store.files import atomic_write

SEPARATOR = 128
TARGET_COLOR = (230, 40, 40)


def to_rgb(images: np.ndarray, levels: int = 4) -> np.ndarray:
    """Values 0..levels-1 scaled to 0..255, as uint8."""
    return (images.astype(np.float64) * (255.0 / (levels - 1))).round().astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int = 10, pad: int = 1, levels: int = 4) -> np.ndarray:
    """Tile images (N, H, W, 3) with values 0..levels-1 into one RGB uint8 array with thin grey separators."""
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), SEPARATOR, dtype=np.uint8)
    rgb = to_rgb(images, levels)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = rgb[i]
    return grid


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so single pixels stay crisp."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def field_image(field: np.ndarray, row: int, col: int, scale: int = 10, binary: bool = False,
                log: bool = False) -> np.ndarray:
    """A receptive field (H, W) as an RGB uint8 image: brighter is stronger, the target pixel outlined in red.

    With ``log``, brightness follows log10 |gradient| over the nonzero range, so
    the faint far edge of the field stays visible; zero stays black.
    """
    values = (field > 0).astype(np.float64) if binary else field.astype(np.float64)
    if log and not binary and (values > 0).any():
        logs = np.log10(values[values > 0])
        low, high = logs.min(), logs.max()
        shown = np.zeros_like(values)
        shown[values > 0] = 0.15 + 0.85 * (logs - low) / max(high - low, 1e-12)
        values = shown
    top = values.max()
    grey = (values / top * 255).round().astype(np.uint8) if top > 0 else np.zeros(values.shape, np.uint8)
    rgb = upscale(np.stack([grey] * 3, axis=-1), scale)
    y, x = row * scale, col * scale
    rgb[y:y + scale, x:x + scale] = TARGET_COLOR
    rgb[y + 2:y + scale - 2, x + 2:x + scale - 2] = grey[row, col]
    return rgb


def heat_colors(values: np.ndarray, top: float) -> np.ndarray:
    """Values in [0, top] as RGB uint8 on a black-red-yellow-white scale, square-root spaced so that small
    costs stay visible beside a few large ones (the first pixels of an image cost about 2 bits each)."""
    t = np.sqrt(np.clip(values / max(top, 1e-12), 0.0, 1.0))[..., None]
    stops = np.array([[0, 0, 0], [180, 20, 20], [250, 200, 40], [255, 255, 255]], dtype=np.float64)
    position = t * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = position - low
    return (stops[low[..., 0]] * (1 - frac) + stops[low[..., 0] + 1] * frac).round().astype(np.uint8)


def bits_image(bits: np.ndarray, scale: int = 8, pad: int = 4, ncols: int = 4) -> np.ndarray:
    """Bits per value (H, W, C) as one RGB image: a heat map per channel, then their sum (each on its
    own scale, from 0 to its own maximum), ``ncols`` panels a row on a grey background (2: a 2x2 block,
    each panel twice as large in a narrow column as four in a row)."""
    panels = [bits[..., ch] for ch in range(bits.shape[-1])] + [bits.sum(axis=-1)]
    height, width = bits.shape[:2]
    rows = math.ceil(len(panels) / ncols)
    out = np.full((rows * (height * scale + pad) + pad, ncols * (width * scale + pad) + pad, 3), SEPARATOR,
                  np.uint8)
    for i, panel in enumerate(panels):
        y, x = pad + (i // ncols) * (height * scale + pad), pad + (i % ncols) * (width * scale + pad)
        out[y:y + height * scale, x:x + width * scale] = upscale(heat_colors(panel, float(panel.max())), scale)
    return out


def heat_scale_bar(width: int = 512, height: int = 12) -> np.ndarray:
    """The heat maps' colour scale as an RGB strip: 0 bits at the left, a panel's maximum at the right."""
    return np.repeat(heat_colors(np.linspace(0.0, 1.0, width), 1.0)[None], height, axis=0)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a ``.npy`` file (what ``np.save`` writes; ``np.load`` reads it back)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an RGB uint8 array as PNG, atomically."""
    data = png_bytes(image)
    atomic_write(Path(path), lambda f: f.write(data))


def ema(values: list[float], smoothing: float) -> list[float]:
    """Exponential moving average with weight ``smoothing`` in [0, 1) on the past (0 = raw)."""
    out, current = [], None
    for value in values:
        current = value if current is None else smoothing * current + (1 - smoothing) * value
        out.append(current)
    return out


LOSS_TICKS = (0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.18, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7,
              1.0, 1.5, 2.0, 3.0, 4.0)
LOSS_AXES = {"step": "optimizer step", "epoch": "epochs", "images": "training images seen"}


def loss_range(runs: dict[str, dict[str, list[tuple[float, float]]]], settled: bool = True) -> tuple[float, float] | None:
    """The bits/dim range to show the curves of ``runs`` in, padded a little, or None without points. Settled
    (the default): from the lowest value to the highest validation (the train curve alone if none), where
    the differences between models lie (0.09 to 0.2 for the shipped ones); the first steps' fall from 2.0
    runs off the top. Otherwise every value."""
    every = [v for series in runs.values() for kind in ("train", "val", "test") for _, v in series.get(kind, [])
             if v > 0]
    if not every:
        return None
    validation = [v for series in runs.values() for _, v in series.get("val", []) if v > 0]
    top = max(validation) * 1.1 if settled and validation else max(every) * 1.04
    return min(every) * 0.97, min(top, max(every) * 1.04)


def loss_figure(runs: dict[str, dict[str, list[tuple[float, float]]]], smoothing: float = 0.0,
                x: str = "step", per_step: dict[str, float] | None = None,
                y_range: tuple[float, float] | None = None):
    """Train (per step, optionally smoothed) and validation bits/dim of one or more runs.

    ``runs`` maps a run name to its :func:`pixelcnn.store.metrics.curves`. ``x`` is
    ``step``, ``epoch`` or ``images``; for the last two, ``per_step`` maps each
    run to the epochs or images one of its steps is (runs of other batch sizes
    compare fairly only so). Log-scale ticks are labelled with their values; the y axis spans ``y_range``
    (default: :func:`loss_range` of ``runs``; pass one range to plots shown side by side).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]
    for i, (name, series) in enumerate(runs.items()):
        color = palette[i % len(palette)]
        prefix = f"{name}: " if len(runs) > 1 else ""
        scale = 1.0 if x == "step" else (per_step or {}).get(name, 1.0)
        if series["train"]:
            steps, values = zip(*series["train"])
            fig.add_scatter(x=[s * scale for s in steps], y=ema(list(values), smoothing), mode="lines",
                            name=prefix + "train", line={"color": color, "width": 1.5}, opacity=0.7)
        if series["val"]:
            steps, values = zip(*series["val"])
            fig.add_scatter(x=[s * scale for s in steps], y=list(values), mode="lines+markers",
                            name=prefix + "validation", line={"color": color, "width": 2.5, "dash": "dot"},
                            marker={"size": 7})
    # Log scale: the first steps fall from 2.0, the differences that matter lie near 0.1.
    low, high = y_range or loss_range(runs) or (0.1, 2.0)
    ticks = [v for v in LOSS_TICKS if low <= v <= high]
    ticks = [v for i, v in enumerate(ticks) if len(ticks) <= 8 or i % 2 == 0 or v == ticks[-1]]
    fig.update_yaxes(type="log", range=[math.log10(low), math.log10(high)], tickvals=ticks,
                     ticktext=[f"{v:g}" for v in ticks])
    fig.update_layout(xaxis_title=LOSS_AXES.get(x, x), yaxis_title="bits per dimension (log scale)", height=380,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"})  # above, never over
    return fig


def curves_csv(runs: dict[str, dict[str, list[tuple[float, float]]]], per_step: dict[str, float],
               x: str = "step") -> bytes:
    """The curves :func:`loss_figure` draws, unsmoothed, as CSV: run, curve, step, ``x``, bits/dim."""
    names = {"train": "train", "val": "validation", "test": "test"}
    lines = [f"run,curve,step,{x},bits_per_dim"]
    for name, series in runs.items():
        scale = 1.0 if x == "step" else per_step.get(name, 1.0)
        for kind, label in names.items():
            lines += [f'"{name}",{label},{step:g},{step * scale:g},{value:.6g}' for step, value in series.get(kind, [])]
    return ("\n".join(lines) + "\n").encode()


def mask_outline(mask: np.ndarray) -> tuple[list, list]:
    """The border of a boolean (H, W) mask as line segments in cell coordinates, separated by None."""
    xs: list = []
    ys: list = []
    height, width = mask.shape
    padded = np.pad(mask, 1)
    for r, c in zip(*np.nonzero(mask)):
        for dr, dc, (x0, y0, x1, y1) in ((-1, 0, (-.5, -.5, .5, -.5)), (1, 0, (-.5, .5, .5, .5)),
                                          (0, -1, (-.5, -.5, -.5, .5)), (0, 1, (.5, -.5, .5, .5))):
            if not padded[r + 1 + dr, c + 1 + dc]:
                xs += [c + x0, c + x1, None]
                ys += [r + y0, r + y1, None]
    return xs, ys


def field_figure(field: np.ndarray, row: int, col: int, *, binary: bool = False, log: bool = False,
                 analytic: np.ndarray | None = None):
    """A plotly heatmap of a receptive field with the target marked and, optionally, the analytic field outlined."""
    import plotly.graph_objects as go

    values = field.astype(np.float64)
    label = "|gradient|"
    if binary:
        values, label = (values > 0).astype(np.float64), "nonzero"
    elif log:
        positive = values[values > 0]
        floor = positive.min() if positive.size else 1.0
        values = np.where(values > 0, np.log10(np.maximum(values, floor)), np.nan)
        label = "log10 |gradient|"
    fig = go.Figure(go.Heatmap(z=values, colorscale="Viridis", colorbar={"title": label},
                               hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"))
    if analytic is not None:
        xs, ys = mask_outline(analytic)
        fig.add_scatter(x=xs, y=ys, mode="lines", name="can influence (from the masks)",
                        line={"color": "#ff7f0e", "width": 3}, hoverinfo="skip")
    # An outline, not a marker on top: the target cell stays visible (rgb: green and blue read its earlier colours).
    fig.add_scatter(x=[col - .5, col + .5, col + .5, col - .5, col - .5], y=[row - .5, row - .5, row + .5, row + .5,
                    row - .5], mode="lines", name="target", line={"color": "red", "width": 3}, hoverinfo="skip")
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", title="row", showgrid=False,
                     zeroline=False)
    fig.update_xaxes(constrain="domain", title="column", showgrid=False, zeroline=False)
    # The legend above the map: below it, it met the column axis's title whenever the square map filled
    # the figure's height (a narrower colour bar, as without the log scale, makes it do so).
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10}, plot_bgcolor="#111",
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"})
    return fig


def value_counts(images: np.ndarray, levels: int = 4) -> np.ndarray:
    """How often each value occurs per channel: (channels, levels) int array."""
    return np.stack([np.bincount(images[..., ch].ravel(), minlength=levels) for ch in range(images.shape[-1])])


def histogram_figure(counts: np.ndarray):
    """Bars of :func:`value_counts`, one colour per channel."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for ch, (name, color) in enumerate(zip(("red", "green", "blue"), ("#d62728", "#2ca02c", "#1f77b4"))):
        fig.add_bar(x=list(range(counts.shape[1])), y=counts[ch], name=name, marker_color=color)
    fig.update_layout(barmode="group", xaxis_title="value", yaxis_title="count", height=300,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def mask_figure(mask: np.ndarray, title: str):
    """A kernel mask as a small heatmap: live taps bright, the centre outlined."""
    import plotly.graph_objects as go

    k = mask.shape[1]
    full = np.zeros((k, k))
    full[: mask.shape[0]] = mask
    fig = go.Figure(go.Heatmap(z=full, colorscale=[[0, "#222"], [1, "#f5c542"]], showscale=False,
                               xgap=2, ygap=2, hoverinfo="skip"))
    fig.add_scatter(x=[k // 2], y=[k // 2], mode="markers", marker={"symbol": "square-open", "size": 26,
                                                                    "color": "red", "line": {"width": 2}},
                    showlegend=False, hoverinfo="skip")
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=title, height=260, width=260, margin={"l": 5, "r": 5, "t": 40, "b": 5})
    return fig


_LOG_TICKS = [0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3]


def curves_svg(series: dict[str, list[tuple[float, float]]], steps_per_epoch: int | None = None,
               smoothing: float = 0.9, width: int = 720, height: int = 400) -> str:
    """Training (smoothed) and validation bits/dim against epochs (or steps) as a standalone SVG chart."""
    scale = float(steps_per_epoch or 1)
    train = [(s / scale, v) for s, v in series.get("train", [])]
    if train:
        train = list(zip([x for x, _ in train], ema([v for _, v in train], smoothing)))
    val = [(s / scale, v) for s, v in series.get("val", [])]
    points = train + val
    if not points:
        raise ValueError("no curves to draw")
    left, right, top, bottom = 70, 20, 30, 50
    x_max = max(x for x, _ in points) or 1.0
    # Log scale: the first steps fall from 2.0, the differences that matter lie near 0.1.
    logs = [math.log10(max(y, 1e-6)) for _, y in points]
    pad = 0.03 * (max(logs) - min(logs) + 1e-9)
    y_low, y_high = min(logs) - pad, max(logs) + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + x / x_max * (width - left - right),
                top + (y_high - math.log10(max(y, 1e-6))) / (y_high - y_low) * (height - top - bottom))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>']
    ticks = [t for t in _LOG_TICKS if y_low <= math.log10(t) <= y_high]
    if len(ticks) < 2:
        ticks = [10 ** (y_low + (y_high - y_low) * i / 5) for i in range(6)]
    for y in ticks:
        _, yy = px(0, y)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">{y:g}</text>')
    for i in range(6):
        x = x_max * i / 5
        xx, _ = px(x, 10 ** y_low)
        out.append(f'<text x="{xx:.1f}" y="{height - bottom + 18}" text-anchor="middle">{x:.1f}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
               f'{"epoch" if steps_per_epoch else "step"}</text>')
    out.append(f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + height - bottom) / 2})">bits per dimension (log scale)</text>')
    if train:
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in train))
        out.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    if val:
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in val))
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="2"/>')
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="#d62728"/>' for a, b in (px(x, y) for x, y in val)]
    out.append(f'<line x1="{width - 260}" x2="{width - 235}" y1="{top + 8}" y2="{top + 8}" stroke="#1f77b4" '
               f'stroke-width="2"/><text x="{width - 230}" y="{top + 12}">train (smoothed)</text>'
               f'<line x1="{width - 110}" x2="{width - 85}" y1="{top + 8}" y2="{top + 8}" stroke="#d62728" '
               f'stroke-width="2"/><text x="{width - 80}" y="{top + 12}">validation</text></svg>')
    return "".join(out)


COLOURS = ("red", "green", "blue")


def pixel_picker_figure(image: np.ndarray, *, marked: tuple[int, int] | None = None,
                        erased: np.ndarray | None = None, height: int = 420, drag: str | bool = "select"):
    """An image (H, W, 3) in 0..3 whose pixels can be clicked, or box- and lasso-selected: an invisible
    marker sits on every pixel (plotly selects points, not image cells). ``marked`` outlines one
    pixel in red; ``erased`` (H, W) greys out those pixels. ``drag`` is plotly's drag mode: ``"select"``
    for boxes, ``False`` where a click alone picks (a click in select mode also clears the selection)."""
    import plotly.graph_objects as go

    rgb = to_rgb(image).astype(np.float64)
    if erased is not None:
        rgb[erased] = rgb[erased] * 0.25 + 0.75 * SEPARATOR
    size = image.shape[0]
    rows, cols = np.mgrid[:size, :size]
    figure = go.Figure(go.Image(z=rgb.round().astype(np.uint8), hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=cols.ravel(), y=rows.ravel(), mode="markers",
                                marker={"size": max(4, height // size - 2), "opacity": 0.01, "symbol": "square"},
                                hovertemplate="row %{y}, column %{x}<extra></extra>", showlegend=False))
    if marked is not None:
        r, c = marked
        figure.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
                         line={"color": "rgb(230,40,40)", "width": 3})
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode=drag,
                         clickmode="event+select")
    figure.update_xaxes(visible=False, range=[-0.5, size - 0.5])
    figure.update_yaxes(visible=False, range=[size - 0.5, -0.5], scaleanchor="x")
    return figure


def distribution_figure(probabilities: list[list[float]], values: list[int], title: str = ""):
    """Each channel's distribution over its levels as bars, the true value's bar outlined in black."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for channel, (probs, value) in enumerate(zip(probabilities, values)):
        widths = [3 if level == value else 0 for level in range(len(probs))]
        figure.add_trace(go.Bar(x=[f"{COLOURS[channel]} {level}" for level in range(len(probs))], y=probs,
                                name=COLOURS[channel], marker={"color": COLOURS[channel],
                                                               "line": {"color": "black", "width": widths}},
                                hovertemplate="%{x}: p = %{y:.3f}<extra></extra>"))
    figure.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                         yaxis={"range": [0, 1], "title": "probability"}, showlegend=False, bargap=0.15)
    return figure


def label_bits_figure(bits: list[float], posterior: list[float], answer: int, true_label: int | None = None,
                      title: str = ""):
    """Which digit the model reads an image as: p(y | x) under each label as bars from zero, so the answer
    (fewest bits, in colour) is the tallest, the true label's bar outlined in black, and each label's bits/dim
    written on its bar (bars of bits/dim differ by a few thousandths: drawn to scale they look equal, and
    with a cut axis the answer's is a sliver)."""
    import plotly.graph_objects as go

    colours = ["#d62728" if label == answer else "#9aa5b1" for label in range(len(bits))]
    widths = [3 if label == true_label else 0 for label in range(len(bits))]
    figure = go.Figure(go.Bar(x=[str(label) for label in range(len(bits))], y=posterior,
                              marker={"color": colours, "line": {"color": "black", "width": widths}},
                              text=[f"{b:.4f}" for b in bits], textposition="outside", cliponaxis=False,
                              customdata=bits,
                              hovertemplate="label %{x}: p = %{y:.3f}, %{customdata:.4f} bits/dim<extra></extra>"))
    figure.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40 if title else 24, "b": 10},
                         xaxis={"title": "label y (bits/dim of the image given y above each bar)",
                                "type": "category"},
                         yaxis={"title": "p(y | image)", "range": [0, 1.15]}, showlegend=False, bargap=0.2)
    return figure


def raster_bits_figure(bits: np.ndarray, title: str = ""):
    """The bits each pixel of one image costs (summed over its channels), in raster order, and their running
    total: where a stroke starts, the curve jumps. ``bits``: (H, W, C)."""
    import plotly.graph_objects as go

    per_pixel = np.asarray(bits, dtype=np.float64).sum(axis=-1).ravel()
    size = bits.shape[1]
    index = np.arange(len(per_pixel))
    text = [f"pixel ({i // size}, {i % size})" for i in index]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=index, y=per_pixel, mode="lines", name="bits of the pixel", text=text,
                                line={"color": "#d62728", "width": 1.5},
                                hovertemplate="%{text}: %{y:.3f} bits<extra></extra>"))
    figure.add_trace(go.Scatter(x=index, y=np.cumsum(per_pixel), mode="lines", name="bits so far", yaxis="y2",
                                line={"color": "#1f77b4", "width": 2, "dash": "dot"},
                                hovertemplate="after pixel %{x}: %{y:.1f} bits<extra></extra>"))
    figure.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                         xaxis={"title": "pixel, in raster order (row by row)",
                                "tickvals": list(range(0, len(per_pixel) + 1, size * 4)),
                                "ticktext": [f"row {v // size}" for v in range(0, len(per_pixel) + 1, size * 4)]},
                         yaxis={"title": "bits of the pixel"},
                         yaxis2={"title": "bits so far", "overlaying": "y", "side": "right", "rangemode": "tozero",
                                 "tickmode": "auto", "nticks": 6, "showgrid": False},
                         legend={"orientation": "h", "y": -0.25})
    return figure
