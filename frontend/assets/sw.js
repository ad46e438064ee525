// The service worker: the app opens without the network.
//
// - The page itself (any navigation) goes to the network first, so a new release is picked up
//   on the first reload that reaches the server; the last page fetched is kept and answers
//   when the server cannot be reached.
// - Files whose names carry trunk's content hash (`frontend-<16 hex>.js`, `..._bg.wasm`,
//   `style-<16 hex>.css`) never change: they are answered from the cache, fetched once.
//   After each page fetched from the network, the hashed files that page no longer names are
//   dropped, so old releases do not pile up and a stale app is never stuck.
// - Other files of the app (the manifest, the icon) go to the network first, the cache after.
// - The API and the WebSocket are never cached here: messages are kept by the app itself.
"use strict";

const CACHE = "chat-app-v1";
const PAGE = "/";
const HASHED = /-[0-9a-f]{16}[._][^/]*$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.add(PAGE)).catch(() => {}).then(() => self.skipWaiting()),
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
    event.respondWith(page(request));
  } else if (HASHED.test(url.pathname)) {
    event.respondWith(hashed(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});

// The page: from the network (kept, and old hashed files pruned), else the kept one.
async function page(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      const html = await response.clone().text();
      await cache.put(PAGE, response.clone());
      await prune(cache, html);
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

// Drops the hashed files that the current page does not name.
async function prune(cache, html) {
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (HASHED.test(path) && !html.includes(path.slice(1))) await cache.delete(request);
  }
}
