"""Ansible's YAML inventory: groups nested to any depth, hosts, variables, host patterns."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpprov.errors import ErpprovError
from erpprov.load.yamlsrc import Source, load_yaml

_GROUP_KEYS = ("hosts", "vars", "children")


@dataclass
class Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    path: Path
    groups: dict[str, Group]
    host_vars: dict[str, dict[str, Any]]  # in order of first appearance

    @property
    def hosts(self) -> list[str]:
        return list(self.host_vars)

    def depth(self, group: str) -> int:
        """Distance from `all`; deeper groups override shallower ones, as in Ansible."""
        parents = self.groups[group].parents
        return 0 if not parents else 1 + max(self.depth(p) for p in parents)

    def host_groups(self, host: str) -> list[str]:
        """Every group the host belongs to, directly or through a parent, ordered for precedence."""
        found: set[str] = set()
        pending = [g.name for g in self.groups.values() if host in g.hosts]
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending.extend(self.groups[name].parents)
        found.add("all")
        return sorted(found, key=lambda g: (self.depth(g), g))

    def variables(self, host: str) -> dict[str, Any]:
        """all < parent group < child group < host, as Ansible merges them."""
        merged: dict[str, Any] = {}
        for group in self.host_groups(host):
            merged.update(self.groups[group].vars)
        merged.update(self.host_vars[host])
        return merged

    def group_hosts(self, group: str) -> list[str]:
        result: list[str] = []
        pending, seen = [group], set()
        while pending:
            name = pending.pop(0)
            if name in seen:
                continue
            seen.add(name)
            result.extend(h for h in self.groups[name].hosts if h not in result)
            pending.extend(self.groups[name].children)
        return [h for h in self.hosts if h in result]

    def match(self, pattern: str) -> list[str]:
        """Resolve an Ansible host pattern: `all`, group, host, globs, `a:b`, `a:&b`, `a:!b`."""
        selected: list[str] = []
        terms = [t.strip() for t in pattern.replace(",", ":").split(":") if t.strip()]
        if not terms:
            raise ErpprovError(f"empty host pattern {pattern!r}", hint="use 'all', a group or a host name")
        for term in terms:
            if term.startswith("!"):
                excluded = self._term(term[1:])
                selected = [h for h in selected if h not in excluded]
            elif term.startswith("&"):
                kept = self._term(term[1:])
                selected = [h for h in selected if h in kept]
            else:
                selected.extend(h for h in self._term(term) if h not in selected)
        return selected

    def _term(self, term: str) -> list[str]:
        if term in ("all", "*"):
            return self.hosts
        if term in self.groups:
            return self.group_hosts(term)
        if term in self.host_vars:
            return [term]
        if any(ch in term for ch in "*?["):
            names = set(fnmatch.filter(self.hosts, term))
            for group in fnmatch.filter(self.groups, term):
                names.update(self.group_hosts(group))
            return [h for h in self.hosts if h in names]
        known = sorted(set(self.groups) | set(self.host_vars))
        raise ErpprovError(
            f"no host or group named {term!r} in {self.path}",
            hint=_did_you_mean(term, known) or f"known: {', '.join(known)}",
        )


def _did_you_mean(word: str, options: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean {close[0]!r}?" if close else None


def load_inventory(path: Path) -> Inventory:
    source = load_yaml(path, what="inventory",
                       missing_hint="create inventory.yaml (erpprov init scaffolds one) or pass -i PATH")
    return build_inventory(source, path)


def build_inventory(source: Source, path: Path) -> Inventory:
    data = source.data if source.data is not None else {}
    inventory = Inventory(path=path, groups={"all": Group("all")}, host_vars={})
    if not isinstance(data, dict):
        raise ErpprovError("an inventory is a mapping of groups, starting with 'all:'", location=source.locate(()))
    for name, body in data.items():
        # Top-level groups other than `all` are children of `all`, as in Ansible.
        _add_group(inventory, source, str(name), body, parent=None if name == "all" else "all", path=(name,))
    return inventory


def _add_group(inv: Inventory, src: Source, name: str, body: Any, parent: str | None, path: tuple[Any, ...]) -> None:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ErpprovError(
            f"group {name!r} must be a mapping with hosts, vars or children",
            location=src.locate(path),
        )
    group = inv.groups.setdefault(name, Group(name))
    if parent and parent not in group.parents:
        group.parents.append(parent)
        if name not in inv.groups[parent].children:
            inv.groups[parent].children.append(name)
    for key in body:
        if key not in _GROUP_KEYS:
            raise ErpprovError(
                f"unknown key {key!r} in group {name!r}",
                location=src.locate(path + (key,), prefer_key=True),
                hint=_did_you_mean(str(key), list(_GROUP_KEYS)) or "a group holds hosts, vars and children",
            )
    group_vars = body.get("vars") or {}
    if not isinstance(group_vars, dict):
        raise ErpprovError(f"vars of group {name!r} must be a mapping", location=src.locate(path + ("vars",)))
    group.vars.update(group_vars)
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise ErpprovError(
            f"hosts of group {name!r} must be a mapping of host names to their variables",
            location=src.locate(path + ("hosts",)),
            hint="write 'hosts: {localhost: {}}' or one host per line ending with ':'",
        )
    for host, hvars in hosts.items():
        hvars = hvars or {}
        if not isinstance(hvars, dict):
            raise ErpprovError(
                f"variables of host {host!r} must be a mapping", location=src.locate(path + ("hosts", host))
            )
        host = str(host)
        if host in inv.groups:
            raise ErpprovError(f"{host!r} is both a group and a host", location=src.locate(path + ("hosts", host)))
        inv.host_vars.setdefault(host, {}).update(hvars)
        if host not in group.hosts:
            group.hosts.append(host)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise ErpprovError(f"children of group {name!r} must be a mapping", location=src.locate(path + ("children",)))
    for child, child_body in children.items():
        if _is_ancestor(inv, str(child), name):
            raise ErpprovError(
                f"group {child!r} cannot be a child of its own descendant {name!r}",
                location=src.locate(path + ("children", child)),
            )
        _add_group(inv, src, str(child), child_body, parent=name, path=path + ("children", child))


def _is_ancestor(inv: Inventory, candidate: str, group: str) -> bool:
    if candidate == group:
        return True
    return any(_is_ancestor(inv, candidate, p) for p in inv.groups.get(group, Group(group)).parents)
