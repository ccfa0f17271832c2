// The labeling widgets: keyboard shortcuts, the live cleaning diff, the audio controls and the box editor.
// Every widget is server-rendered and usable without this file (boxes excepted, which say so); this file
// only enhances it. Widgets are (re)initialised on DOMContentLoaded and on htmx:load, once each.
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var MAX_BOXES = 100;

  function fill(template, n) { return String(template || "").replace("{n}", n); }

  function isTextEntry(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag !== "input") return false;
    return ["radio", "checkbox", "button", "submit", "reset", "hidden"].indexOf(el.type) === -1;
  }

  // Elements whose own Enter/Space behaviour must be left alone.
  function isActivatable(el) {
    if (!el || !el.closest) return false;
    return !!el.closest("a[href], button, summary, select, input[type=submit], input[type=button]");
  }

  // The widget a key press belongs to: the one holding the focus, or the only one on the page when the
  // focus rests on nothing in particular (the body or the main region after a boosted navigation).
  function widgetFor(target) {
    var inside = target && target.closest ? target.closest("[data-widget]") : null;
    if (inside) return inside;
    var neutral = !target || target === document.body || target === document.documentElement || target.id === "main";
    if (!neutral) return null;
    var all = document.querySelectorAll("[data-widget]");
    return all.length === 1 ? all[0] : null;
  }

  // Enter submits only a form with a single submit button: where there are several (a reviewer's accept /
  // fix / reject), the choice is the member's to make.
  function submitWidget(widget) {
    var form = widget.closest("form");
    if (!form) return false;
    var buttons = form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"]');
    if (buttons.length !== 1) return false;
    if (form.requestSubmit) form.requestSubmit(buttons[0]); else buttons[0].click();
    return true;
  }

  // ---- classification ---------------------------------------------------------------------------
  function pickLabel(widget, n) {
    var input = widget.querySelector('[data-choices] input[data-shortcut="' + n + '"]');
    if (!input) return false;
    input.click();
    input.focus({ preventScroll: true });
    return true;
  }

  // ---- text cleaning: a word diff (longest common subsequence over words and spaces) -------------
  // Words keep their trailing spaces, so a lone space never anchors the alignment in the wrong place.
  function tokens(text) { return text.match(/^\s+|\S+\s*/g) || []; }

  function wordDiff(original, edited) {
    var a = tokens(original), b = tokens(edited);
    var start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    var endA = a.length, endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    var ops = [];
    for (var i = 0; i < start; i++) ops.push(["equal", a[i]]);
    var midA = a.slice(start, endA), midB = b.slice(start, endB);
    var n = midA.length, m = midB.length;
    if (n * m > 1000000) {
      // Too big to align word by word in the browser: show the middle as replaced.
      midA.forEach(function (t) { ops.push(["delete", t]); });
      midB.forEach(function (t) { ops.push(["insert", t]); });
    } else {
      var width = m + 1, table = new Uint32Array((n + 1) * (m + 1));
      for (var r = n - 1; r >= 0; r--) {
        for (var c = m - 1; c >= 0; c--) {
          table[r * width + c] = midA[r] === midB[c] ? table[(r + 1) * width + c + 1] + 1
            : Math.max(table[(r + 1) * width + c], table[r * width + c + 1]);
        }
      }
      var x = 0, y = 0;
      while (x < n && y < m) {
        if (midA[x] === midB[y]) { ops.push(["equal", midA[x]]); x++; y++; }
        else if (table[(x + 1) * width + y] >= table[x * width + y + 1]) { ops.push(["delete", midA[x]]); x++; }
        else { ops.push(["insert", midB[y]]); y++; }
      }
      for (; x < n; x++) ops.push(["delete", midA[x]]);
      for (; y < m; y++) ops.push(["insert", midB[y]]);
    }
    for (var k = endA; k < a.length; k++) ops.push(["equal", a[k]]);
    // Merge runs of the same operation so the marks read as phrases.
    var merged = [];
    ops.forEach(function (op) {
      var last = merged[merged.length - 1];
      if (last && last[0] === op[0]) last[1] += op[1]; else merged.push([op[0], op[1]]);
    });
    return spacingOnly(merged);
  }

  // A replacement that only adds or removes spaces ("nine  in" → "nine in", "opensat" → "opens at") is shown
  // as just that space, not as the whole words changed.
  function spacingOnly(ops) {
    var out = [];
    for (var i = 0; i < ops.length; i++) {
      var del = ops[i], ins = ops[i + 1];
      if (del[0] !== "delete" || !ins || ins[0] !== "insert") { out.push(del); continue; }
      var a = del[1], b = ins[1], p = 0;
      while (p < a.length && p < b.length && a[p] === b[p]) p++;
      var q = 0;
      while (q < a.length - p && q < b.length - p && a[a.length - 1 - q] === b[b.length - 1 - q]) q++;
      var midA = a.slice(p, a.length - q), midB = b.slice(p, b.length - q);
      if (/^\s*$/.test(midA) && /^\s*$/.test(midB)) {
        if (p) out.push(["equal", a.slice(0, p)]);
        if (midA) out.push(["delete", midA]);
        if (midB) out.push(["insert", midB]);
        if (q) out.push(["equal", a.slice(a.length - q)]);
      } else {
        out.push(del, ins);
      }
      i++;
    }
    return out;
  }

  function visibleSpaces(text) { return text.replace(/\n/g, "↵\n").replace(/[ \t]/g, "·"); }

  function renderDiff(target, ops) {
    target.textContent = "";
    var changes = 0;
    ops.forEach(function (op) {
      if (op[0] === "equal") { target.appendChild(document.createTextNode(op[1])); return; }
      changes++;
      var mark = document.createElement(op[0] === "insert" ? "ins" : "del");
      var onlySpace = /^\s+$/.test(op[1]);
      mark.textContent = onlySpace ? visibleSpaces(op[1]) : op[1];
      if (onlySpace) mark.className = "diff__space";
      mark.title = op[0] === "insert" ? target.dataset.inserted : target.dataset.deleted;
      target.appendChild(mark);
    });
    if (!changes) {
      target.textContent = target.dataset.empty || "";
      target.classList.add("diff--empty");
    } else {
      target.classList.remove("diff--empty");
    }
  }

  function initCleaning(widget) {
    var input = widget.querySelector("[data-clean-input]");
    var output = widget.querySelector("[data-clean-diff]");
    var reset = widget.querySelector("[data-clean-reset]");
    if (!input || !output) return;
    var original = input.dataset.original || "";
    var timer = null;
    function update() { renderDiff(output, wordDiff(original, input.value)); }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 120);
    });
    if (reset) {
      reset.addEventListener("click", function () {
        input.value = original;
        update();
        input.focus();
      });
    }
    update();
  }

  // ---- audio transcription ----------------------------------------------------------------------
  function playPause(audio) {
    if (audio.paused) {
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* the member can still use the native controls */ });
    } else {
      audio.pause();
    }
  }

  function replayLast(audio, seconds) {
    audio.currentTime = Math.max(0, audio.currentTime - seconds);
    if (audio.paused) playPause(audio);
  }

  function initAudio(widget) {
    var audio = widget.querySelector("[data-audio]");
    if (!audio) return;
    widget.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || !widget.contains(button)) return;
      if (button.hasAttribute("data-audio-toggle")) playPause(audio);
      else if (button.hasAttribute("data-audio-replay")) replayLast(audio, 3);
      else if (button.hasAttribute("data-audio-loop")) {
        audio.loop = !audio.loop;
        button.setAttribute("aria-pressed", audio.loop ? "true" : "false");
      } else if (button.hasAttribute("data-audio-speed")) {
        audio.playbackRate = parseFloat(button.dataset.audioSpeed) || 1;
        widget.querySelectorAll("[data-audio-speed]").forEach(function (other) {
          other.setAttribute("aria-pressed", other === button ? "true" : "false");
        });
      }
    });
  }

  // ---- bounding boxes ---------------------------------------------------------------------------
  function clamp(value, low, high) { return Math.min(Math.max(value, low), high); }

  function BoxEditor(widget) {
    this.widget = widget;
    this.svg = widget.querySelector("[data-bbox-svg]");
    this.img = widget.querySelector(".bbox__img");
    this.input = widget.querySelector("[data-bbox-input]");
    this.list = widget.querySelector("[data-bbox-list]");
    this.count = widget.querySelector("[data-bbox-count]");
    this.empty = widget.querySelector("[data-bbox-empty]");
    this.status = widget.querySelector("[data-bbox-status]");
    this.currentSelect = widget.querySelector("[data-bbox-current]");
    this.optionsTemplate = widget.querySelector("[data-bbox-label-options]");
    this.W = parseInt(widget.dataset.width, 10) || 0;
    this.H = parseInt(widget.dataset.height, 10) || 0;
    try { this.labels = JSON.parse(widget.dataset.labels || "[]"); } catch (e) { this.labels = []; }
    this.current = this.labels[0];
    this.selected = -1;
    this.drag = null;
    this.rects = [];
    this.boxes = [];
    var initial = [];
    try { initial = JSON.parse(this.input.value || "[]"); } catch (e) { initial = []; }
    this.pendingBoxes = Array.isArray(initial) ? initial : [];
    var self = this;
    if (this.W && this.H) this.start();
    else if (this.img) {
      // No stored size: take the picture's own.
      var ready = function () {
        self.W = self.img.naturalWidth; self.H = self.img.naturalHeight;
        self.svg.setAttribute("viewBox", "0 0 " + self.W + " " + self.H);
        self.start();
      };
      if (this.img.complete && this.img.naturalWidth) ready(); else this.img.addEventListener("load", ready, { once: true });
    }
  }

  BoxEditor.prototype.start = function () {
    var self = this;
    this.boxes = this.pendingBoxes.map(function (b) { return self.normalise(b); }).filter(Boolean).slice(0, MAX_BOXES);
    this.layer = document.createElementNS(SVG_NS, "g");
    this.handles = document.createElementNS(SVG_NS, "g");
    this.svg.appendChild(this.layer);
    this.svg.appendChild(this.handles);
    this.bind();
    this.render(true);
  };

  BoxEditor.prototype.normalise = function (b) {
    if (!b || typeof b !== "object") return null;
    var x = Math.round(+b.x), y = Math.round(+b.y), w = Math.round(+b.w), h = Math.round(+b.h);
    if (![x, y, w, h].every(isFinite)) return null;
    x = clamp(x, 0, this.W - 1); y = clamp(y, 0, this.H - 1);
    w = clamp(w, 1, this.W - x); h = clamp(h, 1, this.H - y);
    var label = this.labels.indexOf(b.label) >= 0 ? b.label : this.labels[0];
    return { x: x, y: y, w: w, h: h, label: label };
  };

  // Image pixels per screen pixel, so handles and text keep a usable on-screen size.
  BoxEditor.prototype.scale = function () {
    var rect = this.svg.getBoundingClientRect();
    return rect.width ? this.W / rect.width : 1;
  };

  BoxEditor.prototype.pointFrom = function (event) {
    var rect = this.svg.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) * this.W / (rect.width || 1), 0, this.W),
      y: clamp((event.clientY - rect.top) * this.H / (rect.height || 1), 0, this.H),
    };
  };

  BoxEditor.prototype.describe = function (index) {
    var b = this.boxes[index];
    var name = fill(this.widget.dataset.textBox, index + 1);
    return name + (this.labels.length > 1 ? " · " + b.label : "") + " · " + b.w + "×" + b.h + " @ " + b.x + "," + b.y;
  };

  BoxEditor.prototype.sync = function () {
    var labelled = this.labels.length > 0;
    this.input.value = JSON.stringify(this.boxes.map(function (b) {
      var out = { x: b.x, y: b.y, w: b.w, h: b.h };
      if (labelled) out.label = b.label;
      return out;
    }));
  };

  BoxEditor.prototype.announce = function (text) { if (this.status) this.status.textContent = text; };

  BoxEditor.prototype.render = function (structural) {
    var self = this;
    while (this.rects.length < this.boxes.length) {
      var rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("tabindex", "0");
      rect.setAttribute("role", "button");
      rect.setAttribute("vector-effect", "non-scaling-stroke");
      rect.setAttribute("data-index", String(this.rects.length));
      this.layer.appendChild(rect);
      this.rects.push(rect);
    }
    while (this.rects.length > this.boxes.length) this.layer.removeChild(this.rects.pop());
    this.boxes.forEach(function (b, i) {
      var rect = self.rects[i];
      rect.setAttribute("x", b.x); rect.setAttribute("y", b.y);
      rect.setAttribute("width", b.w); rect.setAttribute("height", b.h);
      var colour = Math.max(0, self.labels.indexOf(b.label)) % 6;
      rect.setAttribute("class", "bbox__box bbox__box--c" + colour + (i === self.selected ? " is-selected" : ""));
      rect.setAttribute("aria-label", self.describe(i));
      rect.setAttribute("aria-pressed", i === self.selected ? "true" : "false");
    });
    this.renderHandles();
    this.sync();
    if (structural) this.renderList(); else this.refreshListText();
  };

  BoxEditor.prototype.renderHandles = function () {
    this.handles.textContent = "";
    var b = this.boxes[this.selected];
    if (!b) return;
    // Bigger handles for fingers than for a mouse.
    var coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
    var size = (coarse ? 24 : 14) * this.scale();
    var corners = { nw: [b.x, b.y], ne: [b.x + b.w, b.y], sw: [b.x, b.y + b.h], se: [b.x + b.w, b.y + b.h] };
    var self = this;
    Object.keys(corners).forEach(function (name) {
      var handle = document.createElementNS(SVG_NS, "rect");
      handle.setAttribute("class", "bbox__handle bbox__handle--" + name);
      handle.setAttribute("data-handle", name);
      handle.setAttribute("x", corners[name][0] - size / 2);
      handle.setAttribute("y", corners[name][1] - size / 2);
      handle.setAttribute("width", size); handle.setAttribute("height", size);
      handle.setAttribute("vector-effect", "non-scaling-stroke");
      self.handles.appendChild(handle);
    });
  };

  BoxEditor.prototype.labelSelect = function (index) {
    var select = document.createElement("select");
    select.setAttribute("aria-label", fill(this.widget.dataset.textLabel, index + 1));
    select.className = "bbox__labelselect";
    select.dataset.boxLabel = String(index);
    select.innerHTML = this.optionsTemplate.innerHTML;
    select.value = this.boxes[index].label;
    return select;
  };

  BoxEditor.prototype.renderList = function () {
    var self = this;
    this.list.textContent = "";
    this.boxes.forEach(function (b, i) {
      var item = document.createElement("li");
      item.className = "bbox__item" + (i === self.selected ? " is-selected" : "");
      var pick = document.createElement("button");
      pick.type = "button";
      pick.className = "linklike bbox__pick";
      pick.dataset.boxSelect = String(i);
      pick.textContent = fill(self.widget.dataset.textBox, i + 1);
      var text = document.createElement("span");
      text.className = "bbox__geometry muted";
      text.dataset.boxText = String(i);
      text.textContent = b.w + "×" + b.h + " @ " + b.x + "," + b.y;
      item.appendChild(pick);
      if (self.labels.length > 1 && self.optionsTemplate) item.appendChild(self.labelSelect(i));
      else if (self.labels.length === 1) {
        var only = document.createElement("span");
        only.className = "chip";
        only.textContent = b.label;
        item.appendChild(only);
      }
      item.appendChild(text);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button button--small button--ghost";
      remove.dataset.boxRemove = String(i);
      remove.textContent = "✕";
      remove.setAttribute("aria-label", fill(self.widget.dataset.textDelete, i + 1));
      item.appendChild(remove);
      self.list.appendChild(item);
    });
    if (this.count) this.count.textContent = String(this.boxes.length);
    if (this.empty) this.empty.hidden = this.boxes.length > 0;
  };

  BoxEditor.prototype.refreshListText = function () {
    var self = this;
    this.list.querySelectorAll("[data-box-text]").forEach(function (span) {
      var b = self.boxes[+span.dataset.boxText];
      if (b) span.textContent = b.w + "×" + b.h + " @ " + b.x + "," + b.y;
    });
    this.list.querySelectorAll(".bbox__item").forEach(function (item, i) {
      item.classList.toggle("is-selected", i === self.selected);
    });
  };

  BoxEditor.prototype.select = function (index, focus) {
    this.selected = index;
    this.render(false);
    if (focus && this.rects[index]) this.rects[index].focus({ preventScroll: true });
  };

  BoxEditor.prototype.add = function (box) {
    if (this.boxes.length >= MAX_BOXES) { this.announce(this.widget.dataset.textFull); return -1; }
    this.boxes.push(box);
    this.selected = this.boxes.length - 1;
    this.render(true);
    this.announce(fill(this.widget.dataset.textAdded, this.boxes.length));
    return this.selected;
  };

  BoxEditor.prototype.remove = function (index) {
    if (index < 0 || index >= this.boxes.length) return;
    this.boxes.splice(index, 1);
    this.selected = -1;
    this.render(true);
    this.announce(fill(this.widget.dataset.textRemoved, index + 1));
  };

  BoxEditor.prototype.addAtCentre = function () {
    var w = Math.max(2, Math.round(this.W / 4)), h = Math.max(2, Math.round(this.H / 4));
    var index = this.add({ x: Math.round((this.W - w) / 2), y: Math.round((this.H - h) / 2), w: w, h: h, label: this.current });
    if (index >= 0) this.rects[index].focus({ preventScroll: true });
  };

  BoxEditor.prototype.setLabel = function (n) {
    if (this.labels.length < 2 || n > this.labels.length) return false;
    this.current = this.labels[n - 1];
    if (this.currentSelect) this.currentSelect.value = this.current;
    if (this.boxes[this.selected]) {
      this.boxes[this.selected].label = this.current;
      var focused = document.activeElement;
      this.render(true);
      if (focused && focused.isConnected) focused.focus({ preventScroll: true });
    }
    return true;
  };

  BoxEditor.prototype.nudge = function (key, step, resize) {
    var b = this.boxes[this.selected];
    if (!b) return;
    var dx = key === "ArrowLeft" ? -step : key === "ArrowRight" ? step : 0;
    var dy = key === "ArrowUp" ? -step : key === "ArrowDown" ? step : 0;
    if (resize) {
      b.w = clamp(b.w + dx, 1, this.W - b.x);
      b.h = clamp(b.h + dy, 1, this.H - b.y);
    } else {
      b.x = clamp(b.x + dx, 0, this.W - b.w);
      b.y = clamp(b.y + dy, 0, this.H - b.h);
    }
    this.render(false);
  };

  BoxEditor.prototype.onPointerDown = function (event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    var point = this.pointFrom(event);
    var handle = event.target.getAttribute && event.target.getAttribute("data-handle");
    var index = event.target.getAttribute ? event.target.getAttribute("data-index") : null;
    var b = this.boxes[this.selected];
    if (handle && b) {
      // Resize: the opposite corner stays put.
      var anchor = { x: handle.indexOf("w") >= 0 ? b.x + b.w : b.x, y: handle.indexOf("n") >= 0 ? b.y + b.h : b.y };
      this.drag = { mode: "resize", anchor: anchor, index: this.selected };
    } else if (index !== null && index !== undefined) {
      var i = +index;
      this.select(i, true);
      this.drag = { mode: "move", dx: point.x - this.boxes[i].x, dy: point.y - this.boxes[i].y, index: i };
    } else {
      this.selected = -1;
      this.render(false);
      this.svg.focus({ preventScroll: true });
      this.drag = { mode: "draw", anchor: point, index: -1 };
    }
    this.svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  };

  BoxEditor.prototype.spanFrom = function (anchor, point) {
    var x1 = Math.round(Math.min(anchor.x, point.x)), y1 = Math.round(Math.min(anchor.y, point.y));
    var x2 = Math.round(Math.max(anchor.x, point.x)), y2 = Math.round(Math.max(anchor.y, point.y));
    return { x: clamp(x1, 0, this.W - 1), y: clamp(y1, 0, this.H - 1), w: Math.max(1, x2 - x1), h: Math.max(1, y2 - y1) };
  };

  BoxEditor.prototype.onPointerMove = function (event) {
    var drag = this.drag;
    if (!drag) return;
    var point = this.pointFrom(event);
    if (drag.mode === "move") {
      var b = this.boxes[drag.index];
      b.x = clamp(Math.round(point.x - drag.dx), 0, this.W - b.w);
      b.y = clamp(Math.round(point.y - drag.dy), 0, this.H - b.h);
      this.render(false);
      return;
    }
    var span = this.spanFrom(drag.anchor, point);
    span.w = Math.min(span.w, this.W - span.x); span.h = Math.min(span.h, this.H - span.y);
    if (drag.mode === "draw" && drag.index < 0) {
      // Start a box only once the pointer has really moved, so a tap just deselects.
      var threshold = 4 * this.scale();
      if (Math.abs(point.x - drag.anchor.x) < threshold && Math.abs(point.y - drag.anchor.y) < threshold) return;
      span.label = this.current;
      drag.index = this.add(span);
      if (drag.index < 0) { this.drag = null; }
      return;
    }
    var target = this.boxes[drag.index];
    target.x = span.x; target.y = span.y; target.w = span.w; target.h = span.h;
    this.render(false);
  };

  BoxEditor.prototype.onPointerUp = function (event) {
    var drag = this.drag;
    this.drag = null;
    if (this.svg.hasPointerCapture && this.svg.hasPointerCapture(event.pointerId)) this.svg.releasePointerCapture(event.pointerId);
    if (!drag || drag.index < 0) return;
    this.render(true);
    if (this.rects[drag.index]) this.rects[drag.index].focus({ preventScroll: true });
  };

  BoxEditor.prototype.onKeyDown = function (event) {
    var target = event.target;
    var onSurface = target === this.svg || this.svg.contains(target);
    if (!onSurface || event.ctrlKey || event.metaKey) return;
    var key = event.key;
    if ((key === "n" || key === "N") && !event.altKey) {
      this.addAtCentre();
    } else if (key.indexOf("Arrow") === 0 && this.boxes[this.selected]) {
      this.nudge(key, event.altKey ? 10 : 1, event.shiftKey);
    } else if ((key === "Delete" || key === "Backspace") && this.boxes[this.selected]) {
      var index = this.selected;
      this.remove(index);
      var next = this.rects[Math.min(index, this.rects.length - 1)];
      (next || this.svg).focus({ preventScroll: true });
      if (next) this.select(+next.getAttribute("data-index"), false);
    } else if (key === "Escape") {
      this.drag = null;
      this.selected = -1;
      this.render(false);
      this.svg.focus({ preventScroll: true });
    } else if (/^[1-9]$/.test(key) && !event.altKey && this.setLabel(+key)) {
      // handled
    } else {
      return;
    }
    event.preventDefault();
  };

  BoxEditor.prototype.bind = function () {
    var self = this;
    this.svg.addEventListener("pointerdown", function (e) { self.onPointerDown(e); });
    this.svg.addEventListener("pointermove", function (e) { self.onPointerMove(e); });
    this.svg.addEventListener("pointerup", function (e) { self.onPointerUp(e); });
    this.svg.addEventListener("pointercancel", function (e) { self.onPointerUp(e); });
    this.svg.addEventListener("focusin", function (e) {
      var index = e.target.getAttribute && e.target.getAttribute("data-index");
      if (index !== null && index !== undefined && +index !== self.selected && !self.drag) self.select(+index, false);
    });
    this.widget.addEventListener("keydown", function (e) { self.onKeyDown(e); });
    this.widget.addEventListener("click", function (e) {
      var button = e.target.closest("button");
      if (!button) return;
      if (button.hasAttribute("data-bbox-new")) self.addAtCentre();
      else if (button.hasAttribute("data-bbox-delete")) {
        if (self.boxes[self.selected]) self.remove(self.selected);
      } else if (button.dataset.boxSelect !== undefined) self.select(+button.dataset.boxSelect, true);
      else if (button.dataset.boxRemove !== undefined) {
        var index = +button.dataset.boxRemove;
        self.remove(index);
        var buttons = self.list.querySelectorAll("[data-box-remove]");
        var next = buttons[Math.min(index, buttons.length - 1)];
        (next || self.svg).focus({ preventScroll: true });
      }
    });
    this.widget.addEventListener("change", function (e) {
      if (e.target === self.currentSelect) self.current = e.target.value;
      else if (e.target.dataset && e.target.dataset.boxLabel !== undefined) {
        var b = self.boxes[+e.target.dataset.boxLabel];
        if (b) { b.label = e.target.value; self.render(false); }
      }
    });
    if (window.ResizeObserver) new ResizeObserver(function () { self.renderHandles(); }).observe(this.svg);
  };

  // ---- wiring ------------------------------------------------------------------------------------
  function initWidget(widget) {
    if (widget.dataset.ready) return;
    widget.dataset.ready = "1";
    widget.dataset.startedAt = String(Date.now());
    widget.querySelectorAll("[data-needs-js]").forEach(function (el) { el.hidden = false; });
    widget.querySelectorAll("[data-nojs-note]").forEach(function (el) { el.hidden = true; });
    var type = widget.dataset.widget;
    if (type === "text_cleaning") initCleaning(widget);
    else if (type === "audio_transcription") initAudio(widget);
    else if (type === "bounding_boxes") widget.boxEditor = new BoxEditor(widget);
  }

  // A read-only box overlay rendered without the image size takes the picture's own.
  function fitOverlay(svg) {
    if (svg.dataset.fitted) return;
    svg.dataset.fitted = "1";
    var img = svg.parentNode.querySelector("img");
    if (!img) return;
    var fit = function () {
      if (!img.naturalWidth) return;
      svg.setAttribute("viewBox", "0 0 " + img.naturalWidth + " " + img.naturalHeight);
      svg.hidden = false;
    };
    if (img.complete) fit(); else img.addEventListener("load", fit, { once: true });
  }

  function initAll(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("[data-widget]")) initWidget(root);
    root.querySelectorAll("[data-widget]").forEach(initWidget);
    root.querySelectorAll("svg[data-fit-image]").forEach(fitOverlay);
  }

  document.addEventListener("DOMContentLoaded", function () { initAll(document); });
  document.addEventListener("htmx:load", function (event) { initAll(event.target); });

  // Time spent on the item, from the widget's first render to the submit, into the form's time_spent_ms field
  // when it has one (the server treats it as a hint).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var widget = form.querySelector && form.querySelector("[data-widget][data-started-at]");
    var field = widget && form.querySelector('input[name="time_spent_ms"]');
    if (!field) return;
    field.value = String(Date.now() - parseInt(widget.dataset.startedAt, 10));
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var target = event.target;
    var widget = widgetFor(target);
    if (!widget) return;
    var type = widget.dataset.widget;
    var key = event.key;
    var ctrl = event.ctrlKey || event.metaKey;

    if (type === "audio_transcription" && event.ctrlKey && (key === " " || event.code === "Space")) {
      var audio = widget.querySelector("[data-audio]");
      if (audio) {
        if (event.shiftKey) replayLast(audio, 3); else playPause(audio);
        event.preventDefault();
      }
      return;
    }
    if (key === "Enter" && ctrl && !event.altKey) {
      if (submitWidget(widget)) event.preventDefault();
      return;
    }
    if (isTextEntry(target)) return;
    if (key === "Enter" && !ctrl && !event.altKey && !event.shiftKey && !isActivatable(target)) {
      if (submitWidget(widget)) event.preventDefault();
      return;
    }
    if ((type === "text_classification" || type === "image_classification") && /^[0-9]$/.test(key) &&
        !ctrl && !event.altKey && pickLabel(widget, key)) {
      event.preventDefault();
    }
  });

  // Exposed for the answer display and tests: the same word diff the cleaning preview uses.
  window.SapienLabeling = { wordDiff: wordDiff };
})();
