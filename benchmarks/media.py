"""Media player benchmark: many clients streaming large objects with range requests.

    python -m benchmarks.media --endpoint http://127.0.0.1:9000 --access-key K --secret-key S
    python -m benchmarks.media --data .shoal-data        # credentials of a `shoal up`

Phases:
  upload   ``--objects`` objects of ``--size-mib`` (one PUT each), into a fresh bucket
  players  ``--clients`` concurrent players; each reads one object from start to end in
           ``--range-mib`` range requests, one after another, the way a video player
           does: time to first byte (request sent -> first body byte) p50/p99 over every
           range request, aggregate MiB/s, and the slowest player's MiB/s
  ttfb     time to first byte of whole-object GETs, one at a time, for each of
           ``--ttfb-sizes`` MiB (the body is abandoned after its first chunk): a
           streaming server's figure does not grow with the size

Reads are anonymous (``--auth anonymous``: the run's bucket gets a public-read policy,
as a public media bucket would) or presigned URLs (``--auth presigned``, for stores
without bucket policies). The client is aiohttp (connection pool of 2 x clients); its
own CPU is printed beside each phase, as in loadgen. The bucket and objects are deleted
at the end unless --keep. Any failed request makes the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

MiB = 1 << 20
READ_CHUNK = 256 * 1024


@dataclass
class Phase:
    ttfb: list[float] = field(default_factory=list)
    bytes: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    errors: int = 0
    first_error: str = ""
    per_client: list[float] = field(default_factory=list)  # MiB/s of each player

    def fail(self, exc: BaseException | str) -> None:
        self.errors += 1
        self.first_error = self.first_error or repr(exc)


def pct_ms(values: list[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in ms."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


class MediaBench:
    def __init__(self, args: argparse.Namespace, s3: Any) -> None:
        self.args = args
        self.s3 = s3
        self.bucket = f"media-bench-{uuid.uuid4().hex[:8]}"
        self.urls: dict[str, str] = {}
        self.payload = os.urandom(max([args.size_mib, *args.ttfb_sizes]) * MiB)

    async def url(self, key: str) -> str:
        if self.args.auth == "presigned":
            return await self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600)
        return f"{self.args.endpoint}/{self.bucket}/{key}"

    async def upload(self, key: str, size: int) -> None:
        await self.s3.put_object(Bucket=self.bucket, Key=key, Body=self.payload[:size],
                                 ContentType="video/mp4")
        self.urls[key] = await self.url(key)

    async def setup(self) -> float:
        await self.s3.create_bucket(Bucket=self.bucket)
        if self.args.auth == "anonymous":
            await self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{self.bucket}/*"}]}))
        started = time.perf_counter()
        for i in range(self.args.objects):
            await self.upload(f"video-{i}.mp4", self.args.size_mib * MiB)
        upload_s = time.perf_counter() - started
        for size in self.args.ttfb_sizes:
            await self.upload(f"size-{size}.mp4", size * MiB)
        return upload_s

    async def cleanup(self) -> None:
        for key in self.urls:
            await self.s3.delete_object(Bucket=self.bucket, Key=key)
        await self.s3.delete_bucket(Bucket=self.bucket)

    async def player(self, http: aiohttp.ClientSession, key: str, phase: Phase) -> None:
        size, step = self.args.size_mib * MiB, self.args.range_mib * MiB
        started, got = time.perf_counter(), 0
        for start in range(0, size, step):
            end = min(start + step, size) - 1
            sent = time.perf_counter()
            try:
                async with http.get(self.urls[key],
                                    headers={"Range": f"bytes={start}-{end}"}) as r:
                    if r.status != 206:
                        phase.fail(f"{key} {start}: HTTP {r.status}")
                        return
                    first = await r.content.readany()
                    phase.ttfb.append(time.perf_counter() - sent)
                    n = len(first)
                    async for chunk in r.content.iter_chunked(READ_CHUNK):
                        n += len(chunk)
            except (TimeoutError, aiohttp.ClientError) as exc:
                phase.fail(exc)
                return
            if n != end + 1 - start:
                phase.fail(f"{key} {start}: {n} bytes")
                return
            got += n
        phase.bytes += got
        phase.per_client.append(got / MiB / (time.perf_counter() - started))

    async def players(self, http: aiohttp.ClientSession) -> Phase:
        phase = Phase()
        keys = [f"video-{i % self.args.objects}.mp4" for i in range(self.args.clients)]
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(self.player(http, key, phase) for key in keys))
        phase.wall, phase.cpu = time.perf_counter() - wall, time.process_time() - cpu
        return phase

    async def first_byte(self, http: aiohttp.ClientSession, size: int) -> Phase:
        phase = Phase()
        for _ in range(self.args.ttfb_runs):
            sent = time.perf_counter()
            try:
                async with http.get(self.urls[f"size-{size}.mp4"]) as r:
                    if r.status != 200 or not await r.content.readany():
                        phase.fail(f"size {size}: HTTP {r.status}")
                        continue
                    phase.ttfb.append(time.perf_counter() - sent)
                    r.close()  # abandon the body, as a player that seeks away does
            except (TimeoutError, aiohttp.ClientError) as exc:
                phase.fail(exc)
        return phase


def _report(name: str, phase: Phase, extra: str = "") -> None:
    error = f"  ERRORS {phase.errors}: {phase.first_error}" if phase.errors else ""
    print(f"{name:<14} ttfb p50 {pct_ms(phase.ttfb, 0.5):7.2f} ms  p99 "
          f"{pct_ms(phase.ttfb, 0.99):7.2f} ms{extra}{error}", flush=True)


async def run(args: argparse.Namespace) -> int:
    config = AioConfig(region_name="us-east-1", signature_version="s3v4",
                       s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                       read_timeout=300, request_checksum_calculation="when_required")
    async with get_session().create_client(
            "s3", endpoint_url=args.endpoint, aws_access_key_id=args.access_key,
            aws_secret_access_key=args.secret_key, config=config) as s3:
        bench = MediaBench(args, s3)
        upload_s = await bench.setup()
        total = args.objects * args.size_mib
        print(f"media: {args.endpoint} bucket {bench.bucket}, {args.auth} reads; uploaded "
              f"{args.objects} x {args.size_mib} MiB in {upload_s:.1f} s "
              f"({total / upload_s:.0f} MiB/s)", flush=True)
        errors = 0
        timeout = aiohttp.ClientTimeout(total=600, sock_read=120)
        connector = aiohttp.TCPConnector(limit=2 * args.clients)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            results: dict[str, Any] = {}
            for size in args.ttfb_sizes:
                phase = await bench.first_byte(http, size)
                _report(f"get {size} MiB", phase, f"  (whole-object GET, {args.ttfb_runs} "
                        "sequential, unloaded)")
                results[f"ttfb_{size}mib"] = {"p50_ms": pct_ms(phase.ttfb, 0.5),
                                              "p99_ms": pct_ms(phase.ttfb, 0.99)}
                errors += phase.errors
            phase = await bench.players(http)
            mibs = phase.bytes / MiB / phase.wall
            slowest = min(phase.per_client, default=0.0)
            _report(f"{args.clients} players", phase,
                    f"  {mibs:7.1f} MiB/s total, slowest player {slowest:.1f} MiB/s, "
                    f"{len(phase.ttfb)} ranges of {args.range_mib} MiB in {phase.wall:.1f} s, "
                    f"client cpu {100 * phase.cpu / phase.wall:.0f}%")
            results["players"] = {
                "clients": args.clients, "ranges": len(phase.ttfb),
                "p50_ms": pct_ms(phase.ttfb, 0.5), "p99_ms": pct_ms(phase.ttfb, 0.99),
                "mib_per_s": round(mibs, 1), "slowest_client_mib_per_s": round(slowest, 1),
                "seconds": round(phase.wall, 2),
                "client_cpu_pct": round(100 * phase.cpu / phase.wall, 1),
                "errors": phase.errors}
            errors += phase.errors
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        if not args.keep:
            await bench.cleanup()
    return 1 if errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint")
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p.add_argument("--data", type=Path, help="a `shoal up` data directory (credentials, "
                   "endpoint) instead of the three flags above")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--objects", type=int, default=4, help="distinct objects the players share")
    p.add_argument("--size-mib", type=int, default=64)
    p.add_argument("--range-mib", type=int, default=1)
    p.add_argument("--ttfb-sizes", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=[1, 16, 64, 256])
    p.add_argument("--ttfb-runs", type=int, default=20)
    p.add_argument("--auth", choices=("anonymous", "presigned"), default="anonymous")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the bucket and objects")
    args = p.parse_args(argv)
    if args.data:
        ident = json.loads((args.data / "cluster.json").read_text())
        runtime = json.loads((args.data / "runtime.json").read_text())
        args.endpoint = args.endpoint or runtime["endpoint"]
        args.access_key, args.secret_key = ident["access_key"], ident["secret_key"]
    if not (args.endpoint and args.access_key and args.secret_key):
        p.error("give --endpoint, --access-key and --secret-key, or --data")
    args.endpoint = args.endpoint.rstrip("/")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.exit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
