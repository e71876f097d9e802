// Shows that a download is being made (the server streams it; a big record takes a while to start).
// Without script the links still work: the PDF link goes through a page that shows the progress itself.
(function () {
  "use strict";
  var status = document.getElementById("download-status");
  if (!status) { return; }
  var text = status.querySelector("span");
  document.querySelectorAll("a[data-progress]").forEach(function (link) {
    // With script the file is asked for straight away, and this page shows the progress.
    var direct = link.getAttribute("data-href");
    if (direct) {
      link.setAttribute("href", direct);
      link.setAttribute("download", "");
    }
    link.addEventListener("click", function () {
      text.textContent = link.getAttribute("data-progress");
      status.hidden = false;
      // The browser takes over once the file starts; the note goes after a while.
      window.setTimeout(function () { status.hidden = true; }, 20000);
    });
  });
}());
