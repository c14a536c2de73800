/* Bulletin: choose the words to withhold by selecting them in a record's archived text.
   The selection fills the form's "Words to withhold" and "Which occurrence" fields; the page
   works without it (type the words). Offsets count the archived text only, not the hidden
   notes beside text already withheld. */
"use strict";
(function () {
  var source = document.getElementById("archived-text");
  var phrase = document.getElementById("phrase");
  var occurrence = document.getElementById("occurrence");
  var told = document.getElementById("selected");
  if (!source || !phrase || !occurrence) { return; }
  var text = source.dataset.text || "";

  function hidden(node) {
    for (var n = node.parentNode; n && n !== source; n = n.parentNode) {
      if (n.classList && n.classList.contains("visually-hidden")) { return true; }
    }
    return false;
  }

  /* the offset in the archived text of (node, offset), a boundary inside the source */
  function offsetOf(node, offset) {
    var at = 0;
    var walker = document.createTreeWalker(source, NodeFilter.SHOW_TEXT);
    for (var t = walker.nextNode(); t; t = walker.nextNode()) {
      if (hidden(t)) { continue; }
      if (t === node) { return at + offset; }
      if (node.nodeType !== Node.TEXT_NODE && node.contains(t)) {
        var range = document.createRange();
        range.setStart(node, offset);
        if (range.comparePoint(t, 0) >= 0) { return at; }
      }
      at += t.data.length;
    }
    return at;
  }

  function chosen() {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) { return; }
    var range = selection.getRangeAt(0);
    if (!source.contains(range.commonAncestorContainer)) { return; }
    var start = offsetOf(range.startContainer, range.startOffset);
    var end = offsetOf(range.endContainer, range.endOffset);
    while (start < end && /\s/.test(text.charAt(start))) { start += 1; }
    while (end > start && /\s/.test(text.charAt(end - 1))) { end -= 1; }
    if (start >= end) { return; }
    var words = text.slice(start, end);
    var n = 0;
    for (var at = text.indexOf(words); at >= 0 && at < start; at = text.indexOf(words, at + words.length)) {
      n += 1;
    }
    phrase.value = words;
    occurrence.value = String(n + 1);
    if (told) {
      told.textContent = "Selected: \u201c" + words + "\u201d (occurrence " + (n + 1) + ").";
    }
  }

  var pending = null;
  document.addEventListener("selectionchange", function () {
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(chosen, 150);
  });
})();
