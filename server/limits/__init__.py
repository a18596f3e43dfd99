"""Limits per user and per tenant: what one caller may take from the others."""

from server.limits.counters import LocalCounters, TokenBucket
from server.limits.policy import Limits, TurnSlot

__all__ = ["Limits", "LocalCounters", "TokenBucket", "TurnSlot"]
