"""A fake CometAPI server speaking the Runway-compatible protocol, for tests and demos.

Standard library only, and independent of the rest of ``runway_widgets`` (it is
what the package's own parser is tested against). Tasks follow scripted
:class:`Timeline` objects; :class:`Fault` objects inject misbehaviours (rate
limits, HTML error pages, truncated JSON, resets, slow answers, ...).

Examples
--------
>>> from runway_widgets.simulator import Simulator, Timeline, Fault
>>> with Simulator(default_timeline=Timeline.fast()) as sim:  # doctest: +SKIP
...     task_id = sim.add_task("sk-demo")
...     sim.inject(Fault("rate_limit", retry_after="1"))
...     # poll f"{sim.base_url}/runway/feed" with {"task_id": task_id}
"""

from __future__ import annotations

from .faults import FAULT_KINDS, Fault
from .render import feed_task, official_task
from .server import RequestRecord, Simulator
from .timeline import PROGRESS_STYLES, RESULT_LOCATIONS, Timeline, task_view

__all__ = [
    "Simulator",
    "Timeline",
    "Fault",
    "RequestRecord",
    "task_view",
    "feed_task",
    "official_task",
    "FAULT_KINDS",
    "PROGRESS_STYLES",
    "RESULT_LOCATIONS",
]
