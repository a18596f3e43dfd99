"""Who is calling: the (tenant, user) pair that scopes every read and write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    tenant_id: str
    user_id: str

    @property
    def scope(self) -> dict[str, str]:
        """The filter every query of this caller starts from."""
        return {"tenant_id": self.tenant_id, "user_id": self.user_id}
