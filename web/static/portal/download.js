// Shows that a download is being made (the server streams it; a big record takes a while to start).
(function () {
  "use strict";
  var status = document.getElementById("download-status");
  if (!status) { return; }
  var text = status.querySelector("span");
  document.querySelectorAll("a[data-progress]").forEach(function (link) {
    link.addEventListener("click", function () {
      text.textContent = link.getAttribute("data-progress");
      status.hidden = false;
      // The browser takes over once the file starts; the note goes after a while.
      window.setTimeout(function () { status.hidden = true; }, 20000);
    });
  });
}());
