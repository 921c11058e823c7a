"""`make mutation`: mutmut on the security-critical modules, one table, a gate.

mutmut writes a ``mutants/`` tree into its working directory, so it never runs in
the checkout: the files git knows (tracked and untracked-but-not-ignored, as they
are in the working tree now) are copied to ``.mutation/<run>/`` (git-ignored) and
mutmut runs there, one run per test selection. Afterwards each module gets a row:
killed / total / score (every mutant counts: survived, no tests and timeouts are
not killed), and the survivors that ``tests/mutation/survivors.txt`` does not
explain. Exit status 1 when a module scores under 90 % or a survivor is unlisted.

Only tests that run in the pytest process can see a mutant: tests that start
worker processes or real servers import the unmutated install, so the slow,
browser, redis and postgres markers and the soak/independent folders are left out.

    python scripts/mutation.py                              # every module
    python scripts/mutation.py --module whop_oauth._callback --max-children 1
    python scripts/mutation.py --module whop_oauth._callback --again   # survivors only

``--again`` reuses the last run's work dir and reruns only what it left alive (and
the mutants of functions changed since), with the tests as they are now: quick while
writing tests; a plain run rechecks everything.

Inspect a run afterwards: ``cd .mutation/<run> && ../../.venv/bin/mutmut show <mutant>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
SURVIVORS = ROOT / "tests" / "mutation" / "survivors.txt"
THRESHOLD = 90.0

#: Test folders each group of modules is checked against (missing paths are skipped).
SELECTIONS: dict[str, list[str]] = {
    "client": ["tests/client", "tests/security", "tests/testing"],
    "manager": ["tests/manager", "tests/stores", "tests/starlette", "tests/test_multi_tenant.py"],
    "starlette": ["tests/starlette"],
}

#: The modules under test (issue 11) and the selection each runs with.
MODULES: dict[str, str] = {
    "whop_oauth._callback": "client",
    "whop_oauth._token_response": "client",
    "whop_oauth._id_token": "client",
    "whop_oauth._manager": "manager",
    "whop_oauth._manager_sessions": "manager",
    "whop_oauth._manager_users": "manager",
    "whop_oauth._user_auth": "manager",
    "whop_oauth._origins": "manager",  # where UserTokenAuth and APIKeyAuth may send a credential
    "whop_oauth._session_registry": "manager",
    "whop_oauth.stores._sessions": "manager",
    "whop_oauth.stores._lease": "manager",
    "whop_oauth.stores._crypto": "manager",
    "whop_oauth.starlette._cookies": "starlette",
    # Which cookie the middleware reads, and from which headers.
    "whop_oauth.starlette._cookie_header": "starlette",
    # The session each Cookie header verified to, remembered how long.
    "whop_oauth.starlette._policy": "starlette",
    # How each of the request path's memories stays bounded.
    "whop_oauth._bounded": "starlette",
    # user_http_client: where a user's token goes, and with which metadata.
    "whop_oauth.starlette._helpers": "starlette",
    # Every request's session check and cookie write, and who request.user says it is.
    "whop_oauth.starlette._middleware": "starlette",
    "whop_oauth.starlette._backend": "starlette",
}

#: What no mutant can reach: other processes, real servers, a browser.
EXCLUDED_MARKERS = "not slow and not browser and not redis and not postgres"
EXCLUDED_DIRS = ["tests/soak", "tests/independent"]
#: Tests that wait on a short wall clock against a server thread: on a loaded machine (a
#: mutation run is one) they fail unmutated, and a failing stats run stops mutmut.
EXCLUDED_TESTS = "not (fault_during_refresh and timeout)"

#: mutmut's exit codes that mean "a test failed on the mutant".
KILLED_EXIT_CODES = {1, 3}


@dataclass
class ModuleResult:
    module: str
    exit_codes: dict[str, int | None]
    listed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def killed(self) -> int:
        return sum(code in KILLED_EXIT_CODES for code in self.exit_codes.values())

    @property
    def total(self) -> int:
        return len(self.exit_codes)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def module_path(module: str) -> str:
    return "src/" + module.replace(".", "/") + ".py"


def git_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files that exist in the working tree."""
    git = shutil.which("git") or "git"
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    names = sorted({name for name in out.split("\0") if name})
    return [name for name in names if (ROOT / name).is_file()]


def copy_tree(dest: Path, *, keep: bool = False) -> list[str]:
    """A copy of the working tree's files in ``dest`` (fresh unless ``keep``); their names."""
    if dest.exists() and not keep:
        shutil.rmtree(dest)
    files = git_files()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return files


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def mutmut_config(modules: list[str], selection: list[str], files: list[str]) -> str:
    tests = [path for path in selection if (ROOT / path).exists()]
    # mutmut copies src/ and tests/ into mutants/, where the tests run; the rest of the
    # tree (examples/, README.md...) is what some tests import or read.
    rest = sorted({name.split("/")[0] for name in files} - {"src", "tests"})
    args = [*tests, "-m", EXCLUDED_MARKERS, "-k", EXCLUDED_TESTS, "-p", "no:cacheprovider"]
    args += [f"--ignore={path}" for path in EXCLUDED_DIRS]
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"also_copy = {toml_list(rest)}",
            f"only_mutate = {toml_list([module_path(m) for m in modules])}",
            f"pytest_add_cli_args_test_selection = {toml_list(args)}",
            'pytest_add_cli_args = ["-q"]',
            # the work dir sits inside the checkout: keep mutmut away from its git state
            "use_git_change_detection = false",
            # a mutant that makes a lock wait forever uses no CPU: give up after 5x the tests' time
            "timeout_multiplier = 5.0",
            "",
        ]
    )


def forget_survivors(dest: Path, modules: list[str]) -> int | None:
    """Mark the mutants a previous run in ``dest`` left alive as not checked, so that
    mutmut runs them again (with those of functions changed since); how many, or None
    if there is no previous run."""
    count = 0
    for module in modules:
        meta = dest / "mutants" / (module_path(module) + ".meta")
        if not meta.exists():
            return None
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code not in KILLED_EXIT_CODES:
                codes[name] = None
                count += 1
        meta.write_text(json.dumps(data, indent=4))
    # Which tests reach which function is collected again: kept stats only learn about
    # new tests, so a changed or new function would miss the old tests that reach it.
    (dest / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    return count


def run_group(name: str, modules: list[str], max_children: int, *, again: bool) -> Path:
    """Copy the tree, configure mutmut for ``modules``, run it; the work dir.

    ``again``: only the mutants the last run here left alive, against today's tests.
    """
    dest = WORK / name
    rerun = forget_survivors(dest, modules) if again else None
    files = copy_tree(dest, keep=rerun is not None)
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as config:
        config.write(mutmut_config(modules, SELECTIONS[MODULES[modules[0]]], files))
    print(f"== mutmut on {', '.join(modules)} (in {dest.relative_to(ROOT)})", flush=True)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    if rerun is not None:
        print(f"   again: {rerun} mutants not killed last time, and any changed since", flush=True)
    finished = subprocess.run(command, cwd=dest, check=False)  # noqa: S603 - fixed arguments
    if finished.returncode != 0:
        sys.exit(f"mutmut failed in {dest} (exit {finished.returncode}); its output is above")
    return dest


def load_result(dest: Path, module: str, listed: set[str]) -> ModuleResult:
    meta = dest / "mutants" / (module_path(module) + ".meta")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    result = ModuleResult(module, codes)
    for name, code in sorted(codes.items(), key=lambda item: natural(item[0])):
        if code not in KILLED_EXIT_CODES:
            (result.listed if name in listed else result.unlisted).append(name)
    return result


def natural(name: str) -> tuple[str, int]:
    """``f__mutmut_2`` before ``f__mutmut_10``."""
    stem, _, number = name.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def read_survivors() -> dict[str, str]:
    """``<mutant name>  <reason>`` per line; ``#`` starts a comment."""
    listed: dict[str, str] = {}
    for line in SURVIVORS.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{SURVIVORS.relative_to(ROOT)}: {name} has no reason")
            listed[name] = reason.strip()
    return listed


def status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return str(status_by_exit_code[code])


def report(results: list[ModuleResult], listed: dict[str, str]) -> bool:
    width = max(len(r.module) for r in results)
    print(f"\n{'module':<{width}}  killed / total   score  listed  unlisted")
    for r in results:
        print(
            f"{r.module:<{width}}  {r.killed:>6} / {r.total:<5} {r.score:5.1f} %"
            f"  {len(r.listed):>6}  {len(r.unlisted):>8}"
        )
    ok = True
    for r in results:
        if r.score < THRESHOLD:
            ok = False
            print(f"\nFAIL {r.module}: {r.score:.1f} % is under {THRESHOLD:.0f} %")
        if r.unlisted:
            ok = False
            print(f"\nFAIL {r.module}: survivors not in {SURVIVORS.relative_to(ROOT)}:")
            for name in r.unlisted:
                print(f"    {name}  ({status(r.exit_codes[name])})")
    seen = {name for r in results for name in r.exit_codes}
    mine = tuple(r.module + "." for r in results)
    killed = {n for r in results for n, c in r.exit_codes.items() if c in KILLED_EXIT_CODES}
    stale = sorted(n for n in listed if n.startswith(mine) and (n not in seen or n in killed))
    if stale:
        print(f"\nnote: listed in {SURVIVORS.relative_to(ROOT)} but killed or gone (remove them):")
        for name in stale:
            print(f"    {name}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--module",
        action="append",
        choices=sorted(MODULES),
        metavar="MODULE",
        help=f"run only this module (repeatable); default: all of {', '.join(MODULES)}",
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--again",
        action="store_true",
        help="rerun only the mutants the last run left alive, with the current tests "
        "(quick while killing survivors; a plain run rechecks everything)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    modules = args.module or list(MODULES)
    listed = read_survivors()

    groups: dict[str, list[str]] = {}
    for module in modules:
        groups.setdefault(MODULES[module], []).append(module)
    results: list[ModuleResult] = []
    for group, members in groups.items():
        name = members[0] if args.module else group
        dest = run_group(name, members, args.max_children, again=args.again)
        results += [load_result(dest, module, set(listed)) for module in members]

    ok = report(results, listed)
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    print(f"\nmake mutation: {minutes} min {seconds} s, {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
