/* HashHouse service worker: an installable app shell and an offline page.
 *
 * It never touches live traffic: the Reflex event socket (/_event), uploads (/_upload),
 * other backend endpoints (/_*, /ping), our HTTP API (/api/), non-GET requests and
 * requests to other origins all go straight to the network, as if there were no worker.
 *
 * - static files (/assets/, /icons/, .js .css .woff2 and images): cache first, refreshed
 *   in the background (stale-while-revalidate);
 * - page navigations: network first; offline, the cached copy of that page (stored by
 *   path, never with its query string), else /offline.html;
 * - bump VERSION on a release that changes the shell: activate deletes older caches.
 */
"use strict";

const VERSION = "hh-v3";
const PREFIX = "hh-";
const SHELL_CACHE = `${VERSION}-shell`;
const RUNTIME_CACHE = `${VERSION}-runtime`;
const RUNTIME_MAX_ENTRIES = 120;
const OFFLINE_URL = "/offline.html";

const SHELL = [
  "/",
  OFFLINE_URL,
  "/manifest.webmanifest",
  "/favicon.ico",
  "/apple-touch-icon.png",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
  "/icons/maskable-192.png",
  "/icons/maskable-512.png",
  // the fairness verifier works offline once installed (its page is /verify/: the
  // server redirects /verify there, and a redirect cannot answer a navigation)
  "/verify/",
  "/verifier.js",
  "/verify-page.js",
];

const OFFLINE_PAGES = ["/verify/"];

/** Cache the /assets/ files a cached page's HTML names (modulepreload links, scripts,
 * styles), so that the page renders and runs offline on a first visit. */
async function withAssets(cache, url) {
  const page = await cache.match(url);
  if (!page) return;
  const html = await page.clone().text();
  const found = new Set();
  for (const m of html.matchAll(/(?:href|src)="(\/assets\/[^"?#]+\.(?:js|css))"/g)) {
    found.add(m[1]);
  }
  await Promise.all([...found].map((a) =>
    cache.add(new Request(a, { cache: "reload" })).catch(() => undefined)));
}

const STATIC_EXTENSIONS = /\.(?:js|mjs|css|woff2?|ttf|png|jpe?g|gif|webp|avif|svg|ico|webmanifest)$/;

/** True when the worker must leave this request alone (the browser handles it). */
function bypass(request) {
  if (request.method !== "GET") return true;
  if (request.headers.has("range")) return true;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return true;
  const path = url.pathname;
  return (
    path === "/_event" ||
    path.startsWith("/_event/") ||
    path.startsWith("/_upload") ||
    path === "/api" ||
    path.startsWith("/api/") ||
    path.startsWith("/_") ||
    path === "/ping" ||
    path === "/sw.js"
  );
}

function isStatic(url) {
  return (
    url.pathname.startsWith("/assets/") ||
    url.pathname.startsWith("/icons/") ||
    STATIC_EXTENSIONS.test(url.pathname)
  );
}

function cacheable(response) {
  if (!response || !response.ok || response.type !== "basic") return false;
  const cc = response.headers.get("cache-control") || "";
  return !/no-store/i.test(cc);
}

async function trim(cache) {
  const keys = await cache.keys();
  for (let i = 0; i < keys.length - RUNTIME_MAX_ENTRIES; i += 1) {
    await cache.delete(keys[i]);
  }
}

async function remember(request, response) {
  if (!cacheable(response)) return;
  const cache = await caches.open(RUNTIME_CACHE);
  await cache.put(request, response);
  await trim(cache);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // The offline page must be there; the rest is best effort so that one missing
      // icon cannot stop the worker from installing.
      await cache.add(new Request(OFFLINE_URL, { cache: "reload" }));
      await Promise.all(
        SHELL.filter((u) => u !== OFFLINE_URL).map((u) =>
          cache.add(new Request(u, { cache: "reload" })).catch(() => undefined),
        ),
      );
      // The pages that work offline even if never opened before: their own script
      // chunks and styles too (the build names them in the page's HTML).
      await Promise.all(OFFLINE_PAGES.map((u) => withAssets(cache, u).catch(() => undefined)));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names
          .filter((n) => n.startsWith(PREFIX) && !n.startsWith(`${VERSION}-`))
          .map((n) => caches.delete(n)),
      );
      await self.clients.claim();
    })(),
  );
});

async function staticFirst(event) {
  const request = event.request;
  // ignoreVary: the server's Vary (Accept-Encoding, Origin) would make a module script's
  // request (it carries Origin) miss the copy precached without one
  const cached = await caches.match(request, { ignoreVary: true });
  const refresh = fetch(request).then(async (response) => {
    await remember(request, response.clone());
    return response;
  });
  if (cached) {
    event.waitUntil(refresh.catch(() => undefined));
    return cached;
  }
  return refresh;
}

/** Pages are stored under their path alone: a query string can hold a secret (the
 * password-reset link is /reset?token=...), and it must not be written to disk. */
function pageKey(request) {
  const url = new URL(request.url);
  return `${url.origin}${url.pathname}`;
}

/** A navigation cannot be answered with a response that followed a redirect (Chrome
 * shows its error page): give back a copy that did not. */
async function unredirected(response) {
  if (!response.redirected) return response;
  return new Response(await response.blob(), {
    status: response.status, statusText: response.statusText, headers: response.headers,
  });
}

async function networkFirst(event) {
  const request = event.request;
  const key = pageKey(request);
  try {
    const response = await fetch(request);
    event.waitUntil(remember(key, response.clone()).catch(() => undefined));
    return response;
  } catch (err) {
    // /account and /account/ are the same page (the static server redirects one to
    // the other), so look for either.
    const other = key.endsWith("/") ? key.replace(/\/+$/, "") : `${key}/`;
    const cached = (await caches.match(key)) || (other && (await caches.match(other)));
    if (cached) return unredirected(cached);
    const offline = await caches.match(OFFLINE_URL);
    if (offline) return offline;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (bypass(request)) return; // no respondWith: the network handles it untouched
  if (request.mode === "navigate") {
    event.respondWith(networkFirst(event));
    return;
  }
  if (isStatic(new URL(request.url))) {
    event.respondWith(staticFirst(event));
  }
  // Anything else (same-origin GETs that are neither pages nor static files) is
  // left to the network.
});
