"""Limits per user and per tenant: what one caller may take from the others."""

from server.limits.counters import Counters, LocalCounters, TokenBucket
from server.limits.policy import Limits, TurnSlot

__all__ = ["Counters", "Limits", "LocalCounters", "TokenBucket", "TurnSlot"]
