"""scripts/debian_archive.py: the Debian archive scripts/setup takes from apt's configuration."""

from pathlib import Path
import subprocess
import sys

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "debian_archive.py"
MIRROR = "http://mirror.example/debian"
SECURITY = "http://mirror.example/debian-security"
THIRD_PARTY = "https://apt.example.com/node"


def run(root: Path) -> subprocess.CompletedProcess[str]:
    """The script on a fake root folder."""
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def write(root: Path, name: str, text: str) -> None:
    """A file under <root>/etc/apt/ (sources.list or sources.list.d/<name>)."""
    path = root / "etc" / "apt" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_deb822_main_archive_not_security_nor_third_party(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sources.list.d/aaa-node.sources",
        f"Types: deb\nURIs: {THIRD_PARTY}\nSuites: nodistro\nComponents: main\n",
    )
    write(
        tmp_path,
        "sources.list.d/debian.sources",
        "Types: deb\n"
        "# http://snapshot.example/archive/debian/20250520T000000Z\n"
        f"URIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\n\n"
        f"Types: deb deb-src\nURIs: {MIRROR}/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
    )
    result = run(tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{MIRROR}\n", "")


def test_one_line_sources_list_with_options(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sources.list",
        "# deb http://old.example/debian sid main\n"
        "deb-src http://src.example/debian trixie main\n"
        f"deb {SECURITY} trixie-security main\n"
        f"deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR} "
        "trixie main contrib\n",
    )
    assert run(tmp_path).stdout == f"{MIRROR}\n"


def test_disabled_files_and_stanzas_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "sources.list.d/old.disabled.list", "deb http://old.example/debian sid main\n")
    write(
        tmp_path,
        "sources.list.d/debian.sources.disabled-by-admin",
        "Types: deb\nURIs: http://other.example/debian\nSuites: sid\nComponents: main\n",
    )
    write(
        tmp_path,
        "sources.list.d/off.sources",
        "Types: deb\nURIs: http://off.example/debian\nSuites: sid\nEnabled: no\n",
    )
    write(tmp_path, "sources.list.d/zz.list", f"deb {MIRROR} unstable main\n")
    assert run(tmp_path).stdout == f"{MIRROR}\n"


def test_nothing_usable_fails_with_a_clear_message(tmp_path: Path) -> None:
    write(tmp_path, "sources.list.d/node.list", f"deb {THIRD_PARTY} nodistro main\n")
    write(tmp_path, "sources.list.d/sec.list", f"deb {SECURITY} bookworm-security main\n")
    result = run(tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no Debian archive in" in result.stderr
    assert "set OPEN115_DEBIAN_MIRROR" in result.stderr
