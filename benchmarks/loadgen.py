"""S3 load generator (aiobotocore) for any S3 endpoint: Shoal, a peer store, or moto.

    python -m benchmarks.loadgen --endpoint http://127.0.0.1:9000 --access-key K \
        --secret-key S [--bucket NAME] [--only small,large] [--quick] [--wrk] \
        [--gateway-pid PID] [--json out.json] [--keep] [--watch SECONDS]

Workloads (``--only`` picks some; default all but ``wrk``, which ``--wrk`` adds, and
``tombstones``, which only ``--only`` runs):
  small   4 KiB PUT then GET, concurrency 32, fixed duration: ops/s, p50/p99
  medium  1 MiB PUT then GET, concurrency 8, fixed duration: MiB/s
  large   64 MiB single-request PUT then GET, concurrency 2, fixed count: MiB/s
  range   random 64 KiB range GETs over one 64 MiB object, concurrency 16: ops/s
  list    2000 keys listed in pages of 1000: ms per full listing (median of 3)
  rss     1 GiB multipart upload streamed from a part generator, then a 1 GiB streamed
          download; with --gateway-pid the gateway tree's RSS is sampled every 100 ms
  wrk     presigned 4 KiB GET and PUT URLs driven by /usr/bin/wrk (one thread, c32),
          then the range workload's random 64 KiB ranges through one presigned URL (c16)
  tombstones  10,000 empty objects PUT then DELETEd beside one live key: ms to list the
          live key (median of 3), at once and every 10 s for --watch seconds, while the
          store collects what the deletes left (Shoal: SHOAL_TOMBSTONE_GRACE)

Every figure is printed beside the load generator's own CPU (process_time over wall
time, in % of one core; for ``wrk``, the wrk child's CPU), so a saturated client is
visible. Payloads are cut once from os.urandom and reused: making data costs nothing
during a timed phase. Objects live under a per-run prefix and are deleted at the end
(with the bucket, if this run created it) unless --keep. Failed operations are counted,
never timed; any failure makes the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from benchmarks.rss import RssSampler

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
WORKLOADS = ("small", "medium", "large", "range", "list", "rss", "wrk", "tombstones")
OPT_IN = ("wrk", "tombstones")  # not in the default run
READ_CHUNK = 1 * MiB
PART_SIZE = 8 * MiB
WRK_LUA = r"""
-- args: METHOD PATHS_FILE [BODY_FILE | range=SIZE,SPAN]; cycles over pre-signed request
-- paths; range= asks each request for a random SPAN-byte range of a SIZE-byte object.
local method, paths, body, idx = "GET", {}, nil, 1
local size, span = nil, nil
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args)
  method = args[1]
  for line in io.lines(args[2]) do paths[#paths + 1] = line end
  local extra = args[3]
  if extra and extra:sub(1, 6) == "range=" then
    size, span = extra:match("range=(%d+),(%d+)")
    size, span = tonumber(size), tonumber(span)
  elseif extra then
    local f = assert(io.open(extra, "rb")); body = f:read("*a"); f:close()
  end
  idx = (id or 0) * 7919 % #paths + 1
end
function request()
  local p = paths[idx]
  idx = idx % #paths + 1
  if size then
    local start = math.random(0, size - span)
    return wrk.format(method, p, {Range = "bytes=" .. start .. "-" .. (start + span - 1)})
  end
  return wrk.format(method, p, nil, body)
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format(
    'LOADGEN {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Phase:
    """Outcome of one timed phase; only successful operations are timed and counted."""

    ops: int = 0
    bytes: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or repr(exc)[:300]

    def summary(self) -> dict[str, float | int | str]:
        lat, wall = sorted(self.latencies), self.wall or 1e-9
        return {
            "ops": self.ops, "bytes": self.bytes, "seconds": round(self.wall, 3),
            "ops_per_s": round(self.ops / wall, 1),
            "mib_per_s": round(self.bytes / MiB / wall, 1),
            "p50_ms": _percentile_ms(lat, 0.50),
            "p99_ms": _percentile_ms(lat, 0.99),
            "errors": self.errors, "first_error": self.first_error,
            "client_cpu_s": round(self.cpu, 3),
            "client_cpu_pct": round(100 * self.cpu / wall, 1),
        }


def _percentile_ms(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in ms (0.0 when there are none)."""
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def drive(
    concurrency: int,
    op: Callable[[int], Awaitable[int]],
    *,
    duration: float | None = None,
    count: int | None = None,
) -> Phase:
    """Run ``op(i)`` (returning bytes moved) from ``concurrency`` workers until ``duration``
    seconds pass or ``count`` operations were started, measuring wall and CPU time."""
    phase, counter = Phase(), itertools.count()
    deadline = time.perf_counter() + (duration if duration is not None else 1e12)

    async def worker() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            if count is not None and i >= count:
                return
            t0 = time.perf_counter()
            try:
                moved = await op(i)
            except Exception as exc:  # a failed op is counted, the run goes on
                phase.fail(exc)
                continue
            phase.latencies.append(time.perf_counter() - t0)
            phase.ops += 1
            phase.bytes += moved

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall, phase.cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return phase


class LoadGen:
    """Runs the workloads against one bucket; collects results and the keys it made."""

    def __init__(self, args: argparse.Namespace, client: Any) -> None:
        self.args, self.s3 = args, client
        self.bucket: str = args.bucket
        self.prefix = f"loadgen-{uuid.uuid4().hex[:8]}"
        self.made: set[str] = set()
        self.results: dict[str, dict] = {}
        self.failed = False
        self.created_bucket = False

    @cached_property
    def pool(self) -> bytes:
        """64 MiB of random bytes, made once; every payload is a prefix of it."""
        return os.urandom(64 * MiB)

    def scale(self, full: float, quick: float) -> float:
        return quick if self.args.quick else full

    def report(self, name: str, figure: str, phase: Phase, who: str = "client",
               **extra: object) -> None:
        """Print one line (figure, then ``who``'s CPU) and keep the figures for --json."""
        result = {**phase.summary(), **extra}
        self.results[name] = result
        self.failed |= phase.errors > 0
        errors = f"  ERRORS {phase.errors}: {phase.first_error}" if phase.errors else ""
        print(f"{name:<13}{figure:<68} | {who} cpu {result['client_cpu_pct']:5.1f}% "
              f"({phase.cpu:.2f} s){errors}", flush=True)

    # -- helpers ------------------------------------------------------------------

    async def put(self, key: str, body: bytes) -> int:
        self.made.add(key)
        await self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return len(body)

    async def get(self, key: str, expect: int, range_: str | None = None) -> int:
        extra = {"Range": range_} if range_ else {}
        resp = await self.s3.get_object(Bucket=self.bucket, Key=key, **extra)
        got = 0
        async with resp["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                got += len(chunk)
        if got != expect:
            raise ValueError(f"GET {key} {range_ or ''}: {got} bytes, expected {expect}")
        return got

    async def put_get(self, name: str, size: int, conc: int, label: str, unit: str, *,
                      duration: float | None = None, count: int | None = None) -> None:
        """PUT distinct keys, then GET random ones of those, with the same stop rule."""
        body, stored = self.pool[:size], []

        async def put_op(i: int) -> int:
            key = f"{self.prefix}/{name}/{i}"
            moved = await self.put(key, body)
            stored.append(key)
            return moved

        phase = await drive(conc, put_op, duration=duration, count=count)
        self.report(f"{name}-put", self.figure(label, conc, phase, unit), phase)
        if not stored:
            return
        phase = await drive(conc, lambda i: self.get(random.choice(stored), size),
                            duration=duration, count=count)
        self.report(f"{name}-get", self.figure(label, conc, phase, unit), phase)

    @staticmethod
    def figure(label: str, conc: int, phase: Phase, unit: str) -> str:
        s = phase.summary()
        rate = f"{s['ops_per_s']:8.1f} ops/s" if unit == "ops" else f"{s['mib_per_s']:8.1f} MiB/s"
        return f"{label} c{conc}: {rate}  p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms"

    # -- workloads ----------------------------------------------------------------

    async def workload_small(self) -> None:
        await self.put_get("small", 4 * KiB, 32, "4 KiB", "ops", duration=self.args.duration)

    async def workload_medium(self) -> None:
        await self.put_get("medium", 1 * MiB, 8, "1 MiB", "mib", duration=self.args.duration)

    async def workload_large(self) -> None:
        await self.put_get("large", 64 * MiB, 2, "64 MiB", "mib", count=int(self.scale(8, 2)))

    def range_object(self) -> tuple[str, int, int]:
        """(key, size, span) of the object the range workloads read from."""
        return f"{self.prefix}/range/object", 64 * MiB, 64 * KiB

    async def workload_range(self) -> None:
        key, size, span = self.range_object()
        await self.put(key, self.pool[:size])

        def op(i: int) -> Awaitable[int]:
            start = random.randrange(0, size - span + 1)
            return self.get(key, span, f"bytes={start}-{start + span - 1}")

        phase = await drive(16, op, count=int(self.scale(500, 100)))
        self.report("range-get", self.figure("64 KiB ranges", 16, phase, "ops"), phase)

    async def workload_list(self) -> None:
        keys = [f"{self.prefix}/list/{i:05d}" for i in range(2000)]
        setup = await drive(32, lambda i: self.put(keys[i], b""), count=len(keys))
        if setup.errors:
            self.report("list-setup", "PUT of 2000 empty objects", setup)
            return
        runs, phase = [], Phase()
        for _ in range(3):
            cpu0, t0 = time.process_time(), time.perf_counter()
            seen = pages = 0
            paginator = self.s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, PaginationConfig={
                    "PageSize": 1000}, Prefix=f"{self.prefix}/list/"):
                seen, pages = seen + len(page.get("Contents", [])), pages + 1
            runs.append(time.perf_counter() - t0)
            phase.cpu += time.process_time() - cpu0
            phase.ops += 1
            if seen != len(keys):
                phase.fail(ValueError(f"listing saw {seen} keys, expected {len(keys)}"))
        phase.wall, phase.latencies = sum(runs), runs
        ms = statistics.median(runs) * 1000
        self.report("list", f"2000 keys, pages of 1000 ({pages} pages): {ms:8.1f} ms", phase,
                    list_ms=round(ms, 1), pages=pages)

    async def workload_tombstones(self) -> None:
        n = int(self.scale(10_000, 1_000))
        prefix = f"{self.prefix}/tomb/"
        keys = [f"{prefix}{i:06d}" for i in range(n)]

        async def delete(i: int) -> int:
            await self.s3.delete_object(Bucket=self.bucket, Key=keys[i])
            self.made.discard(keys[i])
            return 0

        for step, op in (("put", lambda i: self.put(keys[i], b"")), ("delete", delete)):
            phase = await drive(32, op, count=n)
            if phase.errors:
                self.report(f"tomb-{step}", f"{step} of {n} empty objects", phase)
                return
        await self.put(f"{prefix}live", b"x")
        start = time.perf_counter()
        while True:
            phase, since = Phase(), time.perf_counter() - start
            for _ in range(3):
                cpu0, t0 = time.process_time(), time.perf_counter()
                listed = await self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
                phase.latencies.append(time.perf_counter() - t0)
                phase.cpu += time.process_time() - cpu0
                phase.ops += 1
                if [o["Key"] for o in listed.get("Contents", [])] != [f"{prefix}live"]:
                    phase.fail(ValueError(f"listing the live key saw {listed.get('KeyCount')}"))
            phase.wall = sum(phase.latencies)
            ms = statistics.median(phase.latencies) * 1000
            self.report(f"tomb-{since:.0f}s", f"1 key beside {n} deleted, "
                        f"t+{since:3.0f} s: {ms:8.1f} ms", phase, list_ms=round(ms, 1))
            if since + 10 > self.args.watch:
                return
            await asyncio.sleep(10 - (time.perf_counter() - start - since))

    async def workload_rss(self) -> None:
        total, key = int(self.scale(1 * GiB, 128 * MiB)), f"{self.prefix}/rss/object"
        part = self.pool[:PART_SIZE]
        self.made.add(key)

        def parts() -> Iterator[tuple[int, bytes]]:
            """(part number, body) pairs; bodies are the one reused buffer (or a slice)."""
            for number, offset in enumerate(range(0, total, PART_SIZE), start=1):
                yield number, part[: min(PART_SIZE, total - offset)]

        upload = (await self.s3.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        etags: dict[int, str] = {}
        source = parts()

        async def upload_op(_: int) -> int:
            number, body = next(source)
            resp = await self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload,
                                             PartNumber=number, Body=body)
            etags[number] = resp["ETag"]
            return len(body)

        nparts = -(-total // PART_SIZE)
        sampler, t0, cpu0 = self.sampler(), time.perf_counter(), time.process_time()
        phase = await drive(4, upload_op, count=nparts)  # 4 parts in flight, like aws s3 cp
        try:
            if phase.errors:
                raise RuntimeError("a part failed")
            await self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": [
                    {"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]})
        except Exception as exc:
            phase.fail(exc)
            await self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        # The figure covers the whole upload, completion included.
        phase.wall, phase.cpu = time.perf_counter() - t0, time.process_time() - cpu0
        self.rss_report("rss-upload", f"{total // MiB} MiB multipart", phase, sampler)
        if phase.errors:
            return
        sampler = self.sampler()
        phase = await drive(1, lambda i: self.get(key, total), count=1)
        self.rss_report("rss-download", f"{total // MiB} MiB GET", phase, sampler)

    def sampler(self) -> RssSampler | None:
        pid = self.args.gateway_pid
        return RssSampler(pid).start() if pid else None

    def rss_report(self, name: str, label: str, phase: Phase, sampler: RssSampler | None) -> None:
        mem, text = {}, ""
        if sampler is not None:
            sampler.stop()
            mem = sampler.report()
            text = (f"  gw rss {mem['baseline_rss'] / MiB:.0f}->{mem['peak_rss'] / MiB:.0f} MiB"
                    f" (hwm {mem['hwm'] / MiB:.0f})")
        self.report(name, f"{label}: {phase.summary()['mib_per_s']:7.1f} MiB/s{text}", phase,
                    **{f"gateway_{k}": v for k, v in mem.items()})

    async def workload_wrk(self) -> None:
        binary = shutil.which("wrk")
        if binary is None:
            print("wrk          skipped: no wrk binary (apt-get install wrk)", flush=True)
            return
        duration, body = self.args.duration, self.pool[: 4 * KiB]
        get_keys = [f"{self.prefix}/wrk-get/{i}" for i in range(256)]
        put_keys = [f"{self.prefix}/wrk-put/{i}" for i in range(256)]
        await drive(32, lambda i: self.put(get_keys[i], body), count=len(get_keys))
        self.made.update(put_keys)
        with tempfile.TemporaryDirectory(prefix="loadgen-wrk-") as tmp:
            script, body_file = os.path.join(tmp, "presigned.lua"), os.path.join(tmp, "body")
            with open(script, "w") as f:
                f.write(WRK_LUA)
            with open(body_file, "wb") as f:
                f.write(body)

            def wrk(connections: int, method: str, paths: str, *extra: str) -> list[str]:
                return [binary, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                        "-s", script, self.args.endpoint, "--", method, paths, *extra]

            for name, method, client_method, keys, extra in (
                    ("wrk-get", "GET", "get_object", get_keys, []),
                    ("wrk-put", "PUT", "put_object", put_keys, [body_file])):
                paths = await self.presigned_paths(tmp, name, client_method, keys)
                await self.run_wrk(name, wrk(32, method, paths, *extra), "4 KiB presigned c32")
            key, size, span = self.range_object()
            if key not in self.made:
                await self.put(key, self.pool[:size])
            paths = await self.presigned_paths(tmp, "wrk-range", "get_object", [key])
            await self.run_wrk("wrk-range", wrk(16, "GET", paths, f"range={size},{span}"),
                               "64 KiB ranges presigned c16")

    async def presigned_paths(self, tmp: str, name: str, client_method: str,
                              keys: list[str]) -> str:
        """A file of presigned request targets (path?query) for wrk, one per key."""
        paths = os.path.join(tmp, f"{name}.paths")
        with open(paths, "w") as f:
            for key in keys:
                url = await self.s3.generate_presigned_url(
                    client_method, Params={"Bucket": self.bucket, "Key": key})
                parts = urlsplit(url)
                f.write(f"{parts.path}?{parts.query}\n")
        return paths

    async def run_wrk(self, name: str, cmd: list[str], label: str) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        phase = Phase(cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
        line = next((ln for ln in out.decode().splitlines() if ln.startswith("LOADGEN ")), None)
        if proc.returncode != 0 or line is None:
            phase.fail(RuntimeError(f"wrk exited {proc.returncode}: {err.decode()[-300:]}"))
            self.report(name, label, phase, who="wrk")
            return
        stats = json.loads(line.removeprefix("LOADGEN "))
        phase.wall = stats["duration_us"] / 1e6
        phase.ops = stats["requests"] - stats["errors"]
        phase.errors = stats["errors"]
        if phase.errors:
            phase.first_error = "non-2xx or socket errors reported by wrk"
        rate = phase.ops / (phase.wall or 1e-9)
        self.report(name, f"{label}: {rate:8.1f} ops/s  p50 "
                    f"{stats['p50_us'] / 1000:.1f} ms  p99 {stats['p99_us'] / 1000:.1f} ms",
                    phase, who="wrk", p50_ms=stats["p50_us"] / 1000,
                    p99_ms=stats["p99_us"] / 1000)

    # -- bucket set-up and clean-up ---------------------------------------------------

    async def ensure_bucket(self) -> None:
        try:
            await self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            await self.s3.create_bucket(Bucket=self.bucket)
            self.created_bucket = True

    async def cleanup(self) -> None:
        keys = sorted(self.made)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            await self.s3.delete_objects(Bucket=self.bucket,
                                         Delete={"Objects": batch, "Quiet": True})
        if self.created_bucket:
            await self.s3.delete_bucket(Bucket=self.bucket)


def client_config(args: argparse.Namespace) -> AioConfig:
    """Path-style, us-east-1, one retry, a connection per worker of the widest workload."""
    return AioConfig(
        region_name="us-east-1",
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        max_pool_connections=64,
        connect_timeout=10,
        read_timeout=300,
        request_checksum_calculation=args.checksum,
        response_checksum_validation=args.checksum,
    )


async def run(args: argparse.Namespace) -> dict:
    session = get_session()
    async with session.create_client(
        "s3", endpoint_url=args.endpoint, aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key, config=client_config(args),
    ) as s3:
        gen = LoadGen(args, s3)
        await gen.ensure_bucket()
        print(f"loadgen: {args.endpoint} bucket {gen.bucket} prefix {gen.prefix}/"
              f"{' (quick)' if args.quick else ''}", flush=True)
        try:
            for name in args.workloads:
                try:
                    await getattr(gen, f"workload_{name}")()
                except Exception as exc:  # e.g. a set-up PUT failed: report, go on
                    gen.failed = True
                    gen.results[name] = {"errors": 1, "first_error": repr(exc)[:300]}
                    print(f"{name:<13}FAILED: {exc!r}"[:400], flush=True)
        finally:
            if not args.keep:
                await gen.cleanup()
    return {"endpoint": args.endpoint, "quick": args.quick, "failed": gen.failed,
            "checksum": args.checksum, "results": gen.results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="S3 endpoint URL, e.g. http://127.0.0.1:9000")
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--bucket", default="loadgen", help="created if missing (default: loadgen)")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--quick", action="store_true", help="2 s phases, smaller counts and sizes")
    p.add_argument("--duration", type=float,
                   help="seconds per timed phase (default 10, or 2 with --quick)")
    p.add_argument("--wrk", action="store_true", help="also run the presigned-URL wrk mode")
    p.add_argument("--gateway-pid", type=int, help="sample this process tree's RSS (rss)")
    p.add_argument("--checksum", choices=("when_supported", "when_required"),
                   default="when_supported",
                   help="botocore's CRC32 on uploads and its check of a GET's checksum "
                        "header (default: the SDK default)")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--keep", action="store_true", help="leave the objects in place")
    p.add_argument("--watch", type=float, default=0.0,
                   help="seconds to keep listing after the deletes (tombstones)")
    args = p.parse_args(argv)
    chosen = args.only.split(",") if args.only else [w for w in WORKLOADS if w not in OPT_IN]
    if args.wrk and "wrk" not in chosen:
        chosen.append("wrk")
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s) {sorted(unknown)}; choose from {','.join(WORKLOADS)}")
    args.workloads = [w for w in WORKLOADS if w in chosen]
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        # asyncio's own loop, not uvloop: under uvloop aiohttp took 0.48-0.52 s of client
        # CPU per 512 MiB of 64 MiB GETs (a third of it system time), under asyncio 0.29-0.30
        # s; small operations cost the client the same either way.
        report = asyncio.run(run(args))
    except (BotoCoreError, ClientError) as exc:  # unreachable endpoint, bad credentials
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
