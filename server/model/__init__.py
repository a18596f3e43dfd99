"""The model a turn talks to: Claude, or the offline stand-in when no API key is set."""

from __future__ import annotations

from server.config import Settings
from server.model.base import Model
from server.model.claude import ClaudeModel
from server.model.offline import OfflineModel


def build_model(settings: Settings) -> Model:
    return OfflineModel(settings) if settings.offline else ClaudeModel(settings)
