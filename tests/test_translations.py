"""Translations and icons are complete: every string the code asks for exists, in every language.

The keys are read from the code itself (with `ast`), never listed here: an entity description,
an exception or repair issue raised with a translation key, a config/options flow step, error or
abort reason, and every service in services.yaml must have its strings, in strings.json,
translations/en.json and translations/zh-Hans.json alike, with the same placeholders.
"""

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
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.translation import async_get_translations
import pytest
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


# ----- the languages agree ------------------------------------------------------------------


def test_required_languages_exist() -> None:
    assert set(REQUIRED_LANGUAGES) <= set(LANGUAGES)


def test_english_translation_is_strings_json() -> None:
    """Custom integrations ship translations/en.json; it must be strings.json exactly."""
    assert _load(TRANSLATIONS / "en.json") == STRINGS


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_has_exactly_the_keys_of_strings(language: str) -> None:
    expected = set(_flatten(STRINGS))
    actual = set(_flatten(_load(TRANSLATIONS / f"{language}.json")))
    assert sorted(expected - actual) == [], f"missing in {language}.json"
    assert sorted(actual - expected) == [], f"only in {language}.json"


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_keeps_the_placeholders(language: str) -> None:
    translated = _flatten(_load(TRANSLATIONS / f"{language}.json"))
    different = {
        key: (sorted(_placeholders(text)), sorted(_placeholders(translated[key])))
        for key, text in _flatten(STRINGS).items()
        if key in translated and _placeholders(text) != _placeholders(translated[key])
    }
    assert different == {}


@pytest.mark.parametrize("language", ["strings", *LANGUAGES])
def test_every_value_is_a_plain_non_empty_string(language: str) -> None:
    """No empty values and no `[%key:...%]` references: only core resolves those."""
    path = (
        COMPONENT / "strings.json" if language == "strings" else TRANSLATIONS / f"{language}.json"
    )
    bad = {
        key: value
        for key, value in _flatten(_load(path)).items()
        if not isinstance(value, str) or not value.strip() or "[%key:" in value
    }
    assert bad == {}


def test_simplified_chinese_is_translated() -> None:
    """Every zh-Hans string is actually Chinese, not English left behind."""
    untranslated = {
        key: value
        for key, value in _flatten(_load(TRANSLATIONS / "zh-Hans.json")).items()
        if not CJK.search(value)
    }
    assert untranslated == {}


async def test_home_assistant_loads_simplified_chinese(hass: HomeAssistant) -> None:
    """The file name matches Home Assistant's language code, so users get Chinese."""
    tree = _load(TRANSLATIONS / "zh-Hans.json")
    zh = _flatten(tree)
    for category in tree:
        loaded = await async_get_translations(hass, "zh-Hans", category, [DOMAIN])
        expected = {
            f"component.{DOMAIN}.{key}": value
            for key, value in zh.items()
            if key.startswith(f"{category}.")
        }
        assert expected
        assert {key: loaded.get(key) for key in expected} == expected


# ----- the code finds its strings -----------------------------------------------------------


def test_scanner_resolves_every_key_statically() -> None:
    assert CODE.unresolved == []


def test_scanner_sees_the_code() -> None:
    """Guards the scanner itself: each kind of usage is found at least once."""
    assert CODE.entities
    assert CODE.exceptions
    assert CODE.steps.get("config")
    assert CODE.errors.get("config")
    assert CODE.aborts.get("config")
    assert CODE.services


def test_entity_translation_keys_have_names() -> None:
    missing = [
        f"{u.where}: entity.{platform}.{u.key}"
        for platform, usages in CODE.entities.items()
        for u in usages
        if not isinstance(_get(STRINGS, f"entity.{platform}.{u.key}.name"), str)
    ]
    assert missing == []


def test_no_entity_strings_without_an_entity() -> None:
    used = {(p, u.key) for p, usages in CODE.entities.items() for u in usages}
    stale = [
        f"entity.{platform}.{key}"
        for platform, keys in STRINGS.get("entity", {}).items()
        for key in keys
        if (platform, key) not in used
    ]
    assert stale == []


def test_enum_sensor_states_are_translated() -> None:
    descriptions = list(_entity_descriptions())
    assert descriptions
    for platform, description in descriptions:
        options = getattr(description, "options", None)
        if not options:
            continue
        states = _get(STRINGS, f"entity.{platform}.{description.translation_key}.state") or {}
        assert sorted(states) == sorted(options), description.key


def test_entity_descriptions_match_the_scan() -> None:
    """The ast scan and the imported descriptions agree (so the scan misses nothing)."""
    imported = {(p, d.translation_key) for p, d in _entity_descriptions()}
    scanned = {(p, u.key) for p, usages in CODE.entities.items() for u in usages}
    assert scanned == imported


def test_exceptions_have_messages_with_the_given_placeholders() -> None:
    problems = []
    for u in CODE.exceptions:
        message = _get(STRINGS, f"exceptions.{u.key}.message")
        if not isinstance(message, str):
            problems.append(f"{u.where}: no exceptions.{u.key}.message")
        elif u.placeholders is not None and _placeholders(message) != u.placeholders:
            problems.append(f"{u.where}: {u.key} gets {sorted(u.placeholders)}")
    assert problems == []


def test_no_exception_strings_without_a_raise() -> None:
    used = {u.key for u in CODE.exceptions}
    assert sorted(set(STRINGS.get("exceptions", {})) - used) == []


def test_repair_issues_have_strings_with_the_given_placeholders() -> None:
    problems = []
    for u in CODE.issues:
        issue = _get(STRINGS, f"issues.{u.key}")
        if not isinstance(issue, dict) or "title" not in issue:
            problems.append(f"{u.where}: no issues.{u.key}.title")
            continue
        if "description" not in issue and "fix_flow" not in issue:
            problems.append(f"{u.where}: issues.{u.key} has no description or fix_flow")
        needed = _placeholders(issue["title"]) | _placeholders(issue.get("description", ""))
        if u.placeholders is not None and not needed <= u.placeholders:
            problems.append(f"{u.where}: {u.key} needs {sorted(needed - u.placeholders)}")
    assert problems == []
    assert sorted(set(STRINGS.get("issues", {})) - {u.key for u in CODE.issues}) == []


@pytest.mark.parametrize("section", ["config", "options"])
def test_flow_steps_have_strings_with_the_given_placeholders(section: str) -> None:
    problems = []
    for u in CODE.steps.get(section, []):
        step = _get(STRINGS, f"{section}.step.{u.key}")
        if not isinstance(step, dict):
            problems.append(f"{u.where}: no {section}.step.{u.key}")
            continue
        needed = set().union(*(_placeholders(v) for v in _flatten(step).values()))
        if not needed <= (u.placeholders or set()):
            problems.append(f"{u.where}: {u.key} needs {sorted(needed)}")
    assert problems == []
    used = {u.key for u in CODE.steps.get(section, [])}
    assert sorted(set(_get(STRINGS, f"{section}.step") or {}) - used) == []


@pytest.mark.parametrize(("section", "kind"), [("config", "error"), ("config", "abort")])
def test_flow_errors_and_aborts_have_strings(section: str, kind: str) -> None:
    source = CODE.errors if kind == "error" else CODE.aborts
    usages = source.get(section, [])
    defined = _get(STRINGS, f"{section}.{kind}") or {}
    missing = [f"{u.where}: {section}.{kind}.{u.key}" for u in usages if u.key not in defined]
    assert missing == []
    assert sorted(set(defined) - {u.key for u in usages}) == []


def test_options_flow_errors_and_aborts_have_strings() -> None:
    for kind, source in (("error", CODE.errors), ("abort", CODE.aborts)):
        defined = _get(STRINGS, f"options.{kind}") or {}
        usages = source.get("options", [])
        assert sorted({u.key for u in usages} - set(defined)) == []
        assert sorted(set(defined) - {u.key for u in usages}) == []


def test_registered_services_are_described() -> None:
    assert sorted({u.key for u in CODE.services}) == sorted(SERVICES)


def test_services_yaml_and_strings_agree() -> None:
    described = STRINGS.get("services", {})
    assert sorted(described) == sorted(SERVICES)
    for service, spec in SERVICES.items():
        strings = described[service]
        assert isinstance(strings.get("name"), str), service
        assert isinstance(strings.get("description"), str), service
        fields = sorted((spec or {}).get("fields", {}))
        assert sorted(strings.get("fields", {})) == fields, service
        for name in fields:
            assert set(strings["fields"][name]) == {"name", "description"}, (service, name)


# ----- icons --------------------------------------------------------------------------------


def test_icons_cover_every_entity() -> None:
    icons = ICONS.get("entity", {})
    for platform, usages in CODE.entities.items():
        for u in usages:
            icon = _get(icons, f"{platform}.{u.key}")
            assert isinstance(icon, dict), f"no icon for {platform}.{u.key}"
            assert str(icon.get("default", "")).startswith("mdi:"), f"{platform}.{u.key}"
    scanned = {(p, u.key) for p, usages in CODE.entities.items() for u in usages}
    assert {(p, k) for p, keys in icons.items() for k in keys} == scanned


def test_state_icons_match_the_states() -> None:
    for platform, keys in ICONS.get("entity", {}).items():
        for key, icon in keys.items():
            states = _get(STRINGS, f"entity.{platform}.{key}.state") or {}
            assert set(icon.get("state", {})) <= set(states), f"{platform}.{key}"


def test_icons_cover_every_service() -> None:
    icons = ICONS.get("services", {})
    assert sorted(icons) == sorted(SERVICES)
    assert all(str(icon.get("service", "")).startswith("mdi:") for icon in icons.values())


def test_every_icon_is_an_mdi_name() -> None:
    bad = {
        key: value
        for key, value in _flatten(ICONS).items()
        if not re.fullmatch(r"mdi:[a-z0-9-]+", value)
    }
    assert bad == {}
