"""Views of a watch: terminal lines, the notebook widget, and a static HTML card.

Each view subscribes to :class:`~runway_widgets.watch.WatchUpdate` s; the wording they
share lives in :mod:`runway_widgets.views.text` so the three always agree.
"""
