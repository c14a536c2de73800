/* Bulletin: the board keeps itself current. Every 15 seconds, while the page is visible, it
   fetches the same page again and replaces the board (late notices and the table) with the
   new one, saying when. Without it the page works the same: "Refresh" reloads it. */
"use strict";
(function () {
  var live = document.getElementById("board-live");
  var said = document.getElementById("board-updated");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  function busy() {
    var active = document.activeElement;
    return active && live.contains(active) && active !== document.body;
  }
  function refresh() {
    if (document.hidden || busy()) { return; }
    fetch(live.dataset.poll, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board-live");
        if (!fresh || busy()) { return; }
        live.innerHTML = fresh.innerHTML;
        if (said) { said.textContent = "Updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function () { /* the next round tries again */ });
  }
  window.setInterval(refresh, 15000);
}());
