"""The gradio page: an image (upload, paste, webcam) or, for small grayscale models, a
sketchpad; the top-k as a ``gr.Label``; Grad-CAM and saliency beside it for Keras models;
the test split's examples; and a line about the model.

The page fetches nothing from the internet: a theme with system fonts (gradio's default
theme loads Google Fonts), analytics off, no server-side rendering. Uploads are decoded by
the runtime itself (``preprocess=False``: gradio hands over the cached file), so a broken
file is a readable line on the page rather than an error in gradio's image reader.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import tensorflow as tf

from kerascnn.demo.model import DemoModel
from kerascnn.errors import KerasCNNError, first_line

SANS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
# The sketchpad: dark ink on a transparent canvas; the model sees the ink bright on black.
CANVAS = 256
IMAGE_HEIGHT = 256
BRUSH = gr.Brush(colors=["#000000"], default_color="#000000", color_mode="fixed", default_size=14)


# Small inputs (an 8x8 digit) drawn as large as the box holds, with square pixels.
CSS = "#image img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"


def offline_theme() -> gr.themes.Base:
    """gradio's default look with system fonts: nothing to download."""
    return gr.themes.Default(font=SANS, font_mono=MONO)


def launch_options() -> dict[str, Any]:
    """What ``Blocks.launch`` needs for this page (gradio 6 takes the theme and CSS there)."""
    return {"theme": offline_theme(), "css": CSS}


def build_page(demo: DemoModel, examples_dir: str | Path | None = None) -> gr.Blocks:
    """The page for ``demo``; example images are written to ``examples_dir`` (default: a
    new temporary directory)."""
    examples_dir = Path(examples_dir or tempfile.mkdtemp(prefix="kerascnn-demo-"))
    with gr.Blocks(title="kerascnn demo", analytics_enabled=False) as page:
        gr.Markdown(f"## kerascnn demo\n{demo.summary()}", elem_id="summary")
        if not demo.explains:
            gr.Markdown(
                f"A {demo.artifact.kind} artifact gives predictions only: Grad-CAM and saliency "
                "need the layers and gradients of a Keras model (a run directory, an export "
                "directory or a `.keras` file).",
                elem_id="predictions-only",
            )
        with gr.Row():
            with gr.Column():
                image, sketch = _inputs(demo)
                truth = gr.Textbox(label="True class (test image)", interactive=False)
            with gr.Column():
                label = gr.Label(num_top_classes=demo.top_k, label="Top classes", elem_id="label")
                status = gr.Markdown(elem_id="status")
        outputs = [label, status]
        if demo.explains:
            with gr.Row():
                outputs += [
                    gr.Image(label=title, format="png", interactive=False, elem_id=key)
                    for key, title in (("gradcam", "Grad-CAM"), ("saliency", "Saliency"))
                ]
        _examples(demo, image, truth, examples_dir)
        classify = _classifier(demo)
        image.change(classify, image, outputs, api_name="predict", preprocess=False)
        if sketch is not None:
            sketch.change(
                _classifier(demo, drawing=True),
                sketch,
                outputs,
                api_name="sketch",
                preprocess=False,
                trigger_mode="always_last",
            )
    return page


def _inputs(demo: DemoModel) -> tuple[gr.Image, gr.Sketchpad | None]:
    with gr.Tab("Image"):
        image = gr.Image(
            type="filepath",
            sources=["upload", "clipboard", "webcam"],
            label="Image",
            height=IMAGE_HEIGHT,
            elem_id="image",
        )
    if not demo.sketchable:
        return image, None
    with gr.Tab("Draw"):
        sketch = gr.Sketchpad(
            canvas_size=(CANVAS, CANVAS),
            fixed_canvas=True,
            brush=BRUSH,
            format="png",
            type="filepath",
            label="Draw a digit",
            elem_id="sketch",
        )
    return image, sketch


def _examples(demo: DemoModel, image: gr.Image, truth: gr.Textbox, directory: Path) -> None:
    """The test images, one per class; choosing one shows its true class under the image
    (an upload of one's own clears it)."""
    found = demo.examples(directory)
    if not found:
        truth.visible = False
        return
    gr.Examples(
        examples=[[str(e.path), e.label] for e in found],
        inputs=[image, truth],
        label="Test images, one per class (choose one)",
        examples_per_page=len(found),
    )
    image.upload(lambda: "", None, truth, queue=False, api_visibility="private")


def _classifier(demo: DemoModel, drawing: bool = False):
    """The page's function: a gradio file payload (or a sketchpad's, whose ``composite`` is
    the drawing) in, the outputs' values out. A file that cannot be read is a line on the
    page, not an error."""

    def classify(payload: dict[str, Any] | None) -> list[Any]:
        blank = [None, ""] + ([None, None] if demo.explains else [])
        if drawing:
            payload = (payload or {}).get("composite")
        if not payload or not payload.get("path"):
            return blank
        name = payload.get("orig_name") or Path(payload["path"]).name
        try:
            data = Path(payload["path"]).read_bytes()
            answer = demo.answer_drawing(data) if drawing else demo.answer(data, name=name)
        except (KerasCNNError, OSError, tf.errors.InvalidArgumentError) as error:
            return [None, f"**Error:** {first_line(error)}"] + blank[2:]
        confidences = {r["class"]: r["probability"] for r in answer.ranked}
        values = [confidences, " · ".join(answer.notes)]
        if demo.explains:
            values += [answer.gradcam, answer.saliency]
        return values

    return classify
