"""``kerascnn demo``: a local web page (gradio) to try a trained network: drop an image or draw
a digit, see the top classes and, for Keras models, the Grad-CAM and saliency maps.

- ``build(artifact) -> gradio.Blocks``: the page, to launch or mount in an app of one's own
  (launch it with ``**launch_options()``: gradio's default theme fetches Google Fonts);
- ``launch`` / ``wait_until_stopped``: what the command does, serving on 127.0.0.1 until
  Ctrl-C or SIGTERM.

gradio is the optional ``[demo]`` extra, imported only when a page is built.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from kerascnn.demo.model import DemoModel, load_demo_model
from kerascnn.errors import InvalidArgumentError, KerasCNNError
from kerascnn.runtime import Artifact

INSTALL_HINT = "pip install 'kerascnn[demo]' (gradio)"
LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 7860  # gradio's


def _page_module():
    try:
        from kerascnn.demo import page  # imports gradio: the optional [demo] extra, slow
    except ImportError as error:
        if error.name is None or not error.name.startswith("gradio"):
            raise
        raise KerasCNNError(f"the demo needs gradio: {INSTALL_HINT}") from None
    return page


def require_gradio() -> None:
    """Raise the one-line install hint when gradio is missing (before any slow work)."""
    _page_module()


def launch_options() -> dict[str, Any]:
    """The ``launch`` keywords the page needs: a theme with system fonts (gradio's default
    fetches Google Fonts) and its CSS."""
    return _page_module().launch_options()


def build(
    artifact: str | Path | Artifact,
    *,
    top_k: int = 5,
    examples_dir: str | Path | None = None,
):
    """The demo page of ``artifact`` (a run or export directory, ``.keras``, ``.tflite``,
    ``.onnx`` or SavedModel, loaded as ``kerascnn predict`` loads it), as a ``gradio.Blocks``.

    Raises:
        FileNotFoundError: ``artifact`` does not exist.
        ValueError: ``artifact`` is not a kerascnn artifact.
        KerasCNNError: gradio is not installed.
    """
    page = _page_module()
    model = load_demo_model(artifact, top_k)
    model.warm_up()
    return page.build_page(model, examples_dir)


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, before any slow work."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise InvalidArgumentError(
                    f"port {port} on {host} is in use; choose another with --port"
                ) from None
            raise InvalidArgumentError(
                f"cannot listen on {host}:{port}: {error.strerror}"
            ) from None


def launch(page: Any, *, host: str = LOCAL_HOST, port: int = DEFAULT_PORT, share: bool = False):
    """Start serving ``page`` in the background; returns its local URL (and the public one
    with ``share``, gradio's tunnel)."""
    try:
        page.launch(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(),
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            enable_monitoring=False,
        )
    except OSError as error:
        raise InvalidArgumentError(f"cannot serve on {host}:{port}: {error}") from None
    return page.local_url.rstrip("/"), page.share_url


def wait_until_stopped(page: Any) -> str:
    """Block until Ctrl-C (SIGINT) or SIGTERM, then close the server; returns the signal's
    name."""
    stopped: list[str] = []
    done = threading.Event()

    def stop(number, _frame):
        stopped.append(signal.Signals(number).name)
        done.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not done.wait(0.5):
            pass
    finally:
        page.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return stopped[0]


__all__ = [
    "DemoModel",
    "build",
    "check_port",
    "launch",
    "load_demo_model",
    "launch_options",
    "require_gradio",
    "wait_until_stopped",
]
