// closeloop web app: the pages work without this script; it adds live
// updates of the inbox (new cases appear without a reload). Served by
// closeloop itself; no inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  var list = document.getElementById("case-list");
  if (!list || !window.fetch) { return; }
  var url = list.getAttribute("data-refresh");
  function selecting() {
    return list.querySelector("input[type=checkbox]:checked") !== null ||
      list.contains(document.activeElement);
  }
  function refresh() {
    if (document.hidden || selecting()) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && html.trim() !== list.innerHTML.trim() && !selecting()) {
          list.innerHTML = html;
        }
      })
      .catch(function () { /* offline: try again at the next tick */ });
  }
  var every = Number(list.getAttribute("data-every")) || 20000;
  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
