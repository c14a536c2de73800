/* Bulletin: a live count of the characters typed in a notice's text. The page works without
   it; Preview counts the text as each platform does (links, weighted characters). */
"use strict";
document.querySelectorAll("textarea[data-count]").forEach(function (area) {
  var shown = document.getElementById(area.dataset.count);
  if (!shown) { return; }
  function update() {
    var n = Array.from(area.value.trim()).length;
    shown.textContent = n + (n === 1 ? " character" : " characters") + " typed";
  }
  area.addEventListener("input", update);
  update();
});
