"""The tracker: applies each event of the trace to the model, one module per kind of call."""

from dockit_core.model.tracker.base import CallInfo
from dockit_core.model.tracker.tracker import Tracker

__all__ = ["CallInfo", "Tracker"]
