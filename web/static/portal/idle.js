// Idle sign-out warning: shown shortly before the portal signs a quiet session out, with a way to stay.
// Without this script the server still ends the session (and a <noscript> refresh clears the screen).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="portal-idle"]');
  var dialog = document.getElementById("idle-warning");
  if (!meta || !dialog) { return; }
  var timeout = parseInt(meta.getAttribute("content"), 10) * 1000;
  var warning = parseInt(meta.getAttribute("data-warning"), 10) * 1000;
  var csrf = (dialog.querySelector('input[name="csrf_token"]') || {}).value || "";
  var left = dialog.querySelector("[data-idle-left]");
  var stay = dialog.querySelector("[data-idle-stay]");
  var lastActive = Date.now();
  var lastFocus = null;
  var timer = null;

  // The words come from the dialog in the page's language ("%d minutes"); both languages we offer have
  // one form for 1 and another for every other number.
  function unit(name, fallback, n) {
    return (dialog.getAttribute("data-" + name) || fallback).replace("%d", String(n));
  }
  function minutesText(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s >= 60) {
      var m = Math.ceil(s / 60);
      return m === 1 ? unit("minute", "%d minute", m) : unit("minutes", "%d minutes", m);
    }
    return s === 1 ? unit("second", "%d second", s) : unit("seconds", "%d seconds", s);
  }
  function show() {
    if (!dialog.hidden) { return; }
    lastFocus = document.activeElement;
    dialog.hidden = false;
    stay.focus();
  }
  function hide() {
    dialog.hidden = true;
    if (lastFocus && lastFocus.focus) { lastFocus.focus(); }
  }
  function tick() {
    var idle = Date.now() - lastActive;
    if (idle >= timeout) {
      window.location.assign("/portal/signed-out?reason=idle");
      return;
    }
    if (idle >= timeout - warning) {
      show();
      left.textContent = minutesText(timeout - idle);
    }
  }
  function keepAlive() {
    lastActive = Date.now();
    hide();
    fetch("/portal/session/keepalive", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
    }).then(function (r) {
      if (r.status === 401) { window.location.assign("/portal/signed-out?reason=idle"); }
    }).catch(function () { /* offline: the next page load will tell */ });
  }
  stay.addEventListener("click", keepAlive);
  dialog.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); keepAlive(); }
  });
  // Typing or clicking on this page is activity the server has not seen: tell it now and then.
  var lastPing = Date.now();
  ["keydown", "pointerdown"].forEach(function (name) {
    document.addEventListener(name, function () {
      if (!dialog.hidden) { return; }
      lastActive = Date.now();
      if (Date.now() - lastPing > 60000) { lastPing = Date.now(); keepAlive(); }
    }, { passive: true });
  });
  timer = window.setInterval(tick, 1000);
  window.addEventListener("pagehide", function () { window.clearInterval(timer); });
}());
