"""Timestamp emits no events."""

from runtime.frame import event_enum

EVENTS = event_enum("Timestamp", [])
