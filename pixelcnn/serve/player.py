"""A recorded generation (:class:`pixelcnn.explain.pixels.Generation`) as a self-contained HTML page with a
canvas player: scrub or play from an empty canvas to the finished sample, pixel by pixel, with the
pixel being drawn marked, the distribution it was drawn from, and its analytic receptive field
outlined. Scrubbing and playing run in the browser: the whole recording travels once."""

from __future__ import annotations

import json

from ..explain.pixels import Generation

CELL = 12
PRESENTATION_CELL = 20  # 560 px for 28 pixels: legible from the back of a hall

_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
body { font-family: sans-serif; margin: 0; padding: 6px; color: #222; background: #fff; color-scheme: light;
       font-size: __FONT__px; }
button, select { font-size: __FONT__px; }
#row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
#controls { margin: 8px 0; display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
#scrub { width: min(__SCRUB__px, 60vw); }
canvas { border: 1px solid #999; max-width: 100%; height: auto; }
#label { font-size: __FONT__px; min-height: 1.3em; }
</style></head><body>
<div id="controls">
  <button id="play">Play</button>
  <input id="scrub" type="range" min="0" max="0" value="0" aria-label="step">
  <select id="speed" aria-label="speed"><option value="4">slow (4 steps a second)</option><option value="row"
  selected>a row a second</option><option value="200">fast (200 steps a second)</option></select>
</div>
<div id="label"></div>
<div id="row"><canvas id="image"></canvas><canvas id="bars" width="__BARS_W__" height="__BARS_H__"></canvas></div>
<script>
const D = __DATA__;
const C = __CELL__, F = __FONT__, N = D.steps.length, S = D.size, K = D.channels, L = D.levels;
const image = document.getElementById("image"), bars = document.getElementById("bars");
image.width = image.height = S * C;
const scrub = document.getElementById("scrub"), label = document.getElementById("label");
scrub.max = N;  // position k: the first k steps are drawn; step k (if any) is the one being drawn
const names = ["red", "green", "blue", "alpha"];
function valueAt(r, c, ch) { return D.image[(r * S + c) * K + ch]; }
function render(k) {
  const g = image.getContext("2d");
  g.fillStyle = "#bbb"; g.fillRect(0, 0, S * C, S * C);
  const drawn = new Array(S * S * K).fill(false);
  for (let i = 0; i < k; i++) { const [r, c, chs] = D.steps[i]; for (const ch of chs) drawn[(r * S + c) * K + ch] = true; }
  for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) {
    let any = false; const rgb = [0, 0, 0];
    for (let ch = 0; ch < Math.min(K, 3); ch++) if (drawn[(r * S + c) * K + ch]) { any = true; rgb[ch] = Math.round(valueAt(r, c, ch) * 255 / (L - 1)); }
    if (any) { g.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`; g.fillRect(c * C, r * C, C, C); }
  }
  const b = bars.getContext("2d"); b.clearRect(0, 0, bars.width, bars.height);
  if (k >= N) { label.textContent = `finished: ${N} steps` + __DONE__; return; }
  const [r, c, chs] = D.steps[k];
  g.fillStyle = "rgba(40, 110, 230, 0.45)";
  for (const [dr, dc] of D.offsets) { const rr = r + dr, cc = c + dc; if (rr >= 0 && rr < S && cc >= 0 && cc < S) g.fillRect(cc * C, rr * C, C, C); }
  g.strokeStyle = "rgb(230, 40, 40)"; g.lineWidth = 3; g.strokeRect(c * C + 1.5, r * C + 1.5, C - 3, C - 3);
  label.textContent = `step ${k + 1} of ${N}: pixel (${r}, ${c}), __VERB__ ${chs.map(ch => names[ch]).join(", ")}`;
  const w = bars.width / (K * (L + 1)), h = bars.height - 2 * F - 14;
  for (let ch = 0; ch < K; ch++) for (let v = 0; v < L; v++) {
    const p = D.dist[(k * K + ch) * L + v], x = (ch * (L + 1) + v) * w + 4;
    b.fillStyle = chs.includes(ch) ? names[ch] : "#ddd";
    b.fillRect(x, F + 10 + h * (1 - p), w - 2, h * p);
    if (chs.includes(ch) && valueAt(r, c, ch) === v) { b.strokeStyle = "black"; b.lineWidth = 2; b.strokeRect(x, F + 10 + h * (1 - p), w - 2, h * p); }
    b.fillStyle = "#222"; b.font = `${F - 2}px sans-serif`; b.textAlign = "center";
    b.fillText(String(v), x + w / 2, bars.height - 6);
    if (p >= 0.005) b.fillText(`${Math.round(p * 100)}%`, x + w / 2, F + 6 + h * (1 - p));  // its value
  }
}
let timer = null, position = 0;
function stop() { clearInterval(timer); timer = null; document.getElementById("play").textContent = "Play"; }
document.getElementById("play").onclick = () => {
  if (timer) { stop(); return; }
  if (+scrub.value >= N) scrub.value = 0;
  document.getElementById("play").textContent = "Pause";
  position = +scrub.value; let last = performance.now();
  timer = setInterval(() => {  // steps per second, by the clock: a slow speed moves less than a step a tick
    const chosen = document.getElementById("speed").value, now = performance.now();
    const perSecond = chosen === "row" ? N / S : +chosen;
    position = Math.min(N, position + perSecond * (now - last) / 1000); last = now;
    const next = Math.floor(position);
    if (next !== +scrub.value) { scrub.value = next; render(next); }
    if (next >= N) stop();
  }, 50);
};
scrub.oninput = () => { position = +scrub.value; render(position); };
scrub.value = __START__; render(+scrub.value);
</script></body></html>
"""


def player_html(generation: Generation, start: int = 0, verb: str = "drawing", large: bool = False,
                done: str = "") -> str:
    """The player for ``generation``, positioned at step ``start`` (default: the empty canvas); ``verb`` names
    what a step does ("drawing", or "decoding" for a decoder's recording); ``large``: presentation mode's
    sizes (a 560 px canvas, 20 px controls and labels); ``done``: what the last step's label adds (the
    decoder's "identical to the original", said when the room has watched it)."""
    size, channels, levels = generation.image.shape[0], generation.image.shape[2], generation.distributions.shape[2]
    data = {"size": size, "channels": channels, "levels": levels,
            "steps": [[r, c, chs] for r, c, chs in generation.steps],
            "dist": [round(float(p), 4) for p in generation.distributions.ravel()],
            "image": generation.image.ravel().tolist(), "offsets": generation.field_offsets}
    sizes = {"__CELL__": PRESENTATION_CELL if large else CELL, "__FONT__": 20 if large else 14,
             "__SCRUB__": 640 if large else 420, "__BARS_W__": 600 if large else 360,
             "__BARS_H__": 400 if large else 240}
    html = _TEMPLATE.replace("__DATA__", json.dumps(data, separators=(",", ":")))
    done_js = json.dumps(f": {done}" if done else "").replace("<", "\\u003c")
    for name, value in {**sizes, "__START__": int(start), "__VERB__": verb, "__DONE__": done_js}.items():
        html = html.replace(name, str(value))
    return html


def player_height(large: bool) -> int:
    """The iframe height that shows the whole player without a scroll bar."""
    return 720 if large else 450
