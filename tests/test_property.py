"""Randomized fault injection: one entry through random steps, invariants after every step.

Hypothesis draws a list of steps (time passing, consumers asking, restarts, reloads, forced
refreshes, emulator faults, revocation) and runs them in one async test against the loopback
emulator on Home Assistant's frozen clock. After every step it checks:

- the refresh token on disk is the emulator's live one, unless a response was lost in transit;
  an entry in reauth has a cause (a lost response, a revocation or the one-year limit);
- never two refresh requests in flight;
- no refresh while the token is valid beyond the margin, unless forced, asked for by a
  consumer's min_validity or report of a refused token, retrying such a refresh, or after 115
  voided the access token (a revocation, a lost answer in strict mode: the account's reads
  report it);
- refresh requests in any simulated hour stay bounded (no hot loop during an outage), and after
  115 answers 40140117 (rate limited) or an error without a code, the next refresh request
  waits for the slow backoff;
- never two refresh requests of one authorization within 60 s (115's window), restarts
  included (the time of the last request is kept on disk);
- after 115 refused the refresh token for good (revoked, used, expired, dead, the app's access
  lost), no refresh request is ever sent again, restarts included;
- every access token handed to a consumer is live at 115 at that moment (unless a response was
  lost or the authorization revoked), also when 115 voids the old access token at each refresh;
- an unloaded keeper keeps no timer, and no keeper outlives its entry;
- no token text in logs, states, attributes, events or any other stored file.

A restart is an unload and a setup in which consumers die and the keepers' memory is lost (a
refresh in flight ends as Home Assistant's stop lets it, or dies with the process if it hangs);
a reload keeps both. The steps also cancel consumers mid-refresh, reload the entry while a
refresh is in flight, store a new authorization the way a flow does while the old chain's
refresh may be in flight, and make 115 answer a refresh malformed (no expires_in, 0, a float,
a bool, no access token) after rotating.

CI runs a fixed set: the sequences that found bugs (`@example`, each also a plain test in
test_regressions.py) and 150 derandomized examples, about 70 s on 2 cores. A longer hunt with
new examples (about 9 min per 1000 on a busy 2-core machine):

    OPEN115_PROPERTY_RANDOM=1 OPEN115_PROPERTY_EXAMPLES=1000 \
        .venv/bin/python -m pytest tests/test_property.py -p no:cacheprovider
"""

import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from hypothesis import HealthCheck, example, given, settings
import pytest

from custom_components.open115.const import (
    ENV_BASE_URL,
)

from .emulator import (
    FAULT_CODELESS,
    FAULT_HANG,
    YEAR,
)
from .property_invariants import run_scenario
from .property_world import (
    DERANDOMIZE,
    EXAMPLES,
    RATE_LIMITED_FAULT,
    SCENARIOS,
    Ask,
    Fault,
    Force,
    NewAuthorization,
    Reload,
    Restart,
    Revoke,
    Step,
    Wait,
)


@pytest.mark.usefixtures("socket_enabled")
@settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(**SCENARIOS)
# What it found so far (each also a plain test in test_regressions.py), always run.
@example(
    steps=[Fault(FAULT_HANG, 1), Force(), Reload(), Wait(60), Wait(7200)],
    age=0,
    left=700,
    strict=False,
)
@example(
    steps=[Fault(RATE_LIMITED_FAULT, 60), Wait(3600), Restart(), *[Wait(600)] * 6],
    age=0,
    left=700,
    strict=False,
)
@example(
    steps=[Fault(RATE_LIMITED_FAULT, 4), Wait(6600), Reload(), Wait(600)],
    age=0,
    left=7200,
    strict=False,
)
@example(steps=[Fault(RATE_LIMITED_FAULT, 60), Wait(1100), Force()], age=0, left=700, strict=False)
@example(
    steps=[
        Fault(RATE_LIMITED_FAULT, 2),
        Ask(21, True),
        Revoke(40140116),
        Revoke(40140110),
        Restart(),
        Revoke(40140110),
        Ask(66, False),
        Wait(7200),
        Reload(),
        Reload(),
        Force(),
    ],
    age=YEAR - 86400,
    left=700,
    strict=True,
)
@example(
    steps=[
        Wait(688),
        Revoke(40140116),
        Fault(FAULT_CODELESS, 4),
        Wait(1800),
        Reload(),
        Reload(),
        Force(),
        Ask(590, False),
        Revoke(40140137),
        Force(),
        Wait(4281),
        Reload(),
    ],
    age=YEAR - 86400,
    left=7200,
    strict=False,
)
# Issue 17's moves, always run: a consumer giving up mid-refresh, a reload mid-refresh, a
# malformed success answer, new authorizations racing a refresh of the old chain.
@example(steps=[Ask(3600, False, True), Wait(60), Ask(60)], age=0, left=3000, strict=True)
@example(steps=[Reload(True), Ask(60), Wait(120)], age=0, left=700, strict=True)
@example(steps=[Fault("expires_in_bool", 60), Wait(3600)], age=0, left=5, strict=False)
@example(
    steps=[Fault("no_access_token", 1), Ask(100), Wait(600), Restart(), Wait(60)],
    age=0,
    left=5,
    strict=False,
)
@example(
    steps=[Fault(FAULT_HANG, 1), Force(), NewAuthorization(), NewAuthorization(), Wait(60)],
    age=0,
    left=7200,
    strict=False,
)
async def test_random_faults_keep_the_invariants(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[Step],
    age: int,
    left: int,
    strict: bool,
) -> None:
    # Not a parameter: Hypothesis prints a failing example's parameters, and this holds tokens.
    hass_storage: dict[str, Any] = request.getfixturevalue("hass_storage")
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9")  # restored after the test
    caplog.set_level(logging.DEBUG)
    await run_scenario(hass, freezer, hass_storage, caplog, monkeypatch, steps, age, left, strict)
