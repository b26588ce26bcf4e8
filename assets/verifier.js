/*
 * HashHouse provably fair verifier: recomputes a house-game outcome entirely in the
 * browser (no server call), byte-compatible with the Stake scheme (see docs/GAMES.md).
 * No dependencies; uses Web Crypto (browsers expose crypto.subtle on HTTPS and
 * localhost pages only; Node 19+ has globalThis.crypto, Node 18 uses node:crypto).
 *
 * Load with <script src="/verifier.js"></script> (sets window.HashHouseVerify) or, in
 * Node, require("./assets/verifier.js"). API:
 *
 *   HashHouseVerify.verify(game, serverSeed, clientSeed, nonce, params) -> Promise<{
 *     game, serverSeedHash, hashMatches,  // hashMatches: null unless params.serverSeedHash
 *     clientSeed, nonce,                  // nonce as a decimal string
 *     rounds: [{round, message, hmac}],   // each HMAC-SHA256 round, hex
 *     floats: [number],                   // the floats used, in order
 *     outcome,                            // as `casino verify` prints it (below)
 *     steps: [string],                    // the computation, step by step, in English
 *   }>
 *
 *   game: "dice" | "limbo" | "plinko" | "keno" | "mines"
 *   params: {rows: 8..16} for plinko, {mines: 1..24} for mines, and optionally
 *           {serverSeedHash: "<the hash committed before the bets>"} to check it.
 *   outcome: dice roll (0 to 100, 2 decimals), limbo result (>= 1, 2 decimals),
 *            plinko bucket (0..rows), keno hits (10 squares 1..40 in draw order),
 *            mines tiles (0..24, row by row, in draw order).
 *
 * Bad input rejects the promise with an Error whose message names the field.
 */
(function (root) {
  "use strict";

  var GAMES = ["dice", "limbo", "plinko", "keno", "mines"];
  var NONCE_MAX = (1n << 63n) - 1n;

  function subtle() {
    var c = root && root.crypto;
    if (c && c.subtle) return c.subtle;
    if (typeof require === "function") {
      try {
        return require("node:crypto").webcrypto.subtle; // Node 18
      } catch (e) { /* fall through */ }
    }
    throw new Error("Web Crypto is not available here (it needs an https:// page)");
  }

  function utf8(s) {
    return new TextEncoder().encode(s);
  }

  function toHex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
    return out;
  }

  async function sha256Hex(text) {
    return toHex(new Uint8Array(await subtle().digest("SHA-256", utf8(text))));
  }

  function fail(msg) {
    throw new Error(msg);
  }

  function checkInputs(game, serverSeed, clientSeed, nonce, params) {
    if (GAMES.indexOf(game) < 0) fail("game: must be one of " + GAMES.join(", "));
    if (typeof serverSeed !== "string" || !/^[0-9a-f]{64}$/.test(serverSeed)) {
      fail("server seed: must be 64 lowercase hexadecimal characters");
    }
    // Any text, the empty string too, exactly as given (no trimming), encoded as UTF-8:
    // the seeds of any Stake-compatible casino. Text that is not valid Unicode (a lone
    // surrogate, which TextEncoder would silently replace) is refused.
    if (typeof clientSeed !== "string") fail("client seed: must be text");
    var client = clientSeed;
    if (client.length > 10000) fail("client seed: at most 10000 characters");
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/.test(client)) {
      fail("client seed: not valid Unicode text");
    }
    var n;
    if (typeof nonce === "number" && Number.isSafeInteger(nonce)) n = BigInt(nonce);
    else if (typeof nonce === "string" && /^\s*\d+\s*$/.test(nonce)) n = BigInt(nonce.trim());
    else if (typeof nonce === "bigint") n = nonce;
    else fail("nonce: must be a whole number");
    if (n < 0n || n > NONCE_MAX) fail("nonce: must be between 0 and " + NONCE_MAX);
    params = params || {};
    var count;
    if (game === "plinko") {
      count = wholeParam(params.rows, "rows", 8, 16, "required for plinko (8 to 16)");
    } else if (game === "mines") {
      count = wholeParam(params.mines, "mines", 1, 24, "required for mines (1 to 24)");
    } else {
      count = game === "keno" ? 10 : 1;
    }
    return { client: client, nonce: n.toString(), count: count, params: params };
  }

  function wholeParam(value, field, lo, hi, missing) {
    if (value === undefined || value === null || value === "") fail(field + ": " + missing);
    var v = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      fail(field + ": must be between " + lo + " and " + hi);
    }
    return v;
  }

  // The published byte-to-float formula: b0/256 + b1/256^2 + b2/256^3 + b3/256^4.
  function bytesToFloat(b) {
    return b.reduce(function (acc, value, i) {
      return acc + value / Math.pow(256, i + 1);
    }, 0);
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function e2ToNumber(e2) {
    return e2 / 100;
  }

  function fixed2(e2) {
    return (e2 / 100).toFixed(2);
  }

  // Each mapping returns {outcome, steps}; it must match casino_app/games/house exactly.
  var MAPPINGS = {
    dice: function (fl) {
      var e2 = Math.floor(fl[0] * 10001);
      return {
        outcome: e2ToNumber(e2),
        steps: ["Roll = floor(float × 10001) / 100 = floor(" + fl[0] * 10001 + ") / 100 = " +
                fixed2(e2)],
      };
    },
    limbo: function (fl) {
      var f = fl[0];
      var steps = [];
      if (f === 0) {
        f = Math.pow(2, -32);
        steps.push("The float is exactly 0 (1 chance in 2^32): it is read as 2^-32, " +
                   "which wins every target");
      }
      var raw = Math.floor(1e8 / (f * 1e8) * 0.99 * 100);
      var e2 = Math.max(raw, 100);
      steps.push("Result = floor((1e8 / (float × 1e8)) × 0.99 × 100) / 100 = " + fixed2(raw) +
                 (raw < 100 ? ", raised to the minimum 1.00" : "") + " → " + fixed2(e2) + "x");
      return { outcome: e2ToNumber(e2), steps: steps };
    },
    plinko: function (fl) {
      var rights = 0;
      var steps = fl.map(function (f, i) {
        var d = Math.floor(f * 2);
        rights += d;
        return "Row " + (i + 1) + ": floor(" + f + " × 2) = " + d + " → " +
               (d ? "right" : "left");
      });
      steps.push("Bucket = number of rights = " + rights + " (buckets 0 to " + fl.length +
                 " from the left; the board and My bets count from 1: bucket " +
                 (rights + 1) + ")");
      return { outcome: rights, steps: steps };
    },
    keno: function (fl) {
      var pool = [];
      for (var s = 1; s <= 40; s++) pool.push(s);
      var steps = [];
      var hits = fl.map(function (f, i) {
        var idx = Math.floor(f * (40 - i));
        var square = pool.splice(idx, 1)[0];
        steps.push("Draw " + (i + 1) + ": floor(" + f + " × " + (40 - i) + ") = " + idx +
                   " → square " + square + " (taken out of the list)");
        return square;
      });
      steps.push("Hits in draw order: " + hits.join(", "));
      return { outcome: hits, steps: steps };
    },
    mines: function (fl) {
      var pool = [];
      for (var t = 0; t < 25; t++) pool.push(t);
      var steps = [];
      var tiles = fl.map(function (f, i) {
        var idx = Math.floor(f * (25 - i));
        var tile = pool.splice(idx, 1)[0];
        steps.push("Mine " + (i + 1) + ": floor(" + f + " × " + (25 - i) + ") = " + idx +
                   " → tile " + tile + " (row " + (Math.floor(tile / 5) + 1) + ", column " +
                   (tile % 5 + 1) + ")");
        return tile;
      });
      steps.push(plural(tiles.length, "mine") + " at tiles " + tiles.join(", ") +
                 " (numbered 0 to 24 row by row; the board and My bets count from 1: " +
                 tiles.map(function (t) { return t + 1; }).join(", ") + ")");
      return { outcome: tiles, steps: steps };
    },
  };

  async function verify(game, serverSeed, clientSeed, nonce, params) {
    var inp = checkInputs(game, serverSeed, clientSeed, nonce, params);
    var steps = [];
    var hash = await sha256Hex(serverSeed);
    var expected = inp.params.serverSeedHash;
    var matches = null;
    var hashStep = "Server seed hash = SHA-256(\"" + serverSeed + "\") = " + hash;
    if (typeof expected === "string" && expected.trim()) {
      matches = expected.trim().toLowerCase() === hash;
      hashStep += matches ? ": matches the hash committed before the bets"
                          : ": DOES NOT MATCH the committed hash " + expected.trim();
    }
    steps.push(hashStep);

    var key = await subtle().importKey("raw", utf8(serverSeed),
                                       { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    var rounds = [];
    var floats = [];
    for (var r = 0; floats.length < inp.count; r++) {
      var message = inp.client + ":" + inp.nonce + ":" + r;
      var bytes = new Uint8Array(await subtle().sign("HMAC", key, utf8(message)));
      var hex = toHex(bytes);
      rounds.push({ round: r, message: message, hmac: hex });
      steps.push("Round " + r + ": HMAC-SHA256(key = server seed, message = \"" + message +
                 "\") = " + hex);
      for (var i = 0; i < 32 && floats.length < inp.count; i += 4) {
        var four = Array.prototype.slice.call(bytes, i, i + 4);
        var f = bytesToFloat(four);
        floats.push(f);
        steps.push("Float " + (floats.length - 1) + " = bytes " + four.join(", ") +
                   " → b0/256 + b1/256² + b2/256³ + b3/256⁴ = " + f);
      }
    }
    var mapped = MAPPINGS[game](floats);
    return {
      game: game,
      serverSeedHash: hash,
      hashMatches: matches,
      clientSeed: inp.client,
      nonce: inp.nonce,
      rounds: rounds,
      floats: floats,
      outcome: mapped.outcome,
      steps: steps.concat(mapped.steps),
    };
  }

  var api = { verify: verify, sha256Hex: sha256Hex, games: GAMES.slice(), version: 1 };
  if (typeof module === "object" && module && module.exports) module.exports = api;
  if (root) root.HashHouseVerify = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
