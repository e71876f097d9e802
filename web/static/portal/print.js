// The printable summary: a Print button where script runs (without it, the page says how to print).
(function () {
  "use strict";
  var button = document.querySelector("[data-print]");
  if (!button) { return; }
  button.hidden = false;
  var hint = document.querySelector(".print-hint");
  if (hint) { hint.hidden = true; }
  button.addEventListener("click", function () { window.print(); });
}());
