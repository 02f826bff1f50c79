"""A play's `templates:`: files rendered from templates/ for the apps (e.g. their .env).

The plan shows a unified diff of each file in which nothing that depends on a secret is shown
(see `erpprov.load.taint`), and nothing of the old file that erpprov does not render itself; apply
writes only files whose content or mode differs, atomically and with the declared mode, and only
inside the project unless the play allows a destination outside it.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from erpprov.core.actions import SENSITIVE, Action, Op, Phase
from erpprov.core.address import Address
from erpprov.core.model import TemplateFile
from erpprov.core.target import Target
from erpprov.errors import ErpprovError
from erpprov.files.atomic import write_private
from erpprov.load import taint
from erpprov.load.templating import LazyVars, translated


def render(target: Target, spec: TemplateFile, variables: Mapping[str, Any] | None = None) -> str:
    import jinja2

    from erpprov.load.sandbox import files_environment, render_template

    directory = target.project_dir / "templates"
    try:
        template = files_environment(str(directory)).get_template(spec.src)
        return render_template(template, target.variables if variables is None else variables)
    except jinja2.TemplateNotFound:
        raise ErpprovError(f"template not found: {directory / spec.src}",
                           hint="templates live in templates/ beside playbooks/") from None
    except Exception as exc:
        error = translated(exc)
        line = f":{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise ErpprovError(f"templates/{spec.src}{line}: {error.message}", hint=error.hint) from None


def destination(target: Target, spec: TemplateFile) -> Path:
    """Where ``spec`` writes. Outside the project (../, an absolute path, a symlink leading out)
    only when the play says so: a playbook from a pull request must not overwrite ~/.ssh/config."""
    path = Path(spec.dest)
    path = path if path.is_absolute() else target.project_dir / path
    if not spec.outside_project and not path.resolve().is_relative_to(target.project_dir.resolve()):
        raise ErpprovError(f"template dest {spec.dest!r} is outside the project directory {target.project_dir}",
                           hint="write it inside the project, or set `outside_project: true` on this "
                                "template if the play must write there")
    return path


def _shown_lines(target: Target, spec: TemplateFile, lines: list[str]) -> list[str]:
    """``lines`` of the rendered file as they may be shown: what depends on a secret hidden."""
    try:
        shadowed = render(target, spec, taint.shadow(target.variables)) \
            if isinstance(target.variables, LazyVars) else None
    except ErpprovError:  # it does not even render without the secrets: hide every line
        shadowed = None
    if shadowed is None:
        return [SENSITIVE] * len(lines)
    other = shadowed.splitlines()
    shown: list[str] = [SENSITIVE] * len(lines)
    known = taint.known_secrets(target)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, lines, other, autojunk=False).get_opcodes():
        for k in range(i1, i2):
            pair = other[j1 + k - i1] if tag in ("equal", "replace") and i2 - i1 == j2 - j1 else None
            shown[k] = taint.masked_line(lines[k], pair)
            if taint.redact(shown[k], known) != shown[k]:  # a password typed out, or from a plain variable
                shown[k] = taint.masked_line(lines[k], taint.redact(lines[k], known))
    return shown


def _range(start: int, stop: int) -> str:
    """A hunk's range as unified diffs write it (difflib's format)."""
    length = stop - start
    return f"{start + 1}" if length == 1 else f"{start if not length else start + 1},{length}"


def masked_diff(old: list[str] | None, new: list[str], shown: list[str], dest: str) -> str:
    """A unified diff of the file's lines. A line it keeps or adds shows as ``shown``; a line it
    removes shows only a key that erpprov writes itself (`-PGPASSWORD=(sensitive)`): the old file
    may hold a secret nobody knows any more (the password just rotated), or not be erpprov's."""
    keys = {k for k in map(taint.key_of, shown) if k and SENSITIVE not in k}
    out: list[str] = []
    for group in difflib.SequenceMatcher(None, old or [], new, autojunk=False).get_grouped_opcodes(3):
        if not out:
            out += [f"--- {'a/' + dest if old is not None else '/dev/null'}", f"+++ b/{dest}"]
        out.append(f"@@ -{_range(group[0][1], group[-1][2])} +{_range(group[0][3], group[-1][4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in shown[j1:j2]]
                continue
            for line in (old or [])[i1:i2]:
                key = taint.key_of(line)
                out.append("-" + (key if key in keys else "") + SENSITIVE)
            out += ["+" + line for line in shown[j1:j2]]
    return "\n".join(out)


def _read(path: Path) -> tuple[bytes | None, int | None]:
    try:
        return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise ErpprovError(f"cannot read {path}: {exc.strerror}", hint="dest must be a regular file") from None


def plan_templates(target: Target) -> tuple[list[Action], list[str]]:
    """The file actions and the warnings about the files (a secret others may read)."""
    actions, warnings = [], []
    for spec in target.play.templates:
        path = destination(target, spec)
        content = render(target, spec)
        lines = content.splitlines()
        shown = _shown_lines(target, spec, lines)
        mode = int(spec.mode, 8)
        if shown != lines and mode & 0o044:
            warnings.append(f"{Address('file', spec.dest)} holds secrets and mode {mode:04o} lets others read it; "
                            "use mode 0600 or 0640")
        current, current_mode = _read(path)
        if current == content.encode() and current_mode == mode:
            continue
        old = current.decode("utf-8", errors="replace").splitlines() if current is not None else None
        note = masked_diff(old, lines, shown, spec.dest) if current != content.encode() else "mode only"
        before = {"mode": f"{current_mode:04o}"} if current_mode is not None else None
        actions.append(Action(Address("file", spec.dest), Op.CREATE if current is None else Op.UPDATE, Phase.FILE,
                              before=before, after={"mode": f"{mode:04o}", "from": f"templates/{spec.src}"},
                              note=note or "line endings only"))
    return actions, warnings


def write_templates(target: Target, actions: list[Action]) -> None:
    """Write the files whose actions are listed, rendering them anew (plans never hold contents)."""
    wanted = {a.address for a in actions}
    for spec in target.play.templates:
        if Address("file", spec.dest) in wanted:
            path = destination(target, spec)
            try:
                write_private(path, render(target, spec), mode=int(spec.mode, 8))
            except OSError as exc:
                raise ErpprovError(f"cannot write {path}: {exc.strerror}") from None
