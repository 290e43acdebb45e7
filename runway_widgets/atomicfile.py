"""Replace a file atomically: the whole new content or the old one, never half of it.

The content goes to a temporary file in the same folder (a rename across file systems is
not atomic), is flushed and fsynced, then renamed over the target.  On any failure the
temporary file is removed and the error is raised (an ``OSError`` for the caller to report).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["replace_atomically"]


def replace_atomically(path: Path, chunks: Iterable[bytes], prefix: str) -> None:
    """Write ``chunks`` to ``path`` through a temporary ``{prefix}*.tmp`` beside it."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.writelines(chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
