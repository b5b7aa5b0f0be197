"""Your own digit as the image of a view: a drawing canvas (mouse, pen or finger) or an upload, the colours, and
the 28x28 result beside the drawing before anything is computed. The conversion is
``pixelcnn.store.drawing``; the image, once made, serves every view of the session and rides in the address
(``?drawn=...``), so a slide can open a view on the lecturer's drawing."""

from __future__ import annotations

import base64

import numpy as np
import streamlit as st

from pixelcnn.errors import DataError
from pixelcnn.figures import image_grid, upscale
from pixelcnn.store.drawing import MAX_FILE_BYTES, pack_image, paint, random_colours, stroke_map, unpack_image

STROKES_KEY = "own_digit_strokes"  # (28, 28) uint8: the session's own digit, shared by every view
LINKED_KEY = "own_digit_linked_image"  # (28, 28, 3): a digit that came colored, in a link
SOURCE_KEY = "own_digit_source"
PNG_KEY = "own_digit_png"  # the canvas's last drawing (a data URL), to draw it again on another page
ADDRESS_KEY = "drawn"
PALETTE = {"white on black": ((0, 0, 0), (3, 3, 3)), "black on white": ((3, 3, 3), (0, 0, 0)),
           "yellow on blue": ((0, 0, 3), (3, 3, 0)), "red on green": ((0, 2, 0), (3, 0, 0))}
RANDOM = "drawn at random, as in the data"

_CANVAS_HTML = """<div class="pad"><canvas width="280" height="280" aria-label="drawing canvas"></canvas>
<div class="row"><button type="button" class="clear">Clear</button><span class="hint">draw a digit with the mouse,
a pen or a finger</span></div></div>"""

_CANVAS_CSS = """.pad { display: inline-block; }
canvas { border: 1px solid #999; border-radius: 4px; background: #fff; touch-action: none; cursor: crosshair;
         width: 280px; height: 280px; max-width: 80vw; max-height: 80vw; }
.row { display: flex; gap: 10px; align-items: center; margin-top: 6px; font-family: sans-serif; font-size: 14px; }
button { font-size: 14px; padding: 4px 12px; }"""

_CANVAS_JS = """export default function (component) {
  const { parentElement, setStateValue, data } = component;
  const canvas = parentElement.querySelector("canvas"), clear = parentElement.querySelector(".clear");
  const g = canvas.getContext("2d");
  function blank() { g.fillStyle = "#fff"; g.fillRect(0, 0, canvas.width, canvas.height); }
  if (!canvas.dataset.ready) {
    canvas.dataset.ready = "1";
    blank();
    if (data && data.png) { const img = new Image(); img.onload = () => g.drawImage(img, 0, 0); img.src = data.png; }
  }
  let last = null;
  const at = (e) => { const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.onpointerdown = (e) => { canvas.setPointerCapture(e.pointerId); last = at(e);
    g.fillStyle = "#000"; g.beginPath(); g.arc(last[0], last[1], 9, 0, 2 * Math.PI); g.fill(); };
  canvas.onpointermove = (e) => { if (!last) return; const p = at(e);
    g.strokeStyle = "#000"; g.lineWidth = 18; g.lineCap = "round"; g.lineJoin = "round";
    g.beginPath(); g.moveTo(last[0], last[1]); g.lineTo(p[0], p[1]); g.stroke(); last = p; };
  const done = () => { if (!last) return; last = null; setStateValue("png", canvas.toDataURL("image/png")); };
  canvas.onpointerup = done; canvas.onpointercancel = done;
  clear.onclick = () => { blank(); setStateValue("png", ""); };
}"""

CANVAS = st.components.v2.component("pixelcnn.drawing_canvas", html=_CANVAS_HTML, css=_CANVAS_CSS, js=_CANVAS_JS)


def from_address() -> None:
    """A link's drawing (``?drawn=...``) becomes the session's own digit, once; a damaged one says so."""
    packed = st.query_params.get(ADDRESS_KEY)
    if packed and st.session_state.get("own_digit_linked") != packed:
        st.session_state.own_digit_linked = packed
        try:
            st.session_state[LINKED_KEY] = unpack_image(packed)
            st.session_state[STROKES_KEY] = None
            st.session_state[SOURCE_KEY] = "the drawing in the link"
        except DataError as err:
            st.warning(str(err))


def colours(prefix: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The background and stroke colours the user picks (or draws at random, at least 3 apart)."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    choice = c1.selectbox("Colours", [RANDOM, *PALETTE], key=f"{prefix}_own_colours")
    seed = st.session_state.setdefault("own_digit_colour_seed", 0)
    if choice == RANDOM and c2.button("New colours", key=f"{prefix}_own_reroll", width="stretch"):
        st.session_state.own_digit_colour_seed = seed = seed + 1
    return random_colours(seed) if choice == RANDOM else PALETTE[choice]


def drawing_or_upload(prefix: str) -> tuple[bytes | None, str]:
    """The bytes of a new drawing or upload (None if nothing new) and its name."""
    how = st.radio("Your digit", ["draw it", "upload an image"], horizontal=True, key=f"{prefix}_own_how")
    if how == "upload an image":
        upload = st.file_uploader("A PNG or JPEG of a digit, any size, dark on light or the reverse",
                                  type=["png", "jpg", "jpeg", "gif", "webp", "bmp"], key=f"{prefix}_own_upload",
                                  max_upload_size=MAX_FILE_BYTES >> 20)
        if upload is None or st.session_state.get("own_digit_upload") == upload.file_id:
            return None, ""
        st.session_state.own_digit_upload = upload.file_id
        return upload.getvalue(), upload.name
    drawn = CANVAS(key=f"{prefix}_canvas", data={"png": st.session_state.get(PNG_KEY, "")},
                   on_png_change=lambda: None)
    png = getattr(drawn, "png", None)
    if not isinstance(png, str) or png == st.session_state.get(PNG_KEY, ""):
        return None, ""
    st.session_state[PNG_KEY] = png
    if not png.startswith("data:image/png;base64,"):  # cleared
        return None, ""
    return base64.b64decode(png.split(",", 1)[1]), "your drawing"


def own_digit_input(prefix: str) -> tuple[np.ndarray, str] | None:
    """The canvas or an upload, its 28x28 colored result beside it; (image, description), or None while
    nothing is drawn. Bad input gets one line; the last good digit stays."""
    from_address()
    left, right = st.columns([3, 2])
    with left:
        data, name = drawing_or_upload(prefix)
        background, stroke = colours(prefix)
    if data is not None:
        try:
            st.session_state[STROKES_KEY] = stroke_map(data, name)
            st.session_state[SOURCE_KEY] = name
        except DataError as err:
            left.error(str(err))
    strokes = st.session_state.get(STROKES_KEY)
    image = paint(strokes, background, stroke) if strokes is not None else st.session_state.get(LINKED_KEY)
    if image is None:
        right.info("Draw a digit on the canvas (or upload an image): its 28x28 version appears here.")
        return None
    source = st.session_state.get(SOURCE_KEY, "your digit")
    right.image(upscale(image_grid(image[None], ncols=1), 8), caption=f"{source} as the model sees it: 28x28, values 0..3", width=224)
    st.query_params[ADDRESS_KEY] = pack_image(image)
    return image, source
