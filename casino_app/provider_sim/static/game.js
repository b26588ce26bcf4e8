// HashHouse Sim game page. Talks only to its own origin; the sim calls the casino's
// wallet. After every step or spin it tells the casino's page (its parent) that a round
// moved, so that page refreshes the balance from its own server (it trusts nothing here).
"use strict";

(function () {
  const sid = decodeURIComponent(location.pathname.split("/")[2] || "");
  const $ = (id) => document.getElementById(id);
  const SYMBOLS = { 5000: "###", 1000: "$$$", 500: "777", 200: "BBB", 128: "#B#" };
  let state = null;

  function units(amount, digits) {
    const negative = amount < 0;
    let text = String(Math.abs(amount)).padStart(digits + 1, "0");
    if (digits > 0) {
      let frac = text.slice(-digits);
      while (frac.length > 2 && frac.endsWith("0")) frac = frac.slice(0, -1);
      text = text.slice(0, -digits) + "." + frac;
    }
    return (negative ? "-" : "") + text;
  }

  function mult(hundredths) {
    return (hundredths / 100).toFixed(2) + "\u00d7";
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const answer = await fetch("/api/session/" + encodeURIComponent(sid) + path, init);
    let data = null;
    try { data = await answer.json(); } catch (e) { data = null; }
    if (!answer.ok) throw new Error((data && data.error) || "The game server did not answer.");
    return data;
  }

  function setBusy(busy) {
    $("game").dataset.busy = String(busy);
    const open = state && state.open_round && state.open_round.status === "open";
    $("stake").disabled = busy || open;
    $("spin").disabled = busy;
    $("step").disabled = busy;
    $("stop").disabled = busy || !open;
  }

  function say(text, kind) {
    $("message").textContent = text || "";
    $("message").dataset.kind = kind || "";
  }

  function renderPaytable() {
    const body = $("paytable");
    body.replaceChildren();
    $("row-head").textContent = state.kind === "ladder" ? "Step" : "Symbols";
    state.paytable.forEach((row, i) => {
      const tr = document.createElement("tr");
      const name = state.kind === "ladder" ? String(i + 1) : (SYMBOLS[row.mult] || "no win");
      for (const text of [name, row.chance, row.mult ? mult(row.mult) : "0"]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
  }

  function renderLadder(round) {
    const list = $("ladder");
    list.replaceChildren();
    const steps = round ? round.steps : [];
    for (let i = state.paytable.length - 1; i >= 0; i--) {
      const li = document.createElement("li");
      const row = state.paytable[i];
      li.textContent = "Step " + (i + 1) + ": " + row.chance + " for " + mult(row.mult);
      if (i < steps.length) li.dataset.result = steps[i].win > 0 ? "won" : "lost";
      else if (round && round.status === "open" && i === steps.length) li.dataset.result = "next";
      list.appendChild(li);
    }
  }

  function renderBalance(text) {
    if (text !== null && text !== undefined) $("balance").textContent = text;
  }

  function renderRound(round, nextHash, recallUrl) {
    if (nextHash) $("next-hash").textContent = nextHash;
    if (!round) return;
    $("last-round").textContent = round.round + " (" + round.status + ")";
    $("last-hash").textContent = round.seed_hash;
    if (round.seed) {
      $("last-seed").textContent = round.seed +
        (round.reveal_matches ? "" : "  \u2014 does NOT match the hash");
    } else {
      $("last-seed").textContent = round.status === "open" ? "hidden until the round closes"
        : "not revealed";
    }
    if (recallUrl) {
      $("recall").href = recallUrl;
      $("recall").hidden = false;
    }
    renderBalance(round.balance_text);
    const digits = state.digits;
    if (state.kind === "spin") {
      const step = round.steps[0];
      const symbols = step ? (SYMBOLS[step.mult] || "-x-") : "???";
      const reels = $("reels").children;
      for (let i = 0; i < reels.length; i++) reels[i].textContent = symbols[i];
      $("result").textContent = step ? (step.win > 0 ? "Win " + units(step.win, digits) +
        " (" + mult(step.mult) + ")" : "No win") : "";
    } else {
      renderLadder(round);
      const last = round.steps[round.steps.length - 1];
      let text = last ? "Step " + round.steps.length + ": " + (last.win > 0 ? "won " +
        units(last.win, digits) : "lost") : "";
      if (round.status !== "open") text += " \u2014 round over, total win " + round.total_win_text;
      $("result").textContent = text;
    }
    if (round.message) say(round.message, round.status === "closed" ? "" : "error");
    if (round.unsettled) say("The casino has not confirmed a payment yet; it is being sent " +
      "again.", "warning");
  }

  function notify(round) {
    if (window.parent !== window) {
      window.parent.postMessage({ type: "hh-provider-round", round: round.round }, "*");
    }
  }

  async function act(path, body) {
    setBusy(true);
    say("");
    try {
      const data = await api(path, body);
      state.open_round = data.round.status === "open" ? data.round : null;
      renderRound(data.round, data.next_seed_hash, data.recall_url);
      notify(data.round);
    } catch (err) {
      say(err.message, "error");
    } finally {
      setBusy(false);
    }
  }

  function stake() {
    return Number($("stake").value);
  }

  async function load() {
    try {
      state = await api("");
    } catch (err) {
      say(err.message, "error");
      return;
    }
    $("game").dataset.kind = state.kind;
    $("mode").hidden = !state.demo;
    $("currency").textContent = state.demo ? "play money" : state.currency;
    $("rtp").textContent = state.rtp;
    renderBalance(state.balance_text);
    $("next-hash").textContent = state.next_seed_hash;
    const select = $("stake");
    select.replaceChildren();
    for (const choice of state.stakes) {
      const option = document.createElement("option");
      option.value = String(choice.units);
      option.textContent = choice.text;
      select.appendChild(option);
    }
    renderPaytable();
    if (state.kind === "spin") {
      $("reels").hidden = false;
      $("spin").hidden = false;
    } else {
      $("ladder").hidden = false;
      $("step").hidden = false;
      $("stop").hidden = false;
      renderLadder(state.open_round);
      if (state.open_round) {
        select.value = String(state.open_round.stake);
        renderRound(state.open_round, null, null);
      }
    }
    if (state.message) say(state.message, "error");
    setBusy(false);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("spin").addEventListener("click", () => act("/spin", { stake: stake() }));
    $("step").addEventListener("click", () => act("/step", { stake: stake() }));
    $("stop").addEventListener("click", () => act("/stop", {}));
    load();
  });
})();
