"""An exported conversation as one zip (the Markdown and the trace): what the web console offers as a download,
since a browser opens one download per key press and the files themselves stay on the server's disk."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path


def export_zip(*paths: Path) -> bytes:
    """The files, by their names, in one deflated zip."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, arcname=path.name)
    return buffer.getvalue()
