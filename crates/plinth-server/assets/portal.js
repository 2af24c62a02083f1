// Plinth portal: live updates over server-sent events. Pages whose <main>
// carries data-entity-ref re-fetch themselves when that entity changes and
// swap the <main> content in place; the home page refreshes its lists.
(function () {
  "use strict";
  if (!("EventSource" in window) || !("fetch" in window)) return;
  var main = document.querySelector("main");
  if (!main) return;
  var ref = main.getAttribute("data-entity-ref");
  var live = ref || main.querySelector("#recent-changes");
  if (!live) return;
  var url = "/api/catalog/events" + (ref ? "?entityRef=" + encodeURIComponent(ref) : "");
  var pending = null;
  var inFlight = false;

  function reload() {
    if (inFlight) { schedule(); return; }
    inFlight = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.text().then(function (text) { return [response.status, text]; }); })
      .then(function (result) {
        var doc = new DOMParser().parseFromString(result[1], "text/html");
        var next = doc.querySelector("main");
        if (!next) return;
        var focused = document.activeElement && document.activeElement.id;
        main.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-entity-ref")) main.setAttribute("data-entity-ref", next.getAttribute("data-entity-ref"));
        main.setAttribute("data-updated", String(Date.now()));
        if (doc.title) document.title = doc.title;
        if (focused) { var el = document.getElementById(focused); if (el) el.focus(); }
      })
      .catch(function () { /* the next event retries */ })
      .then(function () { inFlight = false; });
  }

  function schedule() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; reload(); }, ref ? 100 : 1000);
  }

  var source = new EventSource(url);
  source.onmessage = function (event) {
    if (!ref) { schedule(); return; }
    try {
      var change = JSON.parse(event.data);
      if (String(change.entityRef).toLowerCase() === ref.toLowerCase()) schedule();
    } catch (e) { /* ignore malformed events */ }
  };
  source.addEventListener("lagged", schedule);
  source.onerror = function () { /* EventSource reconnects by itself */ };
  window.addEventListener("pagehide", function () { source.close(); });
})();

// Golden paths: the template form (collect typed values, preview by dry
// run, create) and a run's page (live step status and log from the run's
// event stream, output links at completion).
(function () {
  "use strict";
  if (!("fetch" in window)) return;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); }
  function postJson(url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.text().then(function (t) { var d = null; try { d = JSON.parse(t); } catch (e) { d = { error: { message: t } }; } return { status: r.status, ok: r.ok, data: d }; }); });
  }
  function setPath(target, path, value) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof target[parts[i]] !== "object" || target[parts[i]] === null) target[parts[i]] = {};
      target = target[parts[i]];
    }
    target[parts[parts.length - 1]] = value;
  }
  // http(s), or a page of this site: other `/…` are paths on the server's
  // disk (a local repository), shown as text (as create.rs does).
  function safeHref(url) {
    return /^https?:\/\//i.test(url) || /^\/(?:(?:catalog|search|policies|create|api)(?:[/?#]|$)|[?#]|$)/.test(url);
  }
  function entityHref(ref) {
    var m = /^([^:]+):(?:([^/]+)\/)?(.+)$/.exec(ref) || [null, "component", "default", ref];
    return "/catalog/" + encodeURIComponent(m[2] || "default") + "/" + encodeURIComponent(m[1].toLowerCase()) + "/" + encodeURIComponent(m[3]);
  }

  // ------------------------------------------------------------ form
  var form = document.getElementById("create-form");
  if (form) {
    var templateRef = form.getAttribute("data-template-ref");
    var formError = document.getElementById("form-error");

    // "Add" inputs of multi-entity pickers append to their textarea.
    // Enter there adds the entry; it must not submit (start a run).
    Array.prototype.forEach.call(form.querySelectorAll("[data-add-to]"), function (input) {
      var add = function () {
        var area = document.getElementById(input.getAttribute("data-add-to"));
        var v = input.value.trim();
        if (!area || !v) return;
        area.value = (area.value.replace(/\s+$/, "") + (area.value.trim() ? "\n" : "") + v);
        input.value = "";
      };
      input.addEventListener("change", add);
      input.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || event.isComposing) return;
        event.preventDefault();
        add();
      });
    });

    var collect = function () {
      var values = {};
      var problems = [];
      Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (input) {
        var name = input.getAttribute("data-field");
        var type = input.getAttribute("data-type");
        var widget = input.getAttribute("data-widget");
        var raw;
        if (input.type === "checkbox") { setPath(values, name, input.checked); return; }
        if (widget === "multiselect") {
          var picked = Array.prototype.filter.call(input.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
          if (picked.length) setPath(values, name, picked);
          return;
        }
        if (widget === "lines") {
          var itemType = input.getAttribute("data-item-type");
          var items = input.value.split("\n").map(function (l) { return l.trim(); }).filter(function (l) { return l !== ""; });
          if (itemType === "integer" || itemType === "number") items = items.map(Number);
          if (items.length) setPath(values, name, items);
          return;
        }
        raw = input.value;
        if (widget === "json") {
          if (!raw.trim()) return;
          try { setPath(values, name, JSON.parse(raw)); } catch (e) { problems.push({ field: name, message: "not valid JSON: " + e.message }); }
          return;
        }
        if (raw === "") return;
        if (type === "integer" || type === "number") {
          var n = Number(raw);
          if (isNaN(n)) { problems.push({ field: name, message: "must be a number" }); return; }
          setPath(values, name, n);
          return;
        }
        setPath(values, name, raw);
      });
      return { values: values, problems: problems };
    };

    // A pattern the value does not match is shown as the field's title and
    // its help sentence (`description`, `ui:help`), never as the regex.
    var friendly = function (input, message) {
      var text = String(message || "");
      if (!/pattern|does not match|\^.*\$/i.test(text)) return text;
      var label = form.querySelector('label[for="' + input.id + '"]');
      var title = label && label.firstChild ? String(label.firstChild.textContent).trim() : input.getAttribute("data-field");
      var help = document.getElementById(input.id + "-help");
      var sentence = help ? help.textContent.trim() : "";
      return title + " does not have the expected form" + (sentence ? ": " + sentence : ".");
    };
    var clearErrors = function () {
      Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (p) { p.hidden = true; p.textContent = ""; });
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (i) { i.removeAttribute("aria-invalid"); });
      formError.hidden = true; clear(formError);
    };
    // Errors next to their fields; those without a field (or an unknown
    // one) at the form's foot.
    var showErrors = function (errors) {
      var unplaced = [];
      var first = null;
      (errors || []).forEach(function (e) {
        var field = String(e.field || "").replace(/^\//, "").replace(/\//g, ".");
        // `a.b[2].c` is shown at `a.b.c`, else `a.b`, else `a`.
        var input = null;
        var candidate = field.replace(/\[[^\]]*\]/g, "");
        var fields = form.querySelectorAll("[data-field]");
        while (candidate && !input) {
          for (var i = 0; i < fields.length && !input; i++) if (fields[i].getAttribute("data-field") === candidate) input = fields[i];
          var cut = candidate.lastIndexOf(".");
          candidate = cut > 0 ? candidate.slice(0, cut) : "";
        }
        if (!input) { unplaced.push((field ? field + ": " : "") + e.message + (e.page ? " (" + e.page + ")" : "")); return; }
        var slot = document.getElementById(input.id + "-error");
        slot.textContent = (slot.textContent ? slot.textContent + " " : "") + friendly(input, e.message);
        slot.hidden = false;
        input.setAttribute("aria-invalid", "true");
        if (!first) first = input;
      });
      if (unplaced.length) {
        var ul = el("ul");
        unplaced.forEach(function (m) { ul.appendChild(el("li", null, m)); });
        formError.appendChild(ul);
        formError.hidden = false;
      }
      if (first) first.focus(); else if (unplaced.length) formError.scrollIntoView({ block: "nearest" });
    };

    var busy = function (on) {
      document.getElementById("preview-button").disabled = on;
      document.getElementById("create-button").disabled = on;
      form.setAttribute("aria-busy", on ? "true" : "false");
    };

    var renderPreview = function (data) {
      var preview = document.getElementById("preview");
      preview.hidden = false;
      var status = document.getElementById("preview-status");
      clear(status);
      if (data.completed) status.appendChild(el("p", { "class": "badge pass" }, "dry run completed"));
      else status.appendChild(el("p", { "class": "problem-note" }, "The dry run did not complete" + (data.error ? ": " + data.error : ".")));

      var policy = data.policy || { result: "none", violations: [] };
      var pbody = document.querySelector("#preview-policy .body");
      clear(pbody);
      var head = el("p");
      head.appendChild(el("span", { "class": "badge outcome outcome-" + policy.result, "id": "preview-result" }, policy.result));
      if (policy.result === "none") head.appendChild(document.createTextNode(" no policy step ran"));
      pbody.appendChild(head);
      var violations = policy.violations || [];
      if (violations.length) {
        var list = el("ul", { "class": "violations" });
        violations.forEach(function (v) {
          var effect = v.effect || "deny";
          var li = el("li", { "class": "violation effect-" + effect });
          var line = el("p");
          line.appendChild(el("span", { "class": "badge outcome outcome-" + effect }, effect));
          line.appendChild(document.createTextNode(" "));
          line.appendChild(el("code", { "class": "policy-id" }, v.id || v.rule || ""));
          if (v.subject) line.appendChild(el("span", { "class": "muted" }, " on " + (typeof v.subject === "string" ? v.subject : JSON.stringify(v.subject))));
          li.appendChild(line);
          li.appendChild(el("p", { "class": effect === "deny" ? "violation-message deny" : "violation-message" }, v.message || ""));
          list.appendChild(li);
        });
        pbody.appendChild(list);
      } else if (policy.result !== "none") {
        pbody.appendChild(el("p", { "class": "empty" }, "No violations."));
      }

      var fbody = document.querySelector("#preview-files .body");
      clear(fbody);
      var files = data.directoryContents || [];
      if (!files.length) fbody.appendChild(el("p", { "class": "empty" }, "No files."));
      else {
        var ul = el("ul", { "class": "file-list" });
        var viewer = el("pre", { "class": "code file-contents", "hidden": "", "tabindex": "0" });
        files.forEach(function (f) {
          var li = el("li");
          var b = el("button", { "type": "button", "class": "link-button" }, f.path);
          b.addEventListener("click", function () {
            var text;
            try {
              var bytes = atob(f.base64Content || "");
              try { text = decodeURIComponent(escape(bytes)); } catch (e) { text = "(binary, " + bytes.length + " bytes)"; }
            } catch (e) { text = "(cannot decode)"; }
            viewer.textContent = text;
            viewer.setAttribute("aria-label", f.path);
            viewer.hidden = false;
          });
          li.appendChild(b);
          if (f.executable) li.appendChild(el("span", { "class": "badge" }, "executable"));
          ul.appendChild(li);
        });
        fbody.appendChild(ul);
        fbody.appendChild(viewer);
      }

      var log = document.querySelector("#preview-log pre");
      log.textContent = (data.log || []).map(function (l) {
        var b = l.body || {};
        return (b.stepId ? "[" + b.stepId + "] " : "") + (b.message || "");
      }).join("\n");
      showErrors(data.parameterErrors || []);
    };

    var patternProblems = function () {
      return Array.prototype.filter.call(form.querySelectorAll("[data-field][pattern]"), function (input) {
        return input.validity && input.validity.patternMismatch;
      }).map(function (input) { return { field: input.getAttribute("data-field"), message: "does not match pattern" }; });
    };

    document.getElementById("preview-button").addEventListener("click", function () {
      clearErrors();
      var mismatched = patternProblems();
      if (mismatched.length) { showErrors(mismatched); return; }
      var c = collect();
      if (c.problems.length) { showErrors(c.problems); return; }
      busy(true);
      postJson("/api/scaffolder/v2/dry-run", { templateRef: templateRef, values: c.values })
        .then(function (r) {
          if (!r.ok) {
            var d = (r.data && r.data.error) || {};
            showErrors((d.details && d.details.errors) || [{ field: "", message: d.message || ("dry run failed (" + r.status + ")") }]);
            return;
          }
          renderPreview(r.data);
        })
        .catch(function (e) { showErrors([{ field: "", message: "dry run failed: " + e.message }]); })
        .then(function () { busy(false); });
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors();
      // A value that misses its pattern: the field's title and help
      // sentence beside it (the browser's own bubble would only say
      // "match the requested format").
      var mismatched = patternProblems();
      if (mismatched.length) { showErrors(mismatched); return; }
      // The browser's own checks (required, bounds) first.
      if (form.reportValidity && !form.reportValidity()) return;
      var c = collect();
      if (c.problems.length) { showErrors(c.problems); return; }
      busy(true);
      postJson("/api/scaffolder/v2/tasks", { templateRef: templateRef, values: c.values })
        .then(function (r) {
          if (r.ok && r.data && r.data.id) { location.href = "/create/tasks/" + encodeURIComponent(r.data.id); return; }
          var d = (r.data && r.data.error) || {};
          var errs = (d.details && d.details.errors) || [];
          if (!errs.length) errs = [{ field: "", message: d.message || ("the run could not start (" + r.status + ")") }];
          showErrors(errs);
          busy(false);
        })
        .catch(function (e) { showErrors([{ field: "", message: "the run could not start: " + e.message }]); busy(false); });
    });
  }

  // ------------------------------------------------------------ run page
  var main = document.querySelector("main[data-task-id]");
  if (!main || main.getAttribute("data-finished") === "true" || !("EventSource" in window)) return;
  var id = main.getAttribute("data-task-id");
  var after = main.getAttribute("data-last-event") || "0";
  var logPre = document.getElementById("log-lines");
  var statusBadge = document.getElementById("task-status");

  function setTaskStatus(status) {
    statusBadge.textContent = status;
    statusBadge.className = "badge task-status status-" + status;
    main.setAttribute("data-task-status", status);
  }
  function setStep(stepId, status) {
    var li = null;
    Array.prototype.forEach.call(document.querySelectorAll("#task-steps [data-step-id]"), function (s) {
      if (s.getAttribute("data-step-id") === stepId) li = s;
    });
    if (!li) return;
    li.className = "step status-" + status;
    li.setAttribute("data-status", status);
    var badge = li.querySelector(".step-status");
    if (badge) badge.textContent = status;
  }
  function appendLog(body) {
    var atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
    logPre.appendChild(el("span", { "class": "log-line" }, (body.stepId ? "[" + body.stepId + "] " : "") + (body.message || "")));
    logPre.appendChild(document.createTextNode("\n"));
    if (atBottom) logPre.scrollTop = logPre.scrollHeight;
  }
  function complete(body, at) {
    var status = body.status || "completed";
    setTaskStatus(status);
    main.setAttribute("data-finished", "true");
    var finished = document.getElementById("task-finished");
    if (finished && at) { clear(finished); finished.appendChild(el("time", { "datetime": at, "title": at.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") }, "just now")); }
    Array.prototype.forEach.call(document.querySelectorAll("#task-steps [data-step-id]"), function (s) {
      var st = s.getAttribute("data-status");
      if (st === "processing") setStep(s.getAttribute("data-step-id"), status === "completed" ? "completed" : status === "cancelled" ? "cancelled" : "failed");
      else if (st === "open") setStep(s.getAttribute("data-step-id"), "skipped");
    });
    // A finished run cannot be cancelled: the button goes for good.
    if (cancelButton) { cancelButton.hidden = true; cancelButton.disabled = true; }
    var result = document.getElementById("task-result");
    var errorBox = document.getElementById("task-error");
    var links = document.getElementById("output-links");
    var texts = document.getElementById("output-text");
    clear(errorBox); clear(links); clear(texts);
    if (body.error && body.error.message) errorBox.appendChild(el("p", { "class": "problem-note", "role": "alert" }, body.error.message));
    var output = body.output || {};
    (output.links || []).forEach(function (l) {
      var li = el("li");
      if (l.entityRef) li.appendChild(el("a", { "class": "output-link entity-link", "href": entityHref(String(l.entityRef)) }, l.title || l.entityRef));
      else if (l.url && safeHref(String(l.url))) li.appendChild(el("a", { "class": "output-link", "href": String(l.url) }, l.title || l.url));
      else if (l.url) { li.appendChild(document.createTextNode((l.title || "") + ": ")); li.appendChild(el("code", null, l.url)); }
      else return;
      links.appendChild(li);
    });
    (output.text || []).forEach(function (t) {
      var sec = el("section", { "class": "output-text" });
      if (t && t.title) sec.appendChild(el("h3", null, t.title));
      sec.appendChild(el("pre", { "class": "wrap" }, typeof t === "string" ? t : (t && t.content) || ""));
      texts.appendChild(sec);
    });
    result.hidden = false;
    // The server renders the output's Markdown (safely); take its sections.
    if ((output.text || []).length && window.DOMParser) {
      fetch(window.location.pathname, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("output-text");
          if (fresh && fresh.querySelector(".output-text")) {
            clear(texts);
            Array.prototype.forEach.call(fresh.childNodes, function (n) { texts.appendChild(document.importNode(n, true)); });
          }
        })
        .catch(function () {});
    }
  }

  var cancelButton = document.getElementById("cancel-run");
  if (cancelButton) cancelButton.addEventListener("click", function () {
    cancelButton.disabled = true;
    fetch("/api/scaffolder/v2/tasks/" + encodeURIComponent(id) + "/cancel", { method: "POST" })
      .then(function (r) {
        if (!r.ok) return r.json().then(function (b) { throw new Error((b.error && b.error.message) || String(r.status)); });
      })
      .catch(function (e) { cancelButton.disabled = false; appendLog({ message: "cancel failed: " + e.message }); });
  });

  var source = null;
  function parse(event) {
    if (event.lastEventId) after = event.lastEventId;
    try { return JSON.parse(event.data); } catch (e) { return null; }
  }
  // Resumes after the last event seen (the stream takes `?after=`), so a
  // reconnect never repeats a log line.
  function connect() {
    source = new EventSource("/api/scaffolder/v2/tasks/" + encodeURIComponent(id) + "/eventstream?after=" + encodeURIComponent(after));
    source.addEventListener("log", function (event) {
      var data = parse(event);
      if (!data) return;
      var body = data.body || {};
      if (main.getAttribute("data-task-status") === "open") setTaskStatus("processing");
      if (body.stepId && body.status) setStep(body.stepId, body.status);
      appendLog(body);
    });
    source.addEventListener("completion", function (event) {
      var data = parse(event);
      source.close();
      if (data) complete(data.body || {}, data.createdAt);
    });
    source.onerror = function () {
      source.close();
      if (main.getAttribute("data-finished") !== "true") setTimeout(connect, 2000);
    };
  }
  connect();
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();

// Tables wider than the screen scroll inside their .table-wrap; such a
// region must be reachable by keyboard and named for screen readers.
(function () {
  "use strict";
  function label(wrap) {
    var section = wrap.closest("section");
    var heading = section && section.querySelector("h2, h3, h4");
    return heading ? heading.textContent.trim() : "Table";
  }
  function mark() {
    Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (wrap) {
      if (wrap.hasAttribute("tabindex") || wrap.scrollWidth <= wrap.clientWidth) return;
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      if (!wrap.hasAttribute("aria-label")) wrap.setAttribute("aria-label", label(wrap));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mark); else mark();
  window.addEventListener("resize", mark);
})();
