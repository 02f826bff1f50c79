"""Which names stand for a secret: one rule for every layer that must hide values by their name.

Template variables (load/taint.py makes them secret sources) and the container's environment
(drivers/docker_spec.py masks those values in plans and leaves them out of the spec hash) follow
the same rule, so a name one of them hides is never shown by the other. The rule is loose on
purpose: hiding a value that was no secret costs a `(sensitive)` in a plan, showing a secret
cannot be undone.
"""

from __future__ import annotations

import re

# pg_password, POSTGRES_PASSWORD, PGPASSFILE, app_pwd, api_secret, GITHUB_TOKEN, ssl_key, credentials
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a variable or an environment key) says it holds a secret."""
    return _SECRET_NAME.search(name) is not None
