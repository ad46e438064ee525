// The service worker: the app opens without the network.
//
// - The page itself (any navigation) goes to the network first, so a new release is picked up
//   on the first reload that reaches the server; the last page fetched is kept and answers
//   when the server cannot be reached.
// - Files whose names carry trunk's content hash (`frontend-<16 hex>.js`, `..._bg.wasm`,
//   `style-<16 hex>.css`; fewer digits when the hash starts with zeros) never change: they are answered from the cache, fetched once.
//   After each page fetched from the network, the hashed files that page no longer names are
//   dropped, so old releases do not pile up and a stale app is never stuck.
// - Other files of the app (the manifest, the icon) go to the network first, the cache after.
// - The API and the WebSocket are never cached here: messages are kept by the app itself.
"use strict";

const CACHE = "chat-app-v1";
const PAGE = "/";
// Trunk writes the hash without leading zeros: 16 hex digits, sometimes fewer.
const HASHED = /-[0-9a-f]{12,16}[._][^/]*$/;

// Installing keeps the page and every hashed file it names, so that the very first visit can be
// reloaded without the network (the files that visit loaded came before the worker controlled it).
self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      try {
        const cache = await caches.open(CACHE);
        const response = await fetch(PAGE, { cache: "no-cache" });
        if (response.ok) {
          const html = await response.clone().text();
          await cache.put(PAGE, response);
          await keepNamed(cache, html);
        }
      } catch (err) {
        // Offline while installing: the next visit tries again.
      }
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/ws") return;
  if (request.mode === "navigate") {
    event.respondWith(page(request, event));
  } else if (HASHED.test(url.pathname)) {
    event.respondWith(hashed(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});

// The page: from the network (kept, and old hashed files pruned), else the kept one.
async function page(request, event) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      const html = await response.clone().text();
      await cache.put(PAGE, response.clone());
      // A new release's files are kept now, not only when the page asks for them.
      event.waitUntil(prune(cache, html).then(() => keepNamed(cache, html)));
    }
    return response;
  } catch (err) {
    const kept = await cache.match(PAGE);
    if (kept) return kept;
    throw err;
  }
}

// A hashed file: the cache, else the network (and kept).
async function hashed(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request, { ignoreSearch: true });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const kept = await cache.match(request, { ignoreSearch: true });
    if (kept) return kept;
    throw err;
  }
}

// The hashed files a page names (its script, its wasm, its stylesheet).
function named(html) {
  const found = new Set();
  for (const m of html.matchAll(/\/[A-Za-z0-9_.-]*-[0-9a-f]{12,16}[._][A-Za-z0-9_.-]*/g)) found.add(m[0]);
  return [...found];
}

// Fetches and keeps the hashed files the page names that are not kept yet.
async function keepNamed(cache, html) {
  for (const path of named(html)) {
    if (await cache.match(path)) continue;
    try {
      const response = await fetch(path);
      if (response.ok) await cache.put(path, response);
    } catch (err) {
      // Kept when the page asks for it.
    }
  }
}

// Drops the hashed files that the current page does not name.
async function prune(cache, html) {
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (HASHED.test(path) && !html.includes(path.slice(1))) await cache.delete(request);
  }
}
