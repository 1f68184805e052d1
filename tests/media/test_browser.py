"""A real browser plays Shoal-hosted media: a page on the website endpoint (one origin)
loads a PNG and a WAV from a public media bucket on the S3 endpoint (another origin),
under the media bucket's CORS rules, in headless chromium driven over CDP."""

import asyncio
import base64
import os
import subprocess

import pytest

from tests.harness import SHOAL
from tests.media.cdp import Browser, chromium_path
from tests.media.images import make_png, make_wav, read_png

QUADRANTS = {(0, 0): (230, 40, 40), (1, 0): (40, 200, 60),
             (0, 1): (40, 70, 230), (1, 1): (240, 220, 40)}
WIDTH, HEIGHT = 160, 120
SECONDS = 3.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shoal media</title>
<style>body {{ margin: 0; background: #fff; }}
#pic {{ position: absolute; left: 50px; top: 40px; }}</style></head>
<body>
<img id="pic" crossorigin="anonymous" src="{media}/pic.png">
<audio id="snd" crossorigin="anonymous" preload="metadata" src="{media}/tone.wav"></audio>
<script>
window.results = {{}};
const img = document.getElementById("pic");
img.decode().then(() => {{ results.naturalWidth = img.naturalWidth; }},
                  (e) => {{ results.imageError = String(e); }});
const snd = document.getElementById("snd");
snd.addEventListener("canplay", () => {{ results.canplay = true; }}, {{once: true}});
snd.addEventListener("error", () => {{ results.audioError = snd.error.code; }});
window.seekMiddle = () => new Promise((done) => {{
  snd.addEventListener("seeked", () => done(snd.currentTime), {{once: true}});
  snd.currentTime = snd.duration / 2;
}});
// A non-simple request: the browser must pass a preflight before it is sent, and may
// read the ETag only because the rule exposes it.
fetch("{media}/pic.png", {{headers: {{"x-amz-meta-probe": "1"}}}}).then(
  (r) => {{ results.fetch = {{status: r.status, etag: r.headers.get("ETag")}}; }},
  (e) => {{ results.fetch = {{error: String(e)}}; }});
</script></body></html>
"""


def quadrant_color(x: int, y: int) -> tuple[int, int, int]:
    return QUADRANTS[(2 * x // WIDTH, 2 * y // HEIGHT)]


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: scripts/bootstrap installs it")
        pytest.skip("chromium is not installed (SHOAL_WITH_TEST_TOOLS=1 scripts/bootstrap)")
    return path


def test_page_shows_image_and_plays_and_seeks_audio(media_cluster, s3, chromium,
                                                   tmp_path) -> None:
    suffix = os.urandom(4).hex()
    media, site = f"media-{suffix}", f"site-{suffix}"
    media_url = f"{media_cluster.endpoint}/{media}"
    web_origin = media_cluster.website_endpoint
    for name in (media, site):
        s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=media, Key="pic.png", Body=make_png(WIDTH, HEIGHT, quadrant_color))
    wav = make_wav(SECONDS)
    s3.put_object(Bucket=media, Key="tone.wav", Body=wav)  # types guessed from the names
    s3.put_object(Bucket=site, Key="index.html", Body=PAGE.format(media=media_url).encode())
    for name in (media, site):
        done = subprocess.run([str(SHOAL), "bucket", "public", name, "--data",
                               str(media_cluster.data)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    s3.put_bucket_cors(Bucket=media, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [web_origin], "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["range", "x-amz-meta-*"], "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 60}]})
    etag = s3.head_object(Bucket=media, Key="pic.png")["ETag"]

    asyncio.run(_browse(tmp_path / "profile", f"{web_origin}/{site}/", media_url, etag,
                        len(wav)))


async def _browse(profile, page_url: str, media_url: str, etag: str, wav_size: int) -> None:
    async with Browser(profile) as browser:
        await browser.send("Network.enable")
        await browser.send("Page.enable")
        await browser.send("Page.navigate", url=page_url)
        loaded = await browser.wait_for(
            "window.results && results.naturalWidth && results.canplay && results.fetch"
            " && results")
        assert loaded, await browser.evaluate("JSON.stringify(window.results)")
        assert loaded["naturalWidth"] == WIDTH
        assert loaded["fetch"] == {"status": 200, "etag": etag}  # preflight passed
        preflights = browser.find("Network.responseReceived",
                                  lambda p: p["response"]["url"].endswith("/pic.png")
                                  and p["type"] == "Preflight")
        assert [p["response"]["status"] for p in preflights] == [200]

        middle = await browser.evaluate("seekMiddle()")
        assert abs(middle - SECONDS / 2) < 0.1

        def seek_answered(p: dict) -> bool:
            response = p["response"]
            headers = {k.lower(): v for k, v in response["headers"].items()}
            start = headers.get("content-range", "bytes 0-").split()[1].split("-")[0]
            return (response["url"] == f"{media_url}/tone.wav" and response["status"] == 206
                    and int(start) > wav_size // 4)

        for _ in range(100):
            if browser.find("Network.responseReceived", seek_answered):
                break
            await asyncio.sleep(0.1)
        wav_answers = [(p["response"]["status"], p["response"]["headers"])
                       for p in browser.find("Network.responseReceived",
                                             lambda p: p["response"]["url"].endswith(".wav"))]
        assert browser.find("Network.responseReceived", seek_answered), wav_answers

        rect = await browser.evaluate(
            "(() => { const r = document.getElementById('pic').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()")
        assert rect == [50, 40, WIDTH, HEIGHT]
        shot = await browser.send("Page.captureScreenshot", format="png")
        _, _, pixel = read_png(base64.b64decode(shot["data"]))
        for (qx, qy), color in QUADRANTS.items():
            x = 50 + WIDTH // 4 + qx * WIDTH // 2
            y = 40 + HEIGHT // 4 + qy * HEIGHT // 2
            seen = pixel(x, y)
            assert all(abs(a - b) <= 10 for a, b in zip(seen, color, strict=True)), (
                (qx, qy), seen, color)
        assert all(v >= 245 for v in pixel(20, 20))  # the page around it is white
