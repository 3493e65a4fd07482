"""The code finds its strings: every key the code asks for (read with `ast`, translation_scan.py)
exists, with the placeholders the code gives."""

import pytest

from .translation_scan import (
    CODE,
    SERVICES,
    STRINGS,
    _entity_descriptions,
    _flatten,
    _get,
    _placeholders,
)

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
