"""Translations and icons are complete: the languages agree, and every icon is there.

The keys are read from the code itself (with `ast`), never listed here: an entity description,
an exception or repair issue raised with a translation key, a config/options flow step, error or
abort reason, and every service in services.yaml must have its strings, in strings.json,
translations/en.json and translations/zh-Hans.json alike, with the same placeholders.
"""

import re

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
import pytest

from custom_components.open115.const import DOMAIN

from .translation_scan import (
    CJK,
    CODE,
    COMPONENT,
    ICONS,
    LANGUAGES,
    REQUIRED_LANGUAGES,
    SERVICES,
    STRINGS,
    TRANSLATIONS,
    _flatten,
    _get,
    _load,
    _placeholders,
)

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
