/*
 * HashHouse proof of reserves: checks a player's leaf and inclusion path in the browser
 * (no server call), scheme hh-merkle-sum-sha256-v1 (see payments/reserves.py):
 *   leaf id = sha256(salt ":" player_id)
 *   leaf    = sha256(0x00 || leaf id || balance as 16 bytes big-endian)
 *   node    = sha256(0x01 || left || left sum (16 B) || right || right sum (16 B))
 *
 * Load with <script src="/reserves.js"></script> (sets window.HashHouseReserves) or, in
 * Node, require("./assets/reserves.js"). API:
 *   HashHouseReserves.verifyLeaf({player_id, salt, leaf_id, balance, path, root, total})
 *     -> Promise<{ok, leafIdMatches, computedRoot, computedTotal, steps: [string]}>
 */
(function (root) {
  "use strict";
  var subtle = (root.crypto && root.crypto.subtle) ||
    (typeof require === "function" ? require("node:crypto").webcrypto.subtle : null);

  function hexToBytes(hex) {
    if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not hexadecimal: " + hex);
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.prototype.map.call(new Uint8Array(bytes), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function sum16(value) {
    var n = BigInt(value);
    if (n < 0n || n >= (1n << 128n)) throw new Error("a sum out of range");
    var out = new Uint8Array(16);
    for (var i = 15; i >= 0; i--) { out[i] = Number(n & 0xffn); n >>= 8n; }
    return out;
  }
  function concat(parts) {
    var len = parts.reduce(function (a, p) { return a + p.length; }, 0);
    var out = new Uint8Array(len), at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  async function sha256(bytes) { return new Uint8Array(await subtle.digest("SHA-256", bytes)); }

  async function verifyLeaf(d) {
    var steps = [];
    var idHex = bytesToHex(await sha256(new TextEncoder().encode(d.salt + ":" + d.player_id)));
    var leafIdMatches = idHex === d.leaf_id;
    steps.push("leaf id = sha256(salt:player id) = " + idHex +
               (leafIdMatches ? " (matches)" : " (DOES NOT MATCH " + d.leaf_id + ")"));
    var hash = await sha256(concat([new Uint8Array([0]), hexToBytes(d.leaf_id),
                                    sum16(d.balance)]));
    var total = BigInt(d.balance);
    steps.push("leaf = " + bytesToHex(hash) + ", sum " + total);
    for (var i = 0; i < d.path.length; i++) {
      var s = d.path[i], other = hexToBytes(s.hash), otherSum = BigInt(s.sum);
      var parts = s.side === "left"
        ? [new Uint8Array([1]), other, sum16(otherSum), hash, sum16(total)]
        : [new Uint8Array([1]), hash, sum16(total), other, sum16(otherSum)];
      hash = await sha256(concat(parts));
      total += otherSum;
      steps.push("level " + (i + 1) + ": with the " + s.side + " sibling -> " +
                 bytesToHex(hash) + ", sum " + total);
    }
    var computedRoot = bytesToHex(hash);
    var ok = leafIdMatches && computedRoot === d.root && total === BigInt(d.total);
    steps.push(ok ? "the root and total are the published ones"
                  : "the root or total DIFFERS from the published one");
    return {ok: ok, leafIdMatches: leafIdMatches, computedRoot: computedRoot,
            computedTotal: total.toString(), steps: steps};
  }

  var api = {verifyLeaf: verifyLeaf};
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HashHouseReserves = api;
})(typeof window !== "undefined" ? window : globalThis);
