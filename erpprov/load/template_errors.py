"""What both halves of templating share: the error a rendering failure becomes, and the limits.
Kept apart so that the sandbox (Jinja2, imported only when a value holds a template) and the
lazy variables both depend on it, and neither on the other."""

from __future__ import annotations

MAX_TEMPLATE_CHARS = 100_000  # of a template's source
MAX_OUTPUT_CHARS = 1_000_000  # of what one template renders, and of any value built by * or **
RENDER_SECONDS = 5.0


class TemplateError(Exception):
    """A rendering failure; the loader adds the file:line of the value being rendered."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
