/* SafeGrid police console: the SLA countdown, the inbox's own refreshing, and forms
   that cannot be sent twice. No framework; the pages work without it too. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".sla.running[data-deadline]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-deadline")) - now) / 1000);
      var late = left < 0;
      var s = Math.abs(left);
      var text = s >= 86400
        ? Math.floor(s / 86400) + (el.getAttribute("data-day") || "d") + " "
          + Math.floor(s / 3600) % 24 + ":" + pad(Math.floor(s / 60) % 60)
        : (s >= 3600 ? Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60)
                     : Math.floor(s / 60)) + ":" + pad(s % 60);
      el.textContent = late ? (el.getAttribute("data-late") || "") + " " + text : text;
      el.classList.toggle("late", late);
      var row = el.closest("tr");
      if (row) { row.classList.toggle("overdue", late); }
    });
  }

  function refresh(box) {
    var url = box.getAttribute("data-refresh");
    fetch(url, {headers: {"X-Console-Script": "1"}, credentials: "same-origin",
                cache: "no-store"})
      .then(function (resp) {
        if (resp.status === 401) {
          return resp.json().then(function (body) {
            window.location.assign(body.login + "?expired=1");
          });
        }
        if (!resp.ok) { return null; }
        return resp.text().then(function (html) {
          // The server escaped every value; the fragment is its own template.
          box.innerHTML = html;
          tick();
        });
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("once")) { return; }
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  tick();
  window.setInterval(tick, 1000);
  var box = document.getElementById("inbox");
  if (box && box.getAttribute("data-refresh")) {
    window.setInterval(function () { refresh(box); }, 5000);
  }
}());
