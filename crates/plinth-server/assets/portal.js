// Plinth portal: live updates over server-sent events. Pages whose <main>
// carries data-entity-ref re-fetch themselves when that entity changes and
// swap the <main> content in place; the home page refreshes its lists.
(function () {
  "use strict";
  if (!("EventSource" in window) || !("fetch" in window)) return;
  var main = document.querySelector("main");
  if (!main) return;
  var ref = main.getAttribute("data-entity-ref");
  var live = ref || main.querySelector("#recent-changes");
  if (!live) return;
  var url = "/api/catalog/events" + (ref ? "?entityRef=" + encodeURIComponent(ref) : "");
  var pending = null;
  var inFlight = false;

  function reload() {
    if (inFlight) { schedule(); return; }
    inFlight = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.text().then(function (text) { return [response.status, text]; }); })
      .then(function (result) {
        var doc = new DOMParser().parseFromString(result[1], "text/html");
        var next = doc.querySelector("main");
        if (!next) return;
        var focused = document.activeElement && document.activeElement.id;
        main.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-entity-ref")) main.setAttribute("data-entity-ref", next.getAttribute("data-entity-ref"));
        main.setAttribute("data-updated", String(Date.now()));
        if (doc.title) document.title = doc.title;
        if (focused) { var el = document.getElementById(focused); if (el) el.focus(); }
      })
      .catch(function () { /* the next event retries */ })
      .then(function () { inFlight = false; });
  }

  function schedule() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; reload(); }, ref ? 100 : 1000);
  }

  var source = new EventSource(url);
  source.onmessage = function (event) {
    if (!ref) { schedule(); return; }
    try {
      var change = JSON.parse(event.data);
      if (String(change.entityRef).toLowerCase() === ref.toLowerCase()) schedule();
    } catch (e) { /* ignore malformed events */ }
  };
  source.addEventListener("lagged", schedule);
  source.onerror = function () { /* EventSource reconnects by itself */ };
  window.addEventListener("pagehide", function () { source.close(); });
})();
