"""What the code asks of the translations, read with `ast`: keys, placeholders, entity
descriptions, flows, exceptions, repair issues and services (test_translations*.py use it)."""

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
import importlib
import inspect
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.config_entries import ConfigFlow
from homeassistant.const import Platform
from homeassistant.helpers.entity import EntityDescription
import yaml

from custom_components.open115.const import DOMAIN

COMPONENT = Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN
TRANSLATIONS = COMPONENT / "translations"
REQUIRED_LANGUAGES = ("en", "zh-Hans")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
CJK = re.compile(r"[\u4e00-\u9fff]")
PLATFORMS = {platform.value for platform in Platform}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"a": {"b": "x"}}` -> `{"a.b": "x"}`."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _get(tree: dict[str, Any], dotted: str) -> Any:
    """The node at a dotted path, or None."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


STRINGS = _load(COMPONENT / "strings.json")
LANGUAGES = sorted(path.stem for path in TRANSLATIONS.glob("*.json"))
SERVICES: dict[str, Any] = yaml.safe_load((COMPONENT / "services.yaml").read_text()) or {}
ICONS = _load(COMPONENT / "icons.json")


# ----- what the code asks for --------------------------------------------------------------


@dataclass
class _Module:
    name: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]


@dataclass
class Usage:
    """One place in the code that needs a string, and the placeholders it provides."""

    where: str
    key: str
    placeholders: set[str] | None = None  # None: not known statically


@dataclass
class CodeUsage:
    """Everything the code needs, by section."""

    entities: dict[str, list[Usage]] = field(default_factory=dict)  # by platform
    exceptions: list[Usage] = field(default_factory=list)
    issues: list[Usage] = field(default_factory=list)
    steps: dict[str, list[Usage]] = field(default_factory=dict)  # "config" / "options"
    errors: dict[str, list[Usage]] = field(default_factory=dict)
    aborts: dict[str, list[Usage]] = field(default_factory=dict)
    services: list[Usage] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


Env = dict[str, tuple[ast.expr, "ast.FunctionDef | ast.AsyncFunctionDef | None", "Env"]]
Func = ast.FunctionDef | ast.AsyncFunctionDef


class _Scanner:
    """Resolves translation keys statically, following string parameters to their callers."""

    def __init__(self) -> None:
        self.modules = [
            _Module(
                path.stem,
                tree := ast.parse(path.read_text(encoding="utf-8")),
                {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)},
            )
            for path in sorted(COMPONENT.glob("*.py"))
        ]
        self.constants: dict[str, str] = {}
        self.collections: dict[str, set[str]] = {}
        self.ambiguous: set[str] = set()
        self.classes: dict[str, ast.ClassDef] = {}
        for module in self.modules:
            for node in module.tree.body:
                target, value = None, None
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                elif isinstance(node, ast.AnnAssign):
                    target, value = node.target, node.value
                if (
                    isinstance(target, ast.Name)
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    # A name with different values in two modules is not resolved at all.
                    if self.constants.setdefault(target.id, value.value) != value.value:
                        self.ambiguous.add(target.id)
                elif isinstance(target, ast.Name) and (items := _literal_strings(value)):
                    self.collections[target.id] = items
            for node in ast.walk(module.tree):
                if isinstance(node, ast.ClassDef):
                    self.classes[node.name] = node
        for name in self.ambiguous:
            del self.constants[name]

    # --- navigation

    def _module_of(self, node: ast.AST) -> _Module:
        return next(m for m in self.modules if node in m.parents or node is m.tree)

    def _enclosing(self, node: ast.AST, kind: type[ast.AST] | tuple[type[ast.AST], ...]) -> Any:
        parents = self._module_of(node).parents
        while (node := parents.get(node)) is not None:  # type: ignore[assignment]
            if isinstance(node, kind):
                return node
        return None

    def _where(self, node: ast.AST) -> str:
        return f"{self._module_of(node).name}.py:{getattr(node, 'lineno', '?')}"

    def _subclasses(self, name: str) -> set[str]:
        names = {name}
        while True:
            more = {
                cls.name
                for cls in self.classes.values()
                if any(_name_of(base) in names for base in cls.bases)
            } - names
            if not more:
                return names
            names |= more

    def _calls(self) -> Iterator[ast.Call]:
        for module in self.modules:
            yield from (node for node in ast.walk(module.tree) if isinstance(node, ast.Call))

    def _callers(self, func: Func) -> list[tuple[ast.Call, int]]:
        """Calls of a function (or of the class, for `__init__`), with the self offset."""
        cls = self._enclosing(func, ast.ClassDef)
        if func.name == "__init__" and cls is not None:
            names, offset = self._subclasses(cls.name), 1
        else:
            names = {func.name}
            offset = 1 if cls is not None and func.args.args[:1] else 0
        return [(call, offset) for call in self._calls() if _name_of(call.func) in names]

    # --- evaluation

    def envs(self, func: Func | None, exprs: list[ast.expr | None], depth: int = 0) -> list[Env]:
        """Every binding of the function's parameters by its callers (one empty env if none).

        Only followed when the expressions use a parameter of the function.
        """
        if func is None or depth > 5 or not _uses_params(func, exprs):
            return [{}]
        params = [arg.arg for arg in (*func.args.posonlyargs, *func.args.args)]
        kwonly = {arg.arg for arg in func.args.kwonlyargs}
        result: list[Env] = []
        for call, offset in self._callers(func):
            caller = self._enclosing(call, (ast.FunctionDef, ast.AsyncFunctionDef))
            args = [*call.args, *(keyword.value for keyword in call.keywords)]
            for outer in self.envs(caller, args, depth + 1):
                env: Env = {}
                for index, arg in enumerate(call.args):
                    if not isinstance(arg, ast.Starred) and index + offset < len(params):
                        env[params[index + offset]] = (arg, caller, outer)
                extra = []
                for keyword in call.keywords:
                    if keyword.arg in params or keyword.arg in kwonly:
                        env[keyword.arg] = (keyword.value, caller, outer)
                    elif keyword.arg is not None:
                        extra.append(ast.Constant(keyword.arg))
                if func.args.kwarg is not None:
                    env[func.args.kwarg.arg] = (
                        ast.Dict(keys=list(extra), values=list(extra)),
                        caller,
                        outer,
                    )
                result.append(env)
        return result or [{}]

    def strings(self, expr: ast.expr | None, env: Env, func: Func | None) -> set[str] | None:
        """The string values an expression can have, or None when not static."""
        match expr:
            case ast.Constant(value=str() as value):
                return {value}
            case ast.IfExp(
                test=ast.Compare(left=left, ops=[ast.In()], comparators=[ast.Name(id=known)]),
                body=body,
                orelse=orelse,
            ) if ast.dump(left) == ast.dump(body) and known in self.collections:
                # `x if x in KNOWN else "other"`
                rest = self.strings(orelse, env, func)
                return None if rest is None else self.collections[known] | rest
            case ast.IfExp(body=body, orelse=orelse):
                first, second = self.strings(body, env, func), self.strings(orelse, env, func)
                return None if first is None or second is None else first | second
            case ast.JoinedStr(values=parts):
                results = {""}
                for part in parts:
                    inner_expr = part.value if isinstance(part, ast.FormattedValue) else part
                    values = self.strings(inner_expr, env, func)
                    if values is None:
                        return None
                    results = {head + tail for head in results for tail in values}
                return results
            case ast.Name(id=name) if name in env:
                inner, caller, outer = env[name]
                return self.strings(inner, outer, caller)
            case ast.Name(id=name) | ast.Attribute(attr=name) if name in self.constants:
                return {self.constants[name]}
            case ast.Name(id=name) if func is not None:
                return self._local(name, env, func)
        return None

    def _local(self, name: str, env: Env, func: Func) -> set[str] | None:
        """A local variable: the union of everything assigned to it in the function."""
        assigned = [
            node.value
            for node in ast.walk(func)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ]
        found: set[str] = set()
        for value in assigned:
            values = self.strings(value, env, func)
            if values is None:
                return None
            found |= values
        return found or None

    def keys_of(self, expr: ast.expr | None, env: Env, func: Func | None) -> set[str] | None:
        """The keys of a placeholder dict (`{...}`, `x or None`, `None`, `**kwargs`)."""
        match expr:
            case None | ast.Constant(value=None):
                return set()
            case ast.BoolOp(op=ast.Or(), values=[first, *_]):
                return self.keys_of(first, env, func)
            case ast.Dict(keys=keys, values=values):
                found: set[str] = set()
                for key, value in zip(keys, values, strict=True):
                    # `**other` has no key: take the keys of `other`.
                    names = self.strings(key, env, func) if key else self.keys_of(value, env, func)
                    if names is None:
                        return None
                    found |= names
                return found
            case ast.Name(id=name) if name in env:
                inner, caller, outer = env[name]
                return self.keys_of(inner, outer, caller)
        return None

    def usages(
        self, node: ast.AST, key: ast.expr | None, placeholders: ast.expr | bool | None
    ) -> list[Usage]:
        """Resolve a key (and optional placeholders) at a node for every caller binding."""
        func = self._enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        found: list[Usage] = []
        wanted = placeholders if isinstance(placeholders, ast.expr) else None
        for env in self.envs(func, [key, wanted]):
            values = self.strings(key, env, func)
            if values is None:
                raise _UnresolvedError(self._where(node))
            keys = None if placeholders is False else self.keys_of(wanted, env, func)
            found.extend(Usage(self._where(node), value, keys) for value in sorted(values))
        return found


class _UnresolvedError(Exception):
    """A translation key that is not a static string."""


def _literal_strings(value: ast.expr | None) -> set[str]:
    """The strings of a literal collection: `("a", "b")`, `{"a"}`, `frozenset({"a"})`."""
    if isinstance(value, ast.Call) and _name_of(value.func) in {"frozenset", "set", "tuple"}:
        value = value.args[0] if len(value.args) == 1 else None
    if not isinstance(value, ast.Tuple | ast.List | ast.Set) or not value.elts:
        return set()
    items = {e.value for e in value.elts if isinstance(e, ast.Constant)}
    return (
        items if all(isinstance(i, str) for i in items) and len(items) == len(value.elts) else set()
    )


def _uses_params(func: Func, exprs: list[ast.expr | None]) -> bool:
    args = func.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    if args.kwarg is not None:
        params.add(args.kwarg.arg)
    return any(
        isinstance(node, ast.Name) and node.id in params
        for expr in exprs
        if expr is not None
        for node in ast.walk(expr)
    )


def _name_of(func: ast.expr) -> str | None:
    match func:
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _flow_section(cls: ast.ClassDef | None) -> str | None:
    if cls is None:
        return None
    bases = {_name_of(base) or "" for base in cls.bases}
    if any("OptionsFlow" in base for base in bases):
        return "options"
    if any(base.endswith("ConfigFlow") for base in bases):
        return "config"
    return None


ALL_SOURCE = "\n".join(path.read_text() for path in sorted(COMPONENT.glob("*.py")))


def scan_code() -> CodeUsage:
    """Collect every string the integration's code needs."""
    scanner = _Scanner()
    usage = CodeUsage()
    implicit_abort = inspect.signature(ConfigFlow._abort_if_unique_id_configured).parameters
    default_abort = implicit_abort["error"].default

    def add(bucket: list[Usage], node: ast.AST, key: ast.expr | None, ph: Any = False) -> None:
        try:
            bucket.extend(scanner.usages(node, key, ph))
        except _UnresolvedError as err:
            usage.unresolved.append(str(err))

    for module in scanner.modules:
        for node in ast.walk(module.tree):
            cls = scanner._enclosing(node, ast.ClassDef)
            section = _flow_section(cls)
            if isinstance(node, ast.Call):
                name = _name_of(node.func) or ""
                key = _keyword(node, "translation_key")
                placeholders = _keyword(node, "translation_placeholders")
                if key is not None:
                    if name.endswith("EntityDescription"):
                        bucket = usage.entities.setdefault(module.name, [])
                        add(bucket, node, key)
                    elif name in {"async_create_issue", "create_issue"}:
                        add(usage.issues, node, key, placeholders)
                    elif _keyword(node, "translation_domain") is not None:
                        add(usage.exceptions, node, key, placeholders)
                    else:
                        usage.unresolved.append(f"{scanner._where(node)} (unknown kind)")
                if name in {"async_register", "async_register_admin_service"}:
                    index = 2 if name == "async_register_admin_service" else 1
                    service = _keyword(node, "service") or (
                        node.args[index] if len(node.args) > index else None
                    )
                    add(usage.services, node, service)
                if section is not None:
                    if (step := _keyword(node, "step_id")) is not None:
                        description = _keyword(node, "description_placeholders")
                        add(usage.steps.setdefault(section, []), node, step, description)
                    if (reason := _keyword(node, "reason")) is not None:
                        add(usage.aborts.setdefault(section, []), node, reason)
                    elif name == "_abort_if_unique_id_configured":
                        error = _keyword(node, "error") or ast.Constant(default_abort)
                        add(usage.aborts.setdefault(section, []), node, error)
                    elif name in {"async_update_reload_and_abort", "async_update_and_abort"}:
                        # The flow's steps may live in a subclass (config_flow.py over
                        # flow_base.py): any reauth/reconfigure step of the integration counts.
                        for step_name in ("reauth", "reconfigure"):
                            if f"async def async_step_{step_name}(" in ALL_SOURCE:
                                reason_key = ast.Constant(f"{step_name}_successful")
                                add(usage.aborts.setdefault(section, []), node, reason_key)
                    if (errors := _keyword(node, "errors")) is not None and isinstance(
                        errors, ast.Dict
                    ):
                        for value in errors.values:
                            add(usage.errors.setdefault(section, []), node, value)
            elif isinstance(node, ast.Assign) and section is not None:
                for target in node.targets:
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "errors"
                    ):
                        add(usage.errors.setdefault(section, []), node, node.value)
            if (
                isinstance(node, ast.Assign | ast.AnnAssign)
                and module.name in PLATFORMS
                and cls is not None
                and any(
                    isinstance(t, ast.Name) and t.id == "_attr_translation_key"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                )
            ):
                add(usage.entities.setdefault(module.name, []), node, node.value)
    return usage


CODE = scan_code()


def _entity_descriptions() -> Iterator[tuple[str, EntityDescription]]:
    """Every entity description defined at module level in a platform module."""
    for path in sorted(COMPONENT.glob("*.py")):
        if path.stem not in PLATFORMS:
            continue
        module = importlib.import_module(f"custom_components.{DOMAIN}.{path.stem}")
        for value in vars(module).values():
            items = value if isinstance(value, tuple | list) else (value,)
            for item in items:
                # Frozen-or-thawed dataclass magic: isinstance(item, EntityDescription) can fail.
                if type(item).__name__.endswith("EntityDescription"):
                    yield path.stem, item
