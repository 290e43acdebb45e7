"""Stand-in for ``google.colab.userdata`` (Colab's secrets), for tests only.

``get(name)`` returns the made-up secret from ``FAKE_COLAB_SECRET`` for the name
``FAKE_COLAB_SECRET_NAME`` (default ``COMETAPI_KEY``) and appends ``name<TAB>thread name``
to the file named by ``FAKE_COLAB_USERDATA_LOG``, so a test can check which thread read it
(Colab's real ``userdata`` is not thread-safe).  Unknown names raise like Colab does.
"""

from __future__ import annotations

import os
import threading


class SecretNotFoundError(Exception):
    pass


class NotebookAccessError(Exception):
    pass


def get(key: str) -> str:
    log = os.environ.get("FAKE_COLAB_USERDATA_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{key}\t{threading.current_thread().name}\n")
    if key != os.environ.get("FAKE_COLAB_SECRET_NAME", "COMETAPI_KEY") or "FAKE_COLAB_SECRET" not in os.environ:
        raise SecretNotFoundError(f"Secret {key} does not exist.")
    return os.environ["FAKE_COLAB_SECRET"]
