"""`Refusal`: a room's answer that a request cannot be done, with the HTTP status it means.

Rooms below the API raise it instead of importing Flask's `abort`: the message
is what the person is told, `errors` the machine-readable details. The app
factory turns it into flask-smorest's usual error body; the CLI prints it.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """This request is refused: `status` is its HTTP status (403, 404, 409, 422, …)."""

    def __init__(self, status: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
