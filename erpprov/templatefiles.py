"""A play's `templates:`: files rendered from templates/ for the apps (e.g. their .env).

The plan shows a unified diff of each file with secrets masked; apply writes only files whose
content or mode differs, atomically and with the declared mode.
"""

from __future__ import annotations

import difflib
import re
import stat
from pathlib import Path
from urllib.parse import quote, quote_plus

from erpprov.errors import ErpprovError
from erpprov.files import write_private
from erpprov.loader import Target
from erpprov.model import TemplateFile
from erpprov.plan import SENSITIVE, Action, Op, Phase
from erpprov.templating import translated

_SECRET_NAME = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def secrets_of(target: Target) -> list[str]:
    """Values that must never be shown: passwords, and variables named like a secret."""
    values = []
    for role in target.play.roles:
        if role.password is not None:
            try:
                values.append(role.password.get_secret_value())
            except ErpprovError:  # rendered only when needed; a template using it fails on its own
                continue
    if target.connection.pg_password is not None:
        values.append(target.connection.pg_password.get_secret_value())
    for name in target.variables:
        if _SECRET_NAME.search(name):
            try:
                value = target.variables[name]
            except Exception:  # a variable that does not render is not used by any template either
                continue
            if isinstance(value, str):
                values.append(value)
    values += [v for k, v in (target.play.container.env.items() if target.play.container else []) if
               _SECRET_NAME.search(k)]
    # Longest first, so a secret that contains another is masked whole.
    return sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)


def _forms(secret: str) -> list[str]:
    """A secret as templates write it: plain, or URL-encoded the ways urlencode/quote do it."""
    return list(dict.fromkeys((secret, quote(secret), quote(secret, safe=""), quote_plus(secret))))


def mask(text: str, secrets: list[str]) -> str:
    """Hide each secret where it stands as a value of its own, also URL-encoded (as in a
    DATABASE_URL); a secret that is part of a longer word ("postgres" in "postgresql") is not one."""
    for secret in secrets:
        for form in _forms(secret):
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", SENSITIVE, text)
    return text


def _redact(line: str) -> str:
    """A whole value hidden: `KEY=(sensitive)`, keeping the key so the reviewer sees what changed."""
    match = re.match(r"^(\s*[^=:\s]+\s*[=:]\s*)", line)
    return (match.group(1) if match else "") + SENSITIVE + ("\n" if line.endswith("\n") else "")


def masked_diff(current: str | None, content: str, secrets: list[str], dest: str) -> str:
    """A unified diff with secrets hidden on both sides. The old file may hold a secret that is no
    longer known (the password just changed): where the new file has a secret on a line, the old
    line in its place is hidden whole unless it reads the same."""
    new_lines = content.splitlines(keepends=True)
    secret_lines = {i for i, line in enumerate(new_lines) if mask(line, secrets) != line}
    old_lines = []
    for i, line in enumerate((current or "").splitlines(keepends=True)):
        masked = mask(line, secrets)
        if masked != line:
            line = masked
        elif i in secret_lines and line != new_lines[i]:
            line = _redact(line)
        old_lines.append(line)
    return "".join(difflib.unified_diff(
        old_lines, [mask(line, secrets) for line in new_lines],
        fromfile=f"a/{dest}" if current is not None else "/dev/null", tofile=f"b/{dest}"))


def render(target: Target, spec: TemplateFile) -> str:
    import jinja2

    from erpprov.sandbox import files_environment, render_template

    directory = target.project_dir / "templates"
    try:
        template = files_environment(str(directory)).get_template(spec.src)
        return render_template(template, target.variables)
    except jinja2.TemplateNotFound:
        raise ErpprovError(f"template not found: {directory / spec.src}",
                           hint="templates live in templates/ beside playbooks/") from None
    except Exception as exc:
        error = translated(exc)
        line = f":{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise ErpprovError(f"templates/{spec.src}{line}: {error.message}", hint=error.hint) from None


def destination(target: Target, spec: TemplateFile) -> Path:
    path = Path(spec.dest)
    return path if path.is_absolute() else target.project_dir / path


def plan_templates(target: Target) -> list[Action]:
    actions = []
    secrets = secrets_of(target)
    for spec in target.play.templates:
        content = render(target, spec)
        path = destination(target, spec)
        mode = int(spec.mode, 8)
        try:
            current = path.read_text(encoding="utf-8")
            current_mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            current, current_mode = None, None
        if current == content and current_mode == mode:
            continue
        diff = masked_diff(current, content, secrets, spec.dest)
        before = {"mode": f"{current_mode:04o}"} if current_mode is not None else None
        actions.append(Action(f"file.{spec.dest}", Op.CREATE if current is None else Op.UPDATE, Phase.FILE,
                              before=before, after={"mode": f"{mode:04o}", "from": f"templates/{spec.src}"},
                              note=diff.rstrip("\n") or "mode only"))
    return actions


def write_templates(target: Target, actions: list[Action]) -> None:
    """Write the files whose actions are listed, rendering them anew (plans never hold contents)."""
    wanted = {a.address for a in actions}
    for spec in target.play.templates:
        if f"file.{spec.dest}" in wanted:
            path = destination(target, spec)
            try:
                write_private(path, render(target, spec), mode=int(spec.mode, 8))
            except OSError as exc:
                raise ErpprovError(f"cannot write {path}: {exc.strerror}") from None
