// /verify: fill the form from the link's query string (a bet's recall links here) and run
// the verifier (verifier.js) when Verify is clicked, all in the browser, so that it works
// with no server at all (offline, from the service worker's cache). Values go into the
// inputs and the output as text; nothing is rendered as HTML.
(function () {
  if (window.__hhVerifyPage) return;
  window.__hhVerifyPage = true;
  var FIELDS = ["game", "server_seed", "client_seed", "nonce", "rows", "mines", "picks", "hash"];
  var tries = 0;
  function fill() {
    if (!document.getElementById("vf-server_seed")) {
      if (tries++ < 100) setTimeout(fill, 100);
      return;
    }
    var query = new URLSearchParams(window.location.search);
    FIELDS.forEach(function (name) {
      var value = query.get(name);
      var input = document.getElementById("vf-" + name);
      if (value === null || !input || input.dataset.prefilled) return;
      input.value = value.slice(0, 10000);
      input.dataset.prefilled = "1";
    });
  }
  fill();

  // The Verify button (#verify-run): computed here, written as text nodes.
  async function runVerifier() {
    var $ = function (id) { return document.getElementById(id); };
    var out = $("verify-output");
    var el = function (tag, text, attrs) {
      var node = document.createElement(tag);
      if (text !== undefined && text !== null) node.textContent = String(text);
      Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      return node;
    };
    var outcomeText = function (game, o) {
      if (game === "dice") return "rolled " + o.toFixed(2);
      // as My bets says it (ui/state/bets.py outcome_text): players count from 1
      if (game === "limbo") return o.toLocaleString("en-US", {minimumFractionDigits: 2,
                                                              maximumFractionDigits: 2}) + "×";
      if (game === "plinko") return "bucket " + (o + 1);
      if (game === "keno") return "drawn " + o.join(", ");
      if (game === "mines") {
        return "mines on tiles " + o.map(function (t) { return t + 1; }).join(", ");
      }
      return String(o);
    };
    out.replaceChildren(el("p", "Computing in your browser…"));
    try {
      if (!window.HashHouseVerify) throw new Error("The verifier is still loading: try again.");
      var game = $("vf-game").value;
      var params = {};
      if (game === "plinko") params.rows = $("vf-rows").value.trim();
      if (game === "mines") params.mines = $("vf-mines").value.trim();
      var expected = $("vf-hash").value.trim();
      if (expected) params.serverSeedHash = expected;
      var r = await window.HashHouseVerify.verify(
        game, $("vf-server_seed").value.trim(), $("vf-client_seed").value,
        $("vf-nonce").value.trim(), params);
      var parts = [el("h3", "Outcome", {"class": "rt-Heading rt-r-size-4"}),
                   el("p", outcomeText(game, r.outcome), {id: "verify-outcome"})];
      if (game === "keno") {
        var picks = $("vf-picks").value.split(/[\s,]+/).filter(Boolean).map(Number);
        if (picks.length) {
          var hit = picks.filter(function (p) { return r.outcome.indexOf(p) >= 0; });
          parts.push(el("p", "Your picks " + picks.join(", ") + ": " + hit.length +
                        " matched" + (hit.length ? " (" + hit.join(", ") + ")" : "")));
        }
      }
      var hashLine = "SHA-256 of the server seed: " + r.serverSeedHash;
      if (r.hashMatches === true) hashLine += " (matches the committed hash)";
      if (r.hashMatches === false) hashLine += " (DOES NOT MATCH the committed hash)";
      parts.push(el("p", hashLine, {id: "verify-hash",
                                    "data-matches": String(r.hashMatches)}));
      parts.push(el("h3", "Step by step", {"class": "rt-Heading rt-r-size-4"}));
      var ol = el("ol", null, {id: "verify-steps"});
      r.steps.forEach(function (s) {
        ol.appendChild(el("li", s, {style: "word-break: break-all; margin: 4px 0; " +
                                           "font-family: monospace; font-size: 13px"}));
      });
      parts.push(ol);
      out.replaceChildren.apply(out, parts);
    } catch (e) {
      out.replaceChildren(el("p", e.message, {role: "alert", id: "verify-error",
                                              style: "color: #ff6b6b"}));
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("#verify-run")) runVerifier();
  });
})();
