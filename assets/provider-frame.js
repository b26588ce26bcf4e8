// The provider's game frame on /play tells the page when a round ended; the page then
// reads the balances again from the server (nothing in the message is trusted: only
// that it came from the frame's own window).
(function () {
  if (window.__hhProviderFrame) return;
  window.__hhProviderFrame = true;
  window.addEventListener("message", function (event) {
    var frame = document.getElementById("provider-frame");
    if (!frame || event.source !== frame.contentWindow) return;
    var data = event.data;
    if (!data || typeof data !== "object" || data.type !== "hh-provider-round") return;
    var button = document.getElementById("provider-refresh");
    if (button) button.click();
  });
})();
