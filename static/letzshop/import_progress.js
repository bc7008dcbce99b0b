// Polls the historical import's progress (JSON) every two seconds while it runs.
(function () {
  "use strict";
  var box = document.getElementById("letzshop-import");
  if (!box) { return; }
  var bar = document.getElementById("letzshop-import-bar");
  var text = document.getElementById("letzshop-import-text");

  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.status === "none") { return; }
        bar.value = data.percent;
        text.textContent = data.status + ": " + data.shipments_seen + " / " + data.shipments_total +
          " shipments, " + data.shipments_created + " new, " + data.pages_done + " pages" +
          (data.error ? " (" + data.error + ")" : "");
        if (!data.finished) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  poll();
})();
