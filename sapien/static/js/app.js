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

  // Menus are <details data-menu> and open without this script; it only adds what people expect of a menu:
  // Escape closes the innermost open one (focus back on its button), a click elsewhere closes them all.
  // The nav's menu button controls the nav beside it (aria-controls), which counts as inside it.
  function menuContains(menu, node) {
    var summary = menu.querySelector(":scope > summary");
    var controlled = summary && summary.getAttribute("aria-controls");
    var extra = controlled ? document.getElementById(controlled) : null;
    return menu.contains(node) || (extra !== null && extra.contains(node));
  }
  function closeMenu(menu, focusSummary) {
    menu.open = false;
    if (focusSummary) menu.querySelector(":scope > summary").focus();
  }
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menuContains(menu, event.target)) closeMenu(menu, false);
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = Array.prototype.filter.call(document.querySelectorAll("details[data-menu][open]"), function (menu) {
      return menuContains(menu, document.activeElement);
    });
    if (!open.length) return;
    // The innermost: the last in document order among those holding the focus.
    closeMenu(open[open.length - 1], true);
    event.preventDefault();
  });
  // Opening a menu closes the others it is not inside (the nav's groups open one at a time, by keyboard too),
  // but never one inside it: the toggle event comes a task later, after a quick keyboard user may already
  // have opened a group inside the phone's nav.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details[data-menu]") || !details.open) return;
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (menu !== details && !menuContains(menu, details) && !menuContains(details, menu)) menu.open = false;
    });
  }, true);
  // A confirmation opened from a menu puts the focus on its first field, or its button.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details[data-confirm]") || !details.open) return;
    var first = details.querySelector("input:not([type=hidden]), textarea, button[type=submit]");
    if (first) first.focus();
  }, true);

  // After a boosted navigation, move focus to the main region so screen readers announce the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    armToasts(document);
    if (event.detail.boosted) {
      var main = document.getElementById("main");
      if (main) main.focus({ preventScroll: true });
    }
  });
  document.addEventListener("DOMContentLoaded", function () { armToasts(document); });

  // ---- celebrations -------------------------------------------------------------------------
  var reducedMotion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : { matches: false };
  var numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  var seen = {};  // last figure shown for each [data-count] element, by id

  // Figures marked data-count count up from the value last shown to the new one (at once with reduced motion).
  function countUp(element, from, to) {
    if (reducedMotion.matches || from === to || !isFinite(from)) { element.textContent = numberFormat.format(to); return; }
    var start = null, duration = Math.min(1200, 300 + Math.abs(to - from) * 4);
    element.classList.add("is-counting");
    function step(time) {
      if (start === null) start = time;
      var t = Math.min(1, (time - start) / duration), eased = 1 - Math.pow(1 - t, 3);
      element.textContent = numberFormat.format(Math.round(from + (to - from) * eased));
      if (t < 1) window.requestAnimationFrame(step);
      else element.classList.remove("is-counting");
    }
    window.requestAnimationFrame(step);
  }
  function remember(root) {
    root.querySelectorAll("[data-count][id]").forEach(function (element) { seen[element.id] = Number(element.dataset.count); });
  }
  function animateCounts(root) {
    root.querySelectorAll("[data-count][id]").forEach(function (element) {
      var to = Number(element.dataset.count), from = seen[element.id];
      if (from !== undefined && from !== to) countUp(element, from, to);
      seen[element.id] = to;
    });
  }

  // The level-up dialog arrives out of band; open it as a modal (Escape and its focused button close it).
  function openCelebrations(root) {
    root.querySelectorAll("dialog[data-celebrate]").forEach(function (dialog) {
      if (dialog.open || dialog.dataset.shown) return;
      dialog.dataset.shown = "1";
      dialog.addEventListener("close", function () { dialog.remove(); });
      if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
      var button = dialog.querySelector("[autofocus]");
      if (button) button.focus();
    });
  }

  var shownLevel = null;
  function levelChip() { return document.querySelector("#statusbar .levelchip__level"); }
  document.addEventListener("htmx:oobBeforeSwap", function () { remember(document); });
  document.addEventListener("htmx:oobAfterSwap", function () {
    animateCounts(document);
    var chip = levelChip();
    if (chip && shownLevel !== null && chip.textContent !== shownLevel && !reducedMotion.matches) chip.classList.add("bump");
    if (chip) shownLevel = chip.textContent;
    openCelebrations(document);
  });
  // A boosted navigation back to a page seen before (the dashboard) counts its figures up from then.
  document.addEventListener("htmx:afterSettle", function (event) { if (event.detail.boosted) animateCounts(document); });
  document.addEventListener("DOMContentLoaded", function () {
    remember(document);
    var chip = levelChip();
    if (chip) shownLevel = chip.textContent;
    openCelebrations(document);
  });

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
