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
 *
 * The verifier works offline: its page is precached at its canonical address /verify/
 * (/verify answers 307 to it) with the scripts and styles that page names, and a response
 * that came through a redirect is stored as a plain copy (a navigation must never be
 * answered with a "redirected" response: Chrome shows its error page instead).
 */
"use strict";

const VERSION = "hh-v3";
const PREFIX = "hh-";
const SHELL_CACHE = `${VERSION}-shell`;
const RUNTIME_CACHE = `${VERSION}-runtime`;
const RUNTIME_MAX_ENTRIES = 120;
const OFFLINE_URL = "/offline.html";
const VERIFY_URL = "/verify/";

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
  // the fairness verifier works offline once installed (with what its page loads)
  VERIFY_URL,
  "/verifier.js",
];

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

/** A response as the cache keeps it: one that followed a redirect becomes a plain copy. */
async function plain(response) {
  if (!response.redirected) return response;
  return new Response(await response.blob(), {
    status: response.status, statusText: response.statusText, headers: response.headers,
  });
}

async function remember(request, response) {
  if (!cacheable(response)) return;
  const cache = await caches.open(RUNTIME_CACHE);
  await cache.put(request, await plain(response));
  await trim(cache);
}

/** Cache ``url`` (a page) and the scripts and styles its HTML names (/assets/...). */
async function precachePage(cache, url) {
  const response = await fetch(new Request(url, { cache: "reload" }));
  if (!response.ok) return;
  const html = await response.clone().text();
  await cache.put(url, await plain(response));
  const assets = new Set(html.match(/\/assets\/[^"'\s)]+\.(?:js|css)/g) || []);
  await Promise.all([...assets].map((a) => cache.add(a).catch(() => undefined)));
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // The offline page must be there; the rest is best effort so that one missing
      // icon cannot stop the worker from installing.
      await cache.add(new Request(OFFLINE_URL, { cache: "reload" }));
      await Promise.all(
        SHELL.filter((u) => u !== OFFLINE_URL && u !== VERIFY_URL).map((u) =>
          cache.add(new Request(u, { cache: "reload" })).catch(() => undefined),
        ),
      );
      await precachePage(cache, VERIFY_URL).catch(() => undefined);
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
  // ignoreVary: the assets precached by the worker were fetched without the page's
  // Origin header, and the server varies them on it
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
    if (cached) return plain(cached);
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
