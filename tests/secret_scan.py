"""The secret scan of test_secrets.py and test_event.py: capture what the integration showed,
then find any secret in it."""

import traceback
from typing import Any

from homeassistant.core import Event


class Capture:
    """Everything the integration showed, as labelled strings."""

    def __init__(self) -> None:
        """Start empty."""
        self.texts: list[tuple[str, str]] = []
        self.events: list[Event] = []
        self.errors: list[BaseException] = []
        self.diagnostics: list[Any] = []

    def add(self, label: str, value: Any) -> None:
        """Keep the repr (and str) of something shown."""
        self.texts.append((label, repr(value)))
        self.texts.append((label, str(value)))

    def error(self, label: str, err: BaseException) -> None:
        """Keep an error's message, repr and traceback, through its causes."""
        self.errors.append(err)
        current: BaseException | None = err
        while current is not None:
            self.add(f"error {label}", current)
            self.texts.append((f"traceback {label}", "".join(traceback.format_exception(current))))
            current = current.__cause__ or current.__context__


def leaks(texts: list[tuple[str, str]], secrets: set[str]) -> list[str]:
    """Labels of the texts that hold any secret."""
    return [label for label, text in texts if any(secret in text for secret in secrets)]
