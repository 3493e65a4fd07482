"""Print the Debian archive that this machine's apt configuration uses (for scripts/setup).

Reads <root>/etc/apt/sources.list and <root>/etc/apt/sources.list.d/*.list and *.sources
(one-line and deb822 formats; files named *.disabled* and stanzas with `Enabled: no` are
skipped) and prints the first `deb` URI whose suite is one of Debian's own (a codename such
as bookworm, or stable/testing/unstable): the main archive, not -security/-updates/-backports
and not a third-party repository. Exits 1 with a message on stderr when there is none.
Runs with the system's python3 (3.10 or newer), before any project environment exists.

Usage: python3 scripts/debian_archive.py [ROOT]   (ROOT defaults to /)
"""

import pathlib
import sys

DEBIAN_SUITES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "oldoldstable",
        "oldstable",
        "stable",
        "testing",
        "unstable",
    }
)


def source_files(root: pathlib.Path) -> list[pathlib.Path]:
    """The apt source files in apt's order, without the disabled ones."""
    etc = root / "etc" / "apt"
    parts = etc / "sources.list.d"
    found = [etc / "sources.list"]
    if parts.is_dir():
        found += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    return [p for p in found if p.is_file() and ".disabled" not in p.name]


def one_line_entries(text: str) -> list[tuple[list[str], list[str]]]:
    """(URIs, suites) of the `deb` lines of a sources.list file."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        if "[" in line:  # options: deb [arch=amd64 signed-by=...] URI suite components
            before, _, after = line.partition("[")
            line = before + after.partition("]")[2]
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            entries.append(([words[1]], [words[2]]))
    return entries


def deb822_entries(text: str) -> list[tuple[list[str], list[str]]]:
    """(URIs, suites) of the enabled `Types: deb` stanzas of a .sources file."""
    entries = []
    for stanza in _stanzas(text):
        types = stanza.get("types", "").split()
        if "deb" not in types or stanza.get("enabled", "yes").lower() == "no":
            continue
        entries.append((stanza.get("uris", "").split(), stanza.get("suites", "").split()))
    return entries


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = [{}]
    key = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanzas[-1]:
                stanzas.append({})
            key = None
        elif line[0] in " \t" and key is not None:  # a continuation line
            stanzas[-1][key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            stanzas[-1][key] = value.strip()
    return [s for s in stanzas if s]


def main_archive(root: pathlib.Path) -> str | None:
    """The first Debian archive URI configured for a Debian suite, without a trailing slash."""
    for path in source_files(root):
        text = path.read_text(errors="replace")
        parse = deb822_entries if path.suffix == ".sources" else one_line_entries
        for uris, suites in parse(text):
            if not any(suite in DEBIAN_SUITES for suite in suites):
                continue
            for uri in uris:
                if uri.startswith(("http://", "https://")):
                    return uri.rstrip("/")
    return None


def main() -> int:
    """Print the archive or explain why there is none."""
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/")
    uri = main_archive(root)
    if uri is None:
        print(
            f"no Debian archive in {root / 'etc/apt/sources.list'} or "
            f"{root / 'etc/apt/sources.list.d'} (a `deb` entry over http(s) for a Debian suite "
            "such as bookworm or unstable); set OPEN115_DEBIAN_MIRROR to a Debian archive's URL",
            file=sys.stderr,
        )
        return 1
    print(uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
