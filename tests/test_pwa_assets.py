"""The installable-PWA files in assets/: manifest, icons, service worker, offline page,
and the head tags that point the browser at them."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def read_png(path: Path) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Decode an 8-bit RGBA or RGB PNG (enough for our icons): width, height, rows.
    Checks the signature, every chunk's CRC and the IHDR, so a fake file fails."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    pos = 8
    idat = b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[tuple[int, ...]]] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x * channels:(x + 1) * channels]) for x in range(width)])
        prev = line
    return width, height, rows


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((ASSETS / "manifest.webmanifest").read_text())


def test_manifest_has_what_chromium_needs_to_offer_install(manifest: dict) -> None:
    assert manifest["name"] == "HashHouse"
    assert manifest["short_name"]
    assert manifest["description"]
    assert manifest["start_url"] == "/"
    assert manifest["scope"] == "/"
    assert manifest["id"] == "/"
    assert manifest["display"] in ("standalone", "fullscreen", "minimal-ui")
    assert HEX_COLOUR.match(manifest["background_color"])
    assert HEX_COLOUR.match(manifest["theme_color"])
    any_sizes = {i["sizes"] for i in manifest["icons"] if i.get("purpose", "any") == "any"}
    assert {"192x192", "512x512"} <= any_sizes
    maskable = {i["sizes"] for i in manifest["icons"] if i.get("purpose") == "maskable"}
    assert {"192x192", "512x512"} <= maskable
    # Each icon has one purpose: "any maskable" would crop the regular icon badly.
    assert all(i["purpose"] in ("any", "maskable") for i in manifest["icons"])


def test_manifest_icons_are_real_pngs_of_the_declared_sizes(manifest: dict) -> None:
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        path = ASSETS / icon["src"].lstrip("/")
        width, height, _ = read_png(path)
        assert f"{width}x{height}" == icon["sizes"], icon["src"]


def test_maskable_icons_are_full_bleed_with_the_mark_inside_the_safe_zone(
        manifest: dict) -> None:
    bg = tuple(int(manifest["background_color"][i:i + 2], 16) for i in (1, 3, 5))
    for icon in (i for i in manifest["icons"] if i["purpose"] == "maskable"):
        width, height, rows = read_png(ASSETS / icon["src"].lstrip("/"))
        centre = (width - 1) / 2
        safe = 0.40 * width  # the maskable safe zone: a circle of radius 40 %
        for y, row in enumerate(rows):
            for x, px in enumerate(row):
                assert len(px) == 3 or px[3] == 255, "maskable icons must be opaque"
                if ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5 > safe:
                    assert px[:3] == bg, f"{icon['src']}: mark outside safe zone at {x},{y}"
        assert any(px[:3] != bg for row in rows for px in row)  # the mark is drawn


def test_any_purpose_icons_show_the_mark_on_the_brand_background(manifest: dict) -> None:
    for icon in (i for i in manifest["icons"] if i["purpose"] == "any"):
        width, _h, rows = read_png(ASSETS / icon["src"].lstrip("/"))
        colours = {px[:3] for row in rows for px in row if px[3] == 255}
        assert (0x0F, 0x11, 0x15) in colours and (0xF5, 0xB4, 0x00) in colours


def test_apple_touch_icon_and_favicon_exist_and_decode() -> None:
    width, height, rows = read_png(ASSETS / "apple-touch-icon.png")
    assert (width, height) == (180, 180)
    assert all(len(px) == 3 or px[3] == 255 for row in rows for px in row)  # iOS: opaque

    ico = (ASSETS / "favicon.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 2
    sizes = set()
    for n in range(count):
        w, h, _c, _r, _p, _b, size, offset = struct.unpack(
            "<BBBBHHII", ico[6 + 16 * n:22 + 16 * n])
        image = ico[offset:offset + size]
        assert image[:8] == b"\x89PNG\r\n\x1a\n"
        (pw, ph) = struct.unpack(">II", image[16:24])
        assert (pw, ph) == (w or 256, h or 256)
        sizes.add(pw)
    assert {16, 32} <= sizes


def test_icon_generator_reproduces_the_committed_favicon() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_icons",
                                                  ASSETS / "icons" / "make_icons.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pngs = [(s, module.png_bytes(module.render(s, full_bleed=False, scale=0.92)))
            for s in (16, 32, 48)]
    assert module.ico_bytes(pngs) == (ASSETS / "favicon.ico").read_bytes()


# Service worker ---------------------------------------------------------------------
SW_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const ORIGIN = "https://casino.test";
const listeners = {};
const stores = new Map();            // cache name -> Map(url -> Response)
let network = "up";
const fetched = [];
const key = (r) => new URL(typeof r === "string" ? r : r.url, ORIGIN).href;
const cacheFor = (name) => {
  if (!stores.has(name)) stores.set(name, new Map());
  const m = stores.get(name);
  return {
    add: async (r) => { const res = await fakeFetch(r); m.set(key(r), res); },
    put: async (r, res) => { m.set(key(r), res); },
    match: async (r) => m.get(key(r)),
    keys: async () => [...m.keys()].map((url) => ({ url })),
    delete: async (r) => m.delete(key(r)),
  };
};
const caches = {
  open: async (name) => cacheFor(name),
  keys: async () => [...stores.keys()],
  delete: async (name) => stores.delete(name),
  match: async (r) => {
    for (const m of stores.values()) if (m.has(key(r))) return m.get(key(r));
    return undefined;
  },
};
async function fakeFetch(r) {
  const url = key(r);
  fetched.push(url);
  if (network === "down") throw new TypeError("Failed to fetch");
  return new SameOriginResponse("network:" + new URL(url).pathname + new URL(url).search,
                                { status: 200, headers: { "content-type": "text/html" } });
}
// A browser gives same-origin fetches the type "basic"; Node's Response says "default".
class SameOriginResponse extends Response {
  get type() { return "basic"; }
  clone() { const c = super.clone(); Object.setPrototypeOf(c, SameOriginResponse.prototype); return c; }
}
let claimed = false;
const self = {
  location: new URL(ORIGIN + "/sw.js"),
  addEventListener: (type, fn) => { listeners[type] = fn; },
  skipWaiting: async () => {},
  clients: { claim: async () => { claimed = true; } },
};
// In a worker, relative URLs resolve against the worker's location.
class WorkerRequest extends Request {
  constructor(u, init) { super(typeof u === "string" ? new URL(u, ORIGIN).href : u, init); }
}
const ctx = vm.createContext({ self, caches, fetch: fakeFetch, Request: WorkerRequest, Response, URL,
                               Headers, console, Promise });
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), ctx);

async function lifecycle(type) {
  const pending = [];
  listeners[type]({ waitUntil: (p) => pending.push(p) });
  await Promise.all(pending);
}
async function request(url, { method = "GET", mode = "cors", headers = {} } = {}) {
  const req = { url: new URL(url, ORIGIN).href, method, mode, headers: new Headers(headers) };
  let responded = null;
  const pending = [];
  listeners.fetch({ request: req, respondWith: (p) => { responded = p; },
                    waitUntil: (p) => pending.push(p) });
  if (responded === null) return { intercepted: false };
  let body = null;
  try { body = await (await responded).text(); } catch (e) { body = "ERROR:" + e.message; }
  await Promise.all(pending.map((p) => p.catch(() => {})));
  return { intercepted: true, body };
}
(async () => {
  stores.set("hh-v0-shell", new Map());
  stores.set("someone-elses-cache", new Map());
  await lifecycle("install");
  const precached = [...stores.get([...stores.keys()].find((n) => n.endsWith("-shell") && n !== "hh-v0-shell")).keys()];
  await lifecycle("activate");
  const out = { precached, claimed, cachesAfterActivate: [...stores.keys()], requests: {} };
  const cases = [
    ["/_event/?EIO=4&transport=websocket", {}],
    ["/_event", { method: "POST" }],
    ["/api/readyz", {}],
    ["/api/metrics", { mode: "navigate" }],
    ["/_upload/file.png", {}],
    ["/ping", {}],
    ["/login", { method: "POST", mode: "navigate" }],
    ["https://cdn.other.example/lib.js", {}],
    ["/assets/index-abc123.js", {}],
    ["/icons/icon-192.png", {}],
    ["/account", { mode: "navigate" }],
    ["/reset?token=SECRET-TOKEN-123", { mode: "navigate" }],
    ["/games/", { mode: "navigate" }],
  ];
  for (const [url, opts] of cases) out.requests[(opts.method || "GET") + " " + url] = await request(url, opts);
  out.cachedUrlsOnline = [...stores.values()].flatMap((m) => [...m.keys()]);
  network = "down";
  out.offline = {
    account: await request("/account", { mode: "navigate" }),
    neverVisited: await request("/staff/audit", { mode: "navigate" }),
    withoutTrailingSlash: await request("/games", { mode: "navigate" }),
    staticAsset: await request("/assets/index-abc123.js"),
  };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def sw_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    harness = tmp_path_factory.mktemp("sw") / "harness.js"
    harness.write_text(SW_HARNESS)
    proc = subprocess.run([node, str(harness), str(ASSETS / "sw.js")],  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_service_worker_never_intercepts_the_socket_the_api_or_writes(sw_run: dict) -> None:
    req = sw_run["requests"]
    for name in ("GET /_event/?EIO=4&transport=websocket", "POST /_event", "GET /api/readyz",
                 "GET /api/metrics", "GET /_upload/file.png", "GET /ping", "POST /login",
                 "GET https://cdn.other.example/lib.js"):
        assert req[name] == {"intercepted": False}, name


def test_service_worker_serves_static_files_and_pages(sw_run: dict) -> None:
    req = sw_run["requests"]
    assert req["GET /assets/index-abc123.js"]["intercepted"]
    assert req["GET /icons/icon-192.png"]["body"] == "network:/icons/icon-192.png"
    assert req["GET /account"]["body"] == "network:/account"


def test_service_worker_precaches_the_shell_and_drops_old_caches(sw_run: dict) -> None:
    paths = {u.removeprefix("https://casino.test") for u in sw_run["precached"]}
    assert {"/", "/offline.html", "/manifest.webmanifest", "/icons/icon-192.png",
            "/icons/icon-512.png"} <= paths
    assert sw_run["claimed"] is True
    assert "hh-v0-shell" not in sw_run["cachesAfterActivate"]
    assert "someone-elses-cache" in sw_run["cachesAfterActivate"]  # not ours to delete


def test_service_worker_falls_back_to_cached_page_then_offline_page(sw_run: dict) -> None:
    offline = sw_run["offline"]
    assert offline["account"]["body"] == "network:/account"  # the copy seen online
    assert offline["neverVisited"]["body"] == "network:/offline.html"
    # The static server redirects /games to /games/: either spelling finds the copy.
    assert offline["withoutTrailingSlash"]["body"] == "network:/games/"
    assert offline["staticAsset"]["body"] == "network:/assets/index-abc123.js"


def test_service_worker_never_stores_a_query_string(sw_run: dict) -> None:
    assert not any("SECRET-TOKEN" in u for u in sw_run["cachedUrlsOnline"])
    assert "https://casino.test/reset" in sw_run["cachedUrlsOnline"]


# Offline page -----------------------------------------------------------------------
def test_offline_page_is_self_contained_and_csp_friendly() -> None:
    html = (ASSETS / "offline.html").read_text()
    assert "HashHouse" in html or "Hash<span>House" in html
    assert "#0f1115" in html and "#f5b400" in html and "#e8e8ea" in html
    assert re.search(r'<button[^>]*id="reconnect"[^>]*>\s*Reconnect\s*</button>', html)
    assert 'addEventListener("online"' in html
    assert 'addEventListener("click"' in html
    # Nothing fetched from elsewhere, no inline event handler attributes.
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert 'name="viewport" content="width=device-width' in html


# Head tags ----------------------------------------------------------------------------
def test_head_components_link_manifest_icons_and_register_the_worker() -> None:
    from reflex.compiler.utils import create_document_root

    from casino_app.ui.pwa import head_components

    rendered = str(create_document_root(head_components()))
    assert 'href:"/manifest.webmanifest",rel:"manifest"' in rendered
    assert 'content:"#0f1115",name:"theme-color"' in rendered
    assert 'rel:"apple-touch-icon"' in rendered
    assert 'serviceWorker.register(\\"/sw.js\\"' in rendered
    assert '\\"serviceWorker\\" in navigator' in rendered
    for href in re.findall(r'href:"(/[^"]+)"', rendered):
        assert (ASSETS / href.lstrip("/")).is_file(), href
