"""Known-vulnerability audit of every installed distribution (the pinned closure of requirements-dev.txt).

Usage: ``.venv/bin/python bin/audit_deps.py [--advisories PATH] [--offline] [--accept FILE]``

Each package==version is looked up in the first source that can answer for it:

1. ``--advisories PATH``: OSV advisories on disk, a directory of ``*.json`` files or a zip such as OSV's bulk
   ``PyPI/all.zip`` (https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip). Fully offline.
2. OSV's query API (``api.osv.dev``), when reachable and ``--offline`` is not given.
3. PyPI's JSON API: the release's ``vulnerabilities``; where a mirror serves only the project document, its
   ``vulnerabilities`` describe the latest release, so they answer only for a pin that *is* the latest release.

Exit 1 when any installed version has a known vulnerability (listed with its advisory ids), or when a package
could not be checked by any source and is not in the ``--accept`` file (``name==version  reason`` per line): an
unverifiable package is reported, never silently passed. Exit 0 otherwise. Withdrawn advisories are ignored.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import re
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

OSV_QUERY = "https://api.osv.dev/v1/querybatch"
PYPI = "https://pypi.org/pypi"
TIMEOUT = 20


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Finding:
    name: str
    version: str
    advisories: list[str] = field(default_factory=list)
    source: str | None = None  # None: no source could answer


def installed() -> dict[str, str]:
    """Canonical name -> version of every distribution in this interpreter's environment."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonical(name)] = dist.version
    return dict(sorted(found.items()))


# --- OSV advisories on disk ------------------------------------------------------------------------------------
def _advisory_documents(path: Path) -> Iterator[dict]:
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            yield json.loads(file.read_text(encoding="utf-8"))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".json"):
                    yield json.loads(archive.read(member))
    else:
        raise SystemExit(f"--advisories {path}: not a directory of OSV *.json files or a zip of them")


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects(affected: dict, version: str) -> bool:
    """Whether one OSV ``affected`` entry covers ``version`` (listed versions or ECOSYSTEM/SEMVER ranges)."""
    if version in affected.get("versions", ()):
        return True
    mine = _version(version)
    if mine is None:
        return False
    for span in affected.get("ranges", ()):
        if span.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        inside = False  # events are ordered: introduced opens an interval, fixed / last_affected close it
        for event in span.get("events", ()):
            if "introduced" in event:
                start = event["introduced"]
                inside = start == "0" or ((v := _version(start)) is not None and mine >= v)
            elif "fixed" in event and inside and (v := _version(event["fixed"])) is not None and mine >= v:
                inside = False
            elif "last_affected" in event and inside and (v := _version(event["last_affected"])) is not None:
                inside = mine <= v
        if inside:
            return True
    return False


def from_advisories(path: Path, packages: dict[str, str]) -> dict[str, list[str]]:
    """Advisory ids per package from OSV files on disk; every package is answered (an empty list: none known)."""
    hits: dict[str, list[str]] = {name: [] for name in packages}
    for document in _advisory_documents(path):
        if document.get("withdrawn"):
            continue
        for entry in document.get("affected", ()):
            package = entry.get("package", {})
            name = canonical(package.get("name", ""))
            if package.get("ecosystem") == "PyPI" and name in packages and affects(entry, packages[name]):
                hits[name].append(document["id"])
    return hits


# --- Online sources -------------------------------------------------------------------------------------------
def _fetch(url: str, body: dict | None = None) -> dict | None:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - fixed https URLs
            return json.load(response)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        return None


def from_osv(packages: dict[str, str]) -> dict[str, list[str]] | None:
    queries = [{"package": {"ecosystem": "PyPI", "name": n}, "version": v} for n, v in packages.items()]
    answer = _fetch(OSV_QUERY, {"queries": queries})
    if answer is None or len(answer.get("results", ())) != len(queries):
        return None
    return {
        name: [vuln["id"] for vuln in result.get("vulns", ())]
        for name, result in zip(packages, answer["results"], strict=True)
    }


def _ids(vulnerabilities: Iterable[dict]) -> list[str]:
    return [v["id"] for v in vulnerabilities if not v.get("withdrawn")]


def from_pypi(name: str, version: str) -> list[str] | None:
    release = _fetch(f"{PYPI}/{name}/{version}/json")
    if release is not None:
        return _ids(release.get("vulnerabilities") or ())
    project = _fetch(f"{PYPI}/{name}/json")
    if project is not None and project.get("info", {}).get("version") == version:
        return _ids(project.get("vulnerabilities") or ())
    return None


# --- The audit ------------------------------------------------------------------------------------------------
def audit(packages: dict[str, str], *, advisories: Path | None, offline: bool) -> list[Finding]:
    findings = {name: Finding(name, version) for name, version in packages.items()}
    answers: list[tuple[str, dict[str, list[str]]]] = []
    if advisories is not None:
        answers.append((f"advisories {advisories}", from_advisories(advisories, packages)))
    if not offline and advisories is None and (osv := from_osv(packages)) is not None:
        answers.append(("osv.dev", osv))
    for source, hits in answers:
        for name, ids in hits.items():
            findings[name].advisories, findings[name].source = ids, source
    if not offline:
        missing = [f for f in findings.values() if f.source is None]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for finding, ids in zip(missing, pool.map(lambda f: from_pypi(f.name, f.version), missing), strict=True):
                if ids is not None:
                    finding.advisories, finding.source = ids, "pypi.org"
    return list(findings.values())


def accepted(path: Path | None) -> dict[str, str]:
    """``name==version  reason`` lines (``#`` comments) -> reason, keyed by ``name==version``."""
    if path is None:
        return {}
    reasons: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pin, _, reason = line.partition(" ")
        name, sep, version = pin.partition("==")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: expected 'name==version  reason', got {line!r}")
        reasons[f"{canonical(name)}=={version}"] = reason.strip()
    return reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisories", type=Path, help="OSV advisories on disk: a directory of *.json or a zip")
    parser.add_argument("--offline", action="store_true", help="use only --advisories; no network")
    parser.add_argument("--accept", type=Path, help="packages that may stay unverified, with the reason")
    args = parser.parse_args(argv)
    if args.offline and args.advisories is None:
        parser.error("--offline needs --advisories")

    packages = installed()
    findings = audit(packages, advisories=args.advisories, offline=args.offline)
    allowed = accepted(args.accept)
    vulnerable = [f for f in findings if f.advisories]
    unverified = [f for f in findings if f.source is None]
    refused = [f for f in unverified if f"{f.name}=={f.version}" not in allowed]
    sources = sorted({f.source for f in findings if f.source})

    print(f"audit: {len(findings)} installed distributions; sources: {', '.join(sources) or 'none reachable'}")
    for f in vulnerable:
        print(f"  VULNERABLE {f.name}=={f.version}: {', '.join(f.advisories)} ({f.source})")
    for f in unverified:
        reason = allowed.get(f"{f.name}=={f.version}")
        state = f"accepted unverified: {reason}" if reason else "UNVERIFIED: no source could answer"
        print(f"  {f.name}=={f.version}: {state}")
    print(
        f"audit: {len(vulnerable)} known vulnerabilities, {len(findings) - len(unverified)} checked, "
        f"{len(unverified) - len(refused)} accepted unverified, {len(refused)} unverified"
    )
    return 1 if vulnerable or refused else 0


if __name__ == "__main__":
    sys.exit(main())
