/*
 * HashHouse staff page (/admin/withdrawals): reads a signed PSBT file chosen in the page
 * into the form's text box, in the browser. The form then sends that text (base64, or the
 * file's own text when it holds base64 or hex) with its other fields; the server checks it
 * strictly against the PSBT it built (payments/btc/psbt.check_signed).
 *
 * Loaded with <script src="/psbt-file.js"></script> (a file of our own origin: allowed by
 * the content security policy without 'unsafe-inline' or eval). It listens for "change"
 * on any <input type="file" data-psbt-file> and fills the <textarea name="psbt"> of the
 * same form. A binary PSBT (it starts with the magic bytes "psbt" 0xff, as Sparrow,
 * Coldcard and Bitcoin Core write it) becomes base64; a text file is taken as it is.
 * Nothing is sent anywhere by this script.
 */
(function () {
  "use strict";

  // A signed PSBT of a cold payment is a few kilobytes; the form's text box takes 500,000
  // characters (a websocket message carries at most 1 MB).
  var MAX_BYTES = 360000;

  function isBinaryPsbt(bytes) {
    return bytes.length >= 5 && bytes[0] === 0x70 && bytes[1] === 0x73 &&
      bytes[2] === 0x62 && bytes[3] === 0x74 && bytes[4] === 0xff;
  }

  function toBase64(bytes) {
    var chunks = [];
    for (var i = 0; i < bytes.length; i += 0x8000) {
      chunks.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return window.btoa(chunks.join(""));
  }

  function fill(box, text) {
    box.value = text;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input || !input.matches || !input.matches("input[type=file][data-psbt-file]")) {
      return;
    }
    var form = input.form;
    var box = form && form.querySelector("textarea[name=psbt]");
    var file = input.files && input.files[0];
    if (!box || !file) {
      return;
    }
    if (file.size > MAX_BYTES) {
      input.setCustomValidity("This file is too large to be a signed PSBT.");
      input.reportValidity();
      fill(box, "");
      return;
    }
    input.setCustomValidity("");
    var reader = new FileReader();
    reader.onload = function () {
      var bytes = new Uint8Array(reader.result);
      fill(box, isBinaryPsbt(bytes) ? toBase64(bytes)
        : new TextDecoder("utf-8").decode(bytes).trim());
    };
    reader.readAsArrayBuffer(file);
  });
})();
