// Live progress of an import job: polls the JSON given by data-progress-url on
// .import-progress elements and updates every [data-field]; reloads the page once the
// job finishes so the rejected lines show.
(function () {
  "use strict";
  function watch(box) {
    var url = box.getAttribute("data-progress-url");
    if (!url || box.getAttribute("data-finished") === "true") {
      return;
    }
    function show(data) {
      box.querySelectorAll("[data-field]").forEach(function (el) {
        var name = el.getAttribute("data-field");
        if (name === "percent-bar") {
          el.value = data.percent;
          el.textContent = data.percent + " %";
        } else if (name === "error_message") {
          el.textContent = data.error_message;
          el.hidden = !data.error_message;
        } else if (name in data) {
          el.textContent = data[name];
        }
      });
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          show(data);
          if (data.finished) {
            window.location.reload();
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () {
          window.setTimeout(poll, 5000);
        });
    }
    window.setTimeout(poll, 500);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".import-progress[data-progress-url]").forEach(watch);
  });
})();
