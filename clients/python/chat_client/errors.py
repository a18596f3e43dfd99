"""The service's errors as one exception: its stable `code` is what a client branches on."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A problem+json answer (`{type, title, status, detail, code}`), or an `error` frame.

    `status` is 0 for an `error` frame over the WebSocket (it has no HTTP status).
    """

    def __init__(
        self, status: int, code: str, detail: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after

    @classmethod
    def from_problem(cls, status: int, body: Any) -> ApiError:
        problem = body if isinstance(body, dict) else {}
        code = str(problem.get("code") or f"http_{status}")
        return cls(status, code, str(problem.get("detail") or ""), problem.get("retry_after"))

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> ApiError:
        return cls(
            0, str(frame.get("code")), str(frame.get("message") or ""), frame.get("retry_after")
        )
