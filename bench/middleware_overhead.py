"""The signed-in request path: whop_oauth's middleware + a call to the provider's API as
the user, against the same endpoint with no auth and a fixed ``Authorization`` header.

    python -m bench.middleware_overhead [--requests 30000] [--block 50] [--seconds 2]
        [--wrk-rounds 15] [--connections 16] [--counted-requests 640]
        [--interleaved-rounds 10] [--interleaved-seconds 5] [--interleaved-burst 1]
        [--only in-process|interleaved|pairs|uvicorn|side-by-side|instructions]

Three apps (``bench/_middleware_app.py``), all calling the API through one
``httpx.MockTransport``: ``bare`` (fixed header), ``helper`` (middleware, server-side
session check, ``user_http_client``) and ``auth`` (middleware, ``manager.auth()`` on an
app-owned client). The signed-in ones use a SQLite store and a token that needs no refresh.
Every variant receives the same session cookie, as a browser would send it.

In-process: raw ASGI calls (no HTTP parsing), all variants on one API client, in short
alternating rounds (``--block`` requests each), medians of the process's CPU time per
round (so other load on a shared machine does not count, and drift in the machine's
speed hits every variant alike).
Under uvicorn (1 worker each) + wrk on loopback: rounds of new servers and one short run
per variant in rotating order; each ratio is the median of the per-round ratios, since
runs next to each other share the machine's state; a second server of the bare app
is the control: its ratio shows what the machine's noise alone makes of 1.00x.
Interleaved: one uvicorn serving every variant (``_middleware_app.Together``) and one
wrk sending each request to a variant drawn at random, so whatever the machine does
hits every variant alike, request by request; the server times each request's own
call of its app (CPU time) and reads its own CPU time, and each variant's server time
per request is its own app time plus the share every request costs alike (HTTP
parsing, the event loop). The worker is busy all the time (printed), so its throughput
and latency follow that time, with a fraction of the noise of separate servers; but
each variant runs in a mix, colder in the CPU's caches than in a server of its own.
In pairs: the same, but each variant in a server of its own beside the bare endpoint
only, as a deployment's server holds one app (a mix of five reads about 2 points more).
Side by side: the same four servers at once on one core, a wrk each, so the machine's
noise hits them alike. wrk is Debian's (``bash scripts/install-system-deps.sh --bench``).
Under uvicorn and callgrind: the instructions each server executes per request
(``bench/_callgrind.py``), the same from run to run, where wall-clock ratios on a
shared machine move by several percent.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import _callgrind
from . import _middleware_app as apps
from ._harness import alternate, interval_text, machine_line, print_table
from ._uvicorn import WrkRun, cpu_seconds, start_wrk, uvicorn, wrk, wrk_result

NAMES = {
    "bare": "bare endpoint, fixed header",
    "helper": "middleware + user_http_client",
    "auth": "middleware + manager.auth()",
    "parsed": "bare endpoint, URL parsed once",
}


async def in_process(requests: int, block: int, store_url: str) -> None:
    rounds = requests // block
    async with apps.seeded_manager(store_url, [0]) as manager:
        cookie = apps.cookie(0)  # sent to every variant, as a browser would
        api = apps.api_client()  # one for every variant: only the auth layers differ
        variants = {}
        for variant in (*apps.VARIANTS, "parsed"):
            driver = apps.Driver(apps.build(variant, manager, api))

            async def go(driver: apps.Driver = driver) -> None:
                for _ in range(block):
                    if await driver.get(cookie) != 200:
                        raise RuntimeError("the benchmark app did not answer 200")

            variants[NAMES[variant]] = go
        for _ in range(20):  # warm-up: caches filled, code paths hot
            for run in variants.values():
                await run()
        series = await alternate(variants, rounds=rounds, clock=time.process_time)
    print_table(
        f"in-process (raw ASGI calls): {rounds * block} GETs per variant in {rounds} "
        f"alternating rounds of {block}, CPU time of this process, medians",
        series,
        requests=block,
        floor=NAMES["bare"],
    )
    by_name = {one.name: one.median for one in series}
    print(
        f"  like for like, {NAMES['helper']} over the {NAMES['parsed']} (user_http_client "
        f"parses a path once too): {by_name[NAMES['helper']] / by_name[NAMES['parsed']]:.2f}x"
    )


NOISE = "bare endpoint again (noise)"
INTERLEAVED_NAMES = {"again": NOISE, "middleware": "middleware alone, fixed header"}

#: wrk's request for each connection's next request: a variant drawn at random for each
#: run of ``burst`` requests (a fixed cycle lets the garbage collector fall on the same
#: variants every time).
_DRAW = """math.randomseed({seed})
local paths = {{{paths}}}
local burst, left, path = {burst}, 0, nil
request = function()
  if left == 0 then
    path, left = paths[math.random(#paths)], burst
  end
  left = left - 1
  return wrk.format("GET", path)
end
"""


@dataclass
class Served:
    """One measured run of a ``Together`` server: each app's mean CPU time per call, and
    what every request costs alike (the server's CPU time beyond the apps' own), in µs."""

    app_us: dict[str, float]
    common_us: float
    busy: float

    def ratio(self, name: str) -> float:
        """The server's time per request of ``name`` over the bare endpoint's."""
        return (self.common_us + self.app_us[name]) / (self.common_us + self.app_us["bare"])


def serve_mixed(
    names: tuple[str, ...], seconds: int, connections: int, store_url: str, script: Path, seed: int
) -> Served:
    """A new server of the apps ``names``, warmed for 1 s, then driven for ``seconds``
    by wrk with ``script`` choosing each request's app."""
    with uvicorn("together:" + ",".join(names), store_url, seed=seed) as (url, pid):
        base = url.removesuffix("/me")
        start_wrk(base + "/", apps.cookie(0), 1, connections, script).communicate()
        httpx.get(base + "/times")  # the warm-up's times are dropped
        before = cpu_seconds(pid)
        run = start_wrk(base + "/", apps.cookie(0), seconds, connections, script)
        wrk_result(run.communicate()[0])  # raises on a failed request
        cpu = cpu_seconds(pid) - before
        answer = httpx.get(base + "/times").json()
    if answer["overlaps"]:
        raise RuntimeError(f"{answer['overlaps']} app calls waited: their times overlap")
    times = answer["times"]
    served = sum(len(times[name]) for name in names)
    apps_total = sum(sum(times[name]) for name in names) / 1e3
    common = (cpu * 1e6 - apps_total) / served  # what every request costs alike
    if common <= 0:
        raise RuntimeError("the apps' own times exceed the server's CPU time")
    mean = {name: statistics.fmean(times[name]) / 1e3 for name in names}
    return Served(mean, common, cpu / seconds)


def draw_script(path: Path, names: Iterable[str], seed: int, burst: int = 1) -> Path:
    paths = ", ".join(f'"/{name}/me"' for name in names)
    path.write_text(_DRAW.format(seed=seed, paths=paths, burst=burst))
    return path


def interleaved(
    seconds: int,
    rounds: int,
    connections: int,
    store_url: str,
    names: tuple[str, ...] = apps.TOGETHER,
    burst: int = 1,
) -> None:
    if shutil.which("wrk") is None:
        print("\ninterleaved under uvicorn: skipped (no wrk)")
        return
    app_us: dict[str, list[float]] = {name: [] for name in names}
    common_us: list[float] = []
    busy: list[float] = []
    ratios: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            script = draw_script(Path(tmp) / "draw.lua", names, i + 1, burst)
            run = serve_mixed(names, seconds, connections, store_url, script, i)
            common_us.append(run.common_us)
            busy.append(run.busy)
            for name in names:
                app_us[name].append(run.app_us[name])
                ratios[name].append(run.ratio(name))

    print(
        f"\ninterleaved under uvicorn: one server (1 worker, h11) serving every variant, "
        f"wrk -t1 -c{connections} drawing a variant "
        f"{'per request' if burst == 1 else f'for each {burst} requests'}; {rounds} rounds "
        f"of new servers and {seconds}s runs, medians over rounds"
    )
    print(f"  {'variant':<33} {'app µs/req':>10} {'server µs/req':>13} {'ratio':>6} "
          f"{'95 % interval':>14}")  # fmt: skip
    common = statistics.median(common_us)
    for name in names:
        label = INTERLEAVED_NAMES.get(name) or NAMES[name]
        own = statistics.median(app_us[name])
        interval = "" if name == "bare" else interval_text(ratios[name])
        print(f"  {label:<33} {own:>10.1f} {common + own:>13.1f} "
              f"{statistics.median(ratios[name]):>5.3f}x {interval:>14}")  # fmt: skip
    print(f"  server µs/req: the app's own CPU time plus {common:.1f} µs every request costs")
    print("  alike (HTTP parsing, the event loop), from the server's CPU time; ratio: the")
    print("  median over rounds of that round's ratio to the bare endpoint. The server was")
    print(f"  busy {statistics.median(busy):.0%} of each run (median), so its throughput and")
    print(f"  latency follow its time per request. Every variant runs in a mix of {len(names)},")
    print("  each colder in the CPU's caches than it would be in a server of its own (the")
    print("  reading depends on what the mix holds: README §3)")


#: What ``in_pairs`` serves beside the bare endpoint, one server each.
PAIRED = ("again", "helper", "auth", "middleware", "parsed")


def in_pairs(seconds: int, rounds: int, connections: int, store_url: str) -> None:
    """Interleaved with one variant in the server: the bare endpoint and that variant."""
    if shutil.which("wrk") is None:
        print("\ninterleaved in pairs: skipped (no wrk)")
        return
    ratios: dict[str, list[float]] = {name: [] for name in PAIRED}
    bare_us: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for k in range(len(PAIRED)):  # each round in another order
                name = PAIRED[(i + k) % len(PAIRED)]
                script = draw_script(Path(tmp) / "draw.lua", ("bare", name), i + 1)
                run = serve_mixed(("bare", name), seconds, connections, store_url, script, i)
                ratios[name].append(run.ratio(name))
                bare_us.append(run.common_us + run.app_us["bare"])
    print(
        f"\ninterleaved in pairs: a server (1 worker, h11) for each variant serving it and "
        f"the bare endpoint, wrk -t1 -c{connections} drawing one of the two per request; "
        f"{rounds} rounds of {len(PAIRED)} new servers and {seconds}s runs, medians over rounds"
    )
    print(f"  bare endpoint, fixed header: {statistics.median(bare_us):.1f} µs/req of the server")
    print(f"  {'variant':<33} {'ratio':>6} {'95 % interval':>14}")
    for name in PAIRED:
        label = INTERLEAVED_NAMES.get(name) or NAMES[name]
        print(f"  {label:<33} {statistics.median(ratios[name]):>5.3f}x "
              f"{interval_text(ratios[name]):>14}")  # fmt: skip
    like = [h / p for h, p in zip(ratios["helper"], ratios["parsed"], strict=True)]
    print(f"  like for like, {NAMES['helper']} over the {NAMES['parsed']}: "
          f"{statistics.median(like):.3f}x ({interval_text(like)})")  # fmt: skip
    print("  as interleaved, but each server holds one app beside the bare one, as a server")
    print("  of the issue's setting holds one app: the mix of five reads higher (README §3)")


#: The runs under uvicorn: each variant, and the bare app a second time in its own
#: server, whose ratio to the first is what the machine's noise alone makes of 1.00x.
SERVERS = {"bare": "bare", "bare again": "bare", "helper": "helper", "auth": "auth"}


def round_ratios(
    runs: list[WrkRun], bare: list[WrkRun], field: str, *, inverse: bool = False
) -> list[float]:
    """A server's figure over the bare one's, round by round."""
    ratios = []
    for this, floor in zip(runs, bare, strict=True):
        ratio = float(getattr(this, field)) / float(getattr(floor, field))
        ratios.append(1 / ratio if inverse else ratio)
    return ratios


#: The figures each uvicorn table compares: column heading, WrkRun field, inverse.
COMPARED = (("1/req/s", "rps", True), ("latency", "mean_ms", False), ("CPU", "cpu_us", False))


def print_runs(title: str, runs: dict[str, list[WrkRun]]) -> None:
    """Medians per server, and ratios to the bare one as medians of per-round ratios,
    each with a 95 % interval for that median."""

    def median(label: str, field: str) -> float:
        return float(statistics.median(getattr(run, field) for run in runs[label]))

    # Per label, the per-round ratios of each figure of COMPARED.
    ratios = {
        label: [round_ratios(runs[label], runs["bare"], field, inverse=inverse)
                for _, field, inverse in COMPARED]
        for label in runs
    }  # fmt: skip

    print(title)
    print(f"  {'variant':<31} {'req/s':>6} {'mean':>8} {'p50':>8} {'p99':>8} "
          f"{'server CPU':>13} {'1/req/s':>7} {'latency':>7} {'CPU':>6}")  # fmt: skip
    for label in runs:
        name = NOISE if label == "bare again" else NAMES[label]
        rps, mean = median(label, "rps"), median(label, "mean_ms")
        p50, p99 = median(label, "p50_ms"), median(label, "p99_ms")
        cpu = median(label, "cpu_us")
        throughput, latency, cpu_ratio = (statistics.median(r) for r in ratios[label])
        print(f"  {name:<31} {rps:>6.0f} {mean:>6.2f}ms {p50:>6.2f}ms {p99:>6.2f}ms "
              f"{cpu:>7.0f} µs/req {throughput:>6.2f}x {latency:>6.2f}x "
              f"{cpu_ratio:>5.2f}x")  # fmt: skip
    rounds = len(runs["bare"])
    print(f"  95 % intervals of those medians ({rounds} rounds; order statistics, no")
    print("  assumption about the distribution):")
    for label in runs:
        if label == "bare":
            continue
        name = NOISE if label == "bare again" else NAMES[label]
        spans = []
        for (heading, _, _), per_round in zip(COMPARED, ratios[label], strict=True):
            spans.append(f"{heading} {interval_text(per_round)}")
        print(f"    {name:<31} {', '.join(spans)}")


def under_uvicorn(seconds: int, rounds: int, connections: int, store_url: str) -> None:
    if shutil.which("wrk") is None:
        print("\nuvicorn + wrk: skipped (run `bash scripts/install-system-deps.sh --bench`)")
        return
    cookie = apps.cookie(0)
    runs: dict[str, list[WrkRun]] = {label: [] for label in SERVERS}
    labels = list(SERVERS)
    for i in range(rounds):
        # New servers every round: one process of the same app can run a few percent
        # faster or slower than the next (memory layout), as much as the difference
        # measured here, so each round draws its own. The servers of a round share
        # one hash seed, so no variant gets a luckier dict layout than another.
        with ExitStack() as stack:
            servers = {
                label: stack.enter_context(uvicorn(variant, store_url, seed=i))
                for label, variant in SERVERS.items()
            }
            for label in labels:
                wrk(servers[label][0], cookie, 1, connections)  # warm-up
            shift = i % len(labels)
            for label in labels[shift:] + labels[:shift]:
                url, pid = servers[label]
                # The cookie goes to every variant, as a browser sends it: the bare app's
                # server parses the same bytes.
                runs[label].append(wrk(url, cookie, seconds, connections, pid))

    print_runs(
        f"\nuvicorn (1 worker, h11) + wrk -t1 -c{connections} on loopback: "
        f"{rounds} rounds of new servers and one {seconds}s run each in rotating order, medians",
        runs,
    )
    print("  ratios to the bare endpoint, each the median over rounds of that round's ratio")
    print("  (runs next to each other share the machine's state); 1/req/s: the bare")
    print("  throughput over this one's (> 1: slower); latency: mean latency; CPU: the")
    print("  uvicorn process's CPU time per request. The bare app's second server shows")
    print("  how far from 1.00x the machine's noise alone puts a ratio")


def side_by_side(seconds: int, rounds: int, connections: int, store_url: str) -> None:
    """All four servers at once on one core, each loaded by its own wrk on the other.

    Whatever the machine does meanwhile (another guest taking the CPU, a change of
    clock speed) then hits every server alike, within milliseconds, where the runs
    one after another above each get their own share of it.
    """
    if shutil.which("wrk") is None:
        return
    cookie = apps.cookie(0)
    runs: dict[str, list[WrkRun]] = {label: [] for label in SERVERS}
    for i in range(rounds):
        with ExitStack() as stack:
            servers = {
                label: stack.enter_context(uvicorn(variant, store_url, seed=i))
                for label, variant in SERVERS.items()
            }
            for warm_up in [start_wrk(url, cookie, 1, connections) for url, _ in servers.values()]:
                warm_up.communicate()
            before = {label: cpu_seconds(pid) for label, (_, pid) in servers.items()}
            started = {
                label: start_wrk(url, cookie, seconds, connections)
                for label, (url, _) in servers.items()
            }
            outputs = {label: run.communicate()[0] for label, run in started.items()}
            for label, (_, pid) in servers.items():
                cpu = cpu_seconds(pid) - before[label]
                runs[label].append(wrk_result(outputs[label], cpu))

    print_runs(
        f"\nthe same four servers side by side: all on one core at once, a wrk -t1 "
        f"-c{connections} each on the other; {rounds} rounds of {seconds}s, medians",
        runs,
    )
    print("  each server has a quarter of a core: req/s and latency are a lone server's")
    print("  divided and multiplied by about four; the ratios compare like with like")


def instructions(requests: int, store_url: str) -> None:
    if not _callgrind.available():
        print("\nuvicorn under callgrind: skipped (no valgrind)")
        return
    cookie = apps.cookie(0)
    # The bare app twice, first and last: how far apart its two counts are is how
    # precise the figures are.
    order = ["bare", "helper", "auth", "bare"]
    counts: dict[str, list[float]] = {variant: [] for variant in apps.VARIANTS}
    for variant in order:
        counts[variant].append(
            _callgrind.instructions_per_request(variant, store_url, cookie, requests)
        )
    bare = statistics.mean(counts["bare"])
    print(
        f"\nuvicorn (1 worker, h11) under callgrind: instructions the server executes per "
        f"request, over {requests} GETs on {_callgrind.CONNECTIONS} connections"
    )
    print(f"  {'variant':<31} {'instructions/request':>21} {'ratio':>6}")
    for variant in apps.VARIANTS:
        per = statistics.mean(counts[variant])
        print(f"  {NAMES[variant]:<31} {per:>21,.0f} {per / bare:>5.3f}x")
    first, last = counts["bare"]
    apart = abs(first - last) / bare
    print(f"  the bare server counted twice (first and last): {apart:.2%} apart;")
    print("  instructions, not time: the same every run, but a cache miss counts as one")


async def main(args: argparse.Namespace) -> None:
    print(f"Signed-in request path overhead — {machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.only in (None, "in-process"):
            await in_process(args.requests, args.block, store_url)  # seeds the store too
        else:
            async with apps.seeded_manager(store_url, [0]):  # the servers' store
                pass
        if args.only in (None, "interleaved"):
            await asyncio.to_thread(
                interleaved,
                args.interleaved_seconds,
                args.interleaved_rounds,
                args.connections,
                store_url,
                burst=args.interleaved_burst,
            )
        if args.only in (None, "pairs"):
            await asyncio.to_thread(
                in_pairs,
                args.interleaved_seconds,
                args.interleaved_rounds,
                args.connections,
                store_url,
            )
        if args.only in (None, "uvicorn"):
            await asyncio.to_thread(
                under_uvicorn, args.seconds, args.wrk_rounds, args.connections, store_url
            )
        if args.only in (None, "side-by-side"):
            await asyncio.to_thread(side_by_side, 3, args.wrk_rounds, args.connections, store_url)
        if args.only in (None, "instructions"):
            await asyncio.to_thread(instructions, args.counted_requests, store_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--wrk-rounds", type=int, default=15)
    parser.add_argument("--interleaved-rounds", type=int, default=10)
    parser.add_argument("--interleaved-seconds", type=int, default=5)
    parser.add_argument(
        "--interleaved-burst", type=int, default=1, help="requests in a row to one variant"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--counted-requests", type=int, default=640)
    parser.add_argument(
        "--only",
        choices=["in-process", "interleaved", "pairs", "uvicorn", "side-by-side", "instructions"],
    )
    asyncio.run(main(parser.parse_args()))
