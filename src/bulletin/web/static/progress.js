/* Bulletin: follow a running production. Polls the job's JSON every two seconds and updates
   the progress bar and status line; reloads the page when the job ends (to show the download
   or the resume button). The page works without it: its Refresh link does the same. */
"use strict";
(function () {
  var job = document.getElementById("job");
  var bar = document.getElementById("job-progress");
  var status = document.getElementById("job-status");
  if (!job || !bar || !status || !window.fetch) { return; }
  function poll() {
    window.fetch(job.dataset.json, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.state !== "running") { window.location.reload(); return; }
        bar.max = j.total || 1;
        bar.value = j.done;
        bar.textContent = j.percent + "%";
        status.textContent = "Running: " + j.done + " of " + (j.total || "?") +
          " records written (" + j.percent + "%).";
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
