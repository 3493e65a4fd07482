"""`python -m tests.emulator`: serve the emulator on loopback (scripts/develop, tests/e2e)."""

import asyncio
import contextlib

from .control import main

with contextlib.suppress(KeyboardInterrupt):  # pragma: no cover
    asyncio.run(main())
