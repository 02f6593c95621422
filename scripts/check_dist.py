"""Check the built wheel and sdist (issue 17, point 5): the control room's files, `py.typed`,
the LICENSE and the console script are inside the wheel, its version is pyproject's (the one
place the version is written), and the sdist carries the sources and tests.

Usage: python scripts/check_dist.py DIST_DIR   (after `python -m build --outdir DIST_DIR`)
Exits 1 with one line per problem.
"""

from __future__ import annotations

import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEEL_FILES = (
    "mockserver/__init__.py",
    "mockserver/py.typed",
    "mockserver/web/index.html",
    "mockserver/web/app.js",
    "mockserver/web/style.css",
    "mockserver/web/logo.svg",
)


def problems(dist: Path) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    version = project["version"]
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    found: list[str] = []
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, found {wheels + sdists}"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        found += [f"wheel lacks {name}" for name in WHEEL_FILES if name not in names]
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
            found.append("wheel lacks its LICENSE")
        meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        meta = wheel.read(meta_name).decode() if meta_name else ""
        if f"\nVersion: {version}\n" not in meta:
            found.append(f"wheel METADATA does not say Version: {version}")
        entry = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        points = wheel.read(entry).decode() if entry else ""
        if "allmysms-mock = mockserver.cli:main" not in points:
            found.append("wheel lacks the allmysms-mock console script")
        if "allmysms_mock = mockserver.pytest_plugin" not in points:
            found.append("wheel lacks the pytest11 plugin entry point")
    with tarfile.open(sdists[0]) as sdist:
        members = {m.name.split("/", 1)[-1] for m in sdist.getmembers()}
        for name in ("pyproject.toml", "LICENSE", "README.md", "mockserver/web/index.html"):
            if name not in members:
                found.append(f"sdist lacks {name}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python scripts/check_dist.py DIST_DIR", file=sys.stderr)
        return 2
    found = problems(Path(argv[1]))
    for problem in found:
        print(f"dist: {problem}", file=sys.stderr)
    if not found:
        print(f"dist: wheel and sdist hold what they must ({', '.join(WHEEL_FILES[1:3])}, ...)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
