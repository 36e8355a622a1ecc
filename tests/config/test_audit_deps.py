"""bin/audit_deps.py, the CI's known-vulnerability gate: OSV matching, offline advisories, and the refusal to pass a
package no source could check. No network: online sources are replaced where a test needs them to fail."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "bin" / "audit_deps.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


audit_deps = _load()
DJANGO = audit_deps.installed()["django"]


def _advisory(tmp: Path, ident: str, events: list[dict[str, str]], **extra: Any) -> None:
    document = {
        "id": ident,
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "Django"}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
        **extra,
    }
    (tmp / f"{ident}.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("affected", "version", "hit"),
    [
        ({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.2.1"}]}]}, "4.2.0", True),
        ({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.2.1"}]}]}, "4.2.1", False),
        ({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "5.0"}, {"fixed": "5.0.3"}]}]}, "4.2.0", False),
        (
            {
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "2.0"}]}
                ]
            },
            "2.5",
            True,
        ),
        ({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4"}]}]}, "1.4", True),
        (
            {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4"}]}]},
            "1.5",
            False,
        ),
        ({"versions": ["2.9.0.post0"]}, "2.9.0.post0", True),
        ({"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}, "1.0", False),
    ],
)
def test_osv_ranges(affected: dict, version: str, hit: bool) -> None:
    assert audit_deps.affects(affected, version) is hit


def test_an_advisory_on_disk_for_an_installed_version_fails_the_run(tmp_path: Path, capsys: Any) -> None:
    _advisory(tmp_path, "GHSA-test-0001", [{"introduced": "0"}, {"fixed": "9999"}])
    _advisory(tmp_path, "GHSA-test-0002", [{"introduced": "0"}, {"fixed": DJANGO}])  # fixed in ours: not reported
    _advisory(tmp_path, "GHSA-test-0003", [{"introduced": "0"}], withdrawn="2026-01-01T00:00:00Z")
    assert audit_deps.main(["--advisories", str(tmp_path), "--offline"]) == 1
    out = capsys.readouterr().out
    assert f"VULNERABLE django=={DJANGO}: GHSA-test-0001 (" in out
    assert "0002" not in out and "0003" not in out
    assert "audit: 1 known vulnerabilities" in out


def test_a_zip_of_advisories_without_a_hit_passes(tmp_path: Path, capsys: Any) -> None:
    _advisory(tmp_path, "GHSA-test-0004", [{"introduced": "0"}, {"fixed": DJANGO}])
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        archive.write(tmp_path / "GHSA-test-0004.json", "GHSA-test-0004.json")
    assert audit_deps.main(["--advisories", str(tmp_path / "all.zip"), "--offline"]) == 0
    assert "audit: 0 known vulnerabilities" in capsys.readouterr().out


def test_a_package_no_source_can_check_fails_unless_accepted_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(audit_deps, "installed", lambda: {"django": DJANGO, "left-pad": "1.0"})
    monkeypatch.setattr(audit_deps, "from_osv", lambda packages: None)
    monkeypatch.setattr(audit_deps, "from_pypi", lambda name, version: [] if name == "django" else None)
    assert audit_deps.main([]) == 1
    assert "left-pad==1.0: UNVERIFIED" in capsys.readouterr().out

    accept = tmp_path / "accept.txt"
    accept.write_text("# held back by an exact pin\nleft_pad==1.0  needed exactly by something\n")
    assert audit_deps.main(["--accept", str(accept)]) == 0
    assert "left-pad==1.0: accepted unverified: needed exactly by something" in capsys.readouterr().out

    accept.write_text("left-pad==1.0\n")  # no reason
    with pytest.raises(SystemExit, match="expected 'name==version  reason'"):
        audit_deps.main(["--accept", str(accept)])


def test_a_known_vulnerability_fails_even_when_the_package_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(audit_deps, "installed", lambda: {"left-pad": "1.0"})
    monkeypatch.setattr(audit_deps, "from_osv", lambda packages: {"left-pad": ["PYSEC-0000-1"]})
    accept = tmp_path / "accept.txt"
    accept.write_text("left-pad==1.0  reason\n")
    assert audit_deps.main(["--accept", str(accept)]) == 1
    assert "VULNERABLE left-pad==1.0: PYSEC-0000-1 (osv.dev)" in capsys.readouterr().out


def test_the_accept_file_names_only_installed_pins() -> None:
    """A stale line (the pin moved on) must be removed, not left to excuse some later version."""
    packages = audit_deps.installed()
    for pin in audit_deps.accepted(ROOT / ".ci" / "audit-accept.txt"):
        name, version = pin.split("==")
        assert packages.get(name) == version, f"{pin} in .ci/audit-accept.txt is not installed"
