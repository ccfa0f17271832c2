// Sapien's small client layer: htmx does the talking; this file only wires the page up.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the CSRF token in a header (Flask-WTF reads X-CSRFToken).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // Toasts: dismiss on click, fade out on their own after a while (errors stay until dismissed).
  function armToasts(root) {
    root.querySelectorAll(".toast").forEach(function (toast) {
      if (toast.dataset.armed) return;
      toast.dataset.armed = "1";
      if (!toast.classList.contains("toast--error")) {
        setTimeout(function () { toast.classList.add("toast--leaving"); }, 6000);
        setTimeout(function () { toast.remove(); }, 6600);
      }
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) button.closest(".toast").remove();
  });

  // Selects marked data-autosubmit submit their form on change (the button stays for keyboard users).
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
  });

  // After a boosted navigation, move focus to the main region so screen readers announce the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    armToasts(document);
    if (event.detail.boosted) {
      var main = document.getElementById("main");
      if (main) main.focus({ preventScroll: true });
    }
  });
  document.addEventListener("DOMContentLoaded", function () { armToasts(document); });

  // A network failure must not leave the member guessing.
  document.addEventListener("htmx:sendError", function () {
    var flashes = document.getElementById("flashes");
    if (!flashes) return;
    var toast = document.createElement("div");
    toast.className = "toast toast--error";
    toast.setAttribute("role", "alert");
    toast.textContent = document.documentElement.dataset.offlineMessage || "Connection lost. Check your network and try again.";
    flashes.appendChild(toast);
  });
})();
