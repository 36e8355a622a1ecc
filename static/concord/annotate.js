// Keyboard-first labeling.
//
// Plain pages (pairwise, categorical): every button with data-key answers to that key; "?" toggles the help; Enter
// does nothing. Form pages (a project's questions): digits act on the focused question (rate it, choose an option,
// add a response to the ranking), Tab / Shift+Tab move between questions, Ctrl+Enter submits; the answers are
// kept in localStorage per lease until the server has acknowledged them, so a reload, a network failure or a
// session expiry (sign in, come back) loses nothing.
//
// Forms marked data-once are posted with fetch, once: a second press while one is on its way is ignored. The answer
// carries the next task's HTML (X-Next-Task: inline), which is swapped in: one request per judgment. If the request
// fails, the choice stays on the page and the next press sends it again with the same client id, so the server
// still stores exactly one judgment. Without JavaScript the plain forms post normally (POST -> redirect).
(function () {
  "use strict";
  var root = document.querySelector("[data-annotate]");
  if (!root) return;
  var status = document.getElementById("status");
  var progress = document.getElementById("progress");
  var DRAFT_PREFIX = "concord-draft-";
  var DRAFT_DAYS = 7;

  var task, help, strength, pending, sending, form;

  // Active time: the page counts only while it is visible and focused (per task).
  var activeMs = 0;
  var activeSince = null;
  function isActive() {
    return document.visibilityState === "visible" && document.hasFocus();
  }
  function tick() {
    var now = performance.now();
    if (activeSince !== null) activeMs += now - activeSince;
    activeSince = isActive() ? now : null;
  }
  ["visibilitychange", "focus", "blur"].forEach(function (name) {
    (name === "visibilitychange" ? document : window).addEventListener(name, tick);
  });

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
    status.classList.toggle("ok", !isError && /^Saved|^Skipped/.test(text));
  }

  function unpress() {
    task.querySelectorAll(".choices [aria-pressed], .skip [aria-pressed]").forEach(function (b) {
      b.setAttribute("aria-pressed", "false");
    });
  }

  function setSending(on) {
    sending = on;
    root.dataset.sent = on ? "1" : "";
    root.classList.toggle("sending", on);
  }

  function bump(name, by) {
    if (!progress) return;
    var cell = progress.querySelector('[data-count="' + name + '"]');
    cell.textContent = String(Math.max(0, parseInt(cell.textContent, 10) + by));
  }

  // The next task arrived with the answer: swap it in, reset the per-task state, point the URL at the page.
  // what: "saved" (a judgment), "skipped", "undone" (the last judgment taken back) or "" (nothing was stored).
  function swap(body, what) {
    // The server's own rendering of the task, sanitised like a page load's; parsed inert (no script runs).
    var parsed = new DOMParser().parseFromString(body.html, "text/html");
    var fresh = document.adoptNode(parsed.querySelector("[data-task]"));
    task.replaceWith(fresh);
    if (what === "saved") { bump("done", 1); bump("left", -1); }
    if (what === "skipped") bump("left", -1);
    if (what === "undone") { bump("done", -1); bump("left", 1); }
    setup();
    var seconds = parseInt(root.dataset.undoSeconds || "0", 10);
    say(what === "saved" ? "Saved ✓ Next task." + (seconds ? " Press u within " + seconds + " s to undo." : "")
      : what === "skipped" ? "Skipped. Next task."
      : what === "undone" ? "Undone: the task is back" + (form ? " with your answers." : ".") : "", false);
    window.scrollTo(0, 0);
    history.replaceState(null, "", body.next);
  }

  // The judgment just saved, which "u" takes back while the server allows it.
  var lastSaved = null;
  function undo() {
    if (sending || !lastSaved || Date.now() > lastSaved.until) return false;
    var saved = lastSaved;
    var data = new FormData();
    data.set("csrfmiddlewaretoken", task.querySelector("input[name=csrfmiddlewaretoken]").value);
    setSending(true);
    say("Undoing…", false);
    fetch(saved.url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-Next-Task": "inline" },
    })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        setSending(false);
        lastSaved = null;
        if (body.undone && saved.state) {
          try {
            localStorage.setItem(draftKey(saved.lease), JSON.stringify({ at: Date.now(), state: saved.state, strength: saved.strength }));
          } catch (e) { /* the task comes back without the answers */ }
        }
        if (body.html) swap(body, body.undone ? "undone" : "");
        else if (body.next) window.location.assign(body.next);
      })
      .catch(function () {
        setSending(false);
        say("Couldn't reach the server to undo.", true);
      });
    return true;
  }

  function send(target, button) {
    if (sending) return;
    var isSkip = target.classList.contains("skip");
    var data = new FormData(target);
    if (button && button.name) data.set(button.name, button.value);
    if (!isSkip) {
      tick();
      data.set("active_seconds", (activeMs / 1000).toFixed(1));
    }
    if (form && target === form) {
      var missing = formProblem();
      if (missing) {
        say(missing.message, true);
        focusQuestion(missing.question);
        return;
      }
      data.set("answers", JSON.stringify(collect()));
    } else {
      unpress();
      if (button) button.setAttribute("aria-pressed", "true");
    }
    setSending(true);
    say("Saving…", false);
    var lease = task.dataset.lease;
    fetch(target.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-Next-Task": "inline" },
    })
      .then(function (response) {
        return response.json().then(
          function (body) { return { response: response, body: body }; },
          function () { return { response: response, body: {} }; }
        );
      })
      .then(function (result) {
        var ok = result.response.ok;
        if (ok && form) draftDrop(lease); // acknowledged (stored, or refused for a reason a retry cannot fix)
        if (ok && result.body.saved && !isSkip) {
          var seconds = parseInt(root.dataset.undoSeconds || "0", 10);
          var checked = strength && strength.querySelector("input:checked");
          lastSaved = {
            url: target.action.replace(/\/submit$/, "/undo"), lease: lease, until: Date.now() + seconds * 1000 - 500,
            state: form ? JSON.parse(JSON.stringify(state)) : null, strength: checked ? checked.value : null,
          };
        }
        if (ok && result.body.html) {
          setSending(false);
          swap(result.body, result.body.saved ? "saved" : result.body.skipped ? "skipped" : "");
          return;
        }
        if (result.body.next) {
          // Nothing left (ok), or signed out (401): the draft, if any, waits in localStorage for the return.
          window.location.assign(result.body.next);
          return;
        }
        if (result.response.status === 400 && result.body.error) {
          say(result.body.error, true);
          if (form) showErrors(result.body.questions || {});
        } else if (result.response.status === 503 && result.body.error) {
          say(result.body.error + " Your answer is kept: press the key again to retry.", true);
        } else {
          say("Couldn't save (the server answered " + result.response.status + "). Your answer is kept: press the key again to retry.", true);
        }
        setSending(false);
      })
      .catch(function () {
        say("Couldn't reach the server. Your answer is kept: press the key again to retry.", true);
        setSending(false);
      });
  }

  // Strength scale (optional per project): a decisive choice (Response 1 or 2) also needs how much better. The
  // strength can be picked before or after the choice; the judgment is sent once both are known.
  function needsStrength(button) {
    var value = button && (button.value || button.dataset.value);  // a choice button, or a form's pairwise option
    return Boolean(strength && (value === "first" || value === "second") && !strength.querySelector("input:checked"));
  }
  function choose(target, button) {
    if (needsStrength(button)) {
      pending = button;
      unpress();
      button.setAttribute("aria-pressed", "true");
      say("How much better? Press z (slightly), x (clearly) or c (much).", false);
      return;
    }
    send(target, button);
  }
  function pickStrength(input) {
    input.checked = true;
    if (pending) choose(pending.form, pending);
    if (form) draftSave();
  }

  // ------------------------------------------------------------------------------------------ form pages
  var questions = [], order = [], state = {};

  function qKey(q) { return q.dataset.question; }
  function qKind(q) { return q.dataset.kind; }
  function nResponses() { return order.length; }

  function draftKey(lease) { return DRAFT_PREFIX + lease; }
  function draftSave() {
    if (!form) return;
    var checked = strength && strength.querySelector("input:checked");
    try {
      localStorage.setItem(draftKey(task.dataset.lease), JSON.stringify({
        at: Date.now(), state: state, strength: checked ? checked.value : null,
      }));
    } catch (e) { /* storage full or disabled: the page still works, without the safety net */ }
  }
  function draftLoad(lease) {
    try { return JSON.parse(localStorage.getItem(draftKey(lease)) || "null"); } catch (e) { return null; }
  }
  function draftDrop(lease) {
    try { localStorage.removeItem(draftKey(lease)); } catch (e) { /* nothing to drop */ }
  }
  function draftsPrune() {
    try {
      var old = Date.now() - DRAFT_DAYS * 86400000;
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var name = localStorage.key(i);
        if (name && name.indexOf(DRAFT_PREFIX) === 0) {
          var draft = JSON.parse(localStorage.getItem(name) || "null");
          if (!draft || draft.at < old) localStorage.removeItem(name);
        }
      }
    } catch (e) { /* nothing to prune */ }
  }

  function sourceText(position) {
    var box = task.querySelector('textarea[data-source="' + position + '"]');
    return box ? box.value : "";
  }

  // Show the state of one question on its controls.
  function render(q) {
    var key = qKey(q), kind = qKind(q), value = state[key];
    if (kind === "pairwise" || kind === "choice" || kind === "multi_choice") {
      q.querySelectorAll("[data-value]").forEach(function (b) {
        var on = kind === "multi_choice" ? (value || []).indexOf(b.dataset.value) >= 0 : value === b.dataset.value;
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    } else if (kind === "rating") {
      var rows = q.querySelectorAll("[data-row]");
      var values = q.hasAttribute("data-per-response") ? (value || []) : [value];
      rows.forEach(function (row, i) {
        var v = values[i] === undefined ? null : values[i];
        row.querySelectorAll("[data-value]").forEach(function (b) {
          b.setAttribute("aria-pressed", v !== null && String(v) === b.dataset.value ? "true" : "false");
        });
        var box = row.querySelector("[data-number]");
        if (box && document.activeElement !== box) box.value = v === null ? "" : String(v);
        row.classList.toggle("current", q.hasAttribute("data-per-response") && i === currentRow(q));
      });
    } else if (kind === "ranking") {
      var ranking = value || [];
      q.querySelector("[data-ranking]").textContent = ranking.length
        ? "Your ranking: " + ranking.map(function (p, i) { return (i + 1) + ". Response " + (p + 1); }).join(" · ") +
          (ranking.length < nResponses() ? " …" : "")
        : "Not ranked yet.";
      q.querySelectorAll("[data-rank]").forEach(function (b) {
        b.setAttribute("aria-pressed", ranking.indexOf(parseInt(b.dataset.rank, 10)) >= 0 ? "true" : "false");
      });
    } else if (kind === "text" || kind === "rewrite") {
      var text = kind === "text" ? (value || "") : ((value || {}).text || "");
      var area = q.querySelector("textarea[data-text]");
      if (area.value !== text) area.value = text;
      var counter = q.querySelector("[data-counter]");
      var min = parseInt(q.dataset.minLength || "0", 10);
      if (counter && min) counter.textContent = text.trim().length + " / at least " + min + " characters";
      if (kind === "rewrite") {
        var source = value && value.source !== undefined ? value.source : undefined;
        q.querySelectorAll("[data-source-pick]").forEach(function (b) {
          var pick = b.dataset.sourcePick === "" ? null : parseInt(b.dataset.sourcePick, 10);
          b.setAttribute("aria-pressed", source !== undefined && pick === source ? "true" : "false");
        });
      }
    }
    q.classList.toggle("answered", !questionProblem(q, true));
  }

  function currentRow(q) {
    var rows = q.querySelectorAll("[data-row]").length;
    var values = state[qKey(q)] || [];
    if (q.dataset.row !== undefined && q.dataset.row !== "") return Math.min(parseInt(q.dataset.row, 10), rows - 1);
    for (var i = 0; i < rows; i++) if (values[i] === undefined || values[i] === null) return i;
    return rows - 1;
  }

  function changed(q) {
    render(q);
    q.querySelector("[data-error]").textContent = "";
    draftSave();
  }

  function next(q) {
    var i = questions.indexOf(q);
    if (i + 1 < questions.length) focusQuestion(questions[i + 1]);
    else form.querySelector("[data-submit]").focus();
  }

  function focusQuestion(q) {
    var area = qKind(q) === "text" ? q.querySelector("textarea[data-text]") : null;
    var box = q.querySelector("[data-number]");
    (area || box || q).focus();
    q.scrollIntoView({ block: "nearest" });
  }

  function setRating(q, row, value) {
    var key = qKey(q);
    if (q.hasAttribute("data-per-response")) {
      var values = (state[key] || []).slice();
      while (values.length < nResponses()) values.push(null);
      values[row] = value;
      state[key] = values;
      delete q.dataset.row;
      changed(q);
      if (values.every(function (v) { return v !== null; }) && row === nResponses() - 1) next(q);
      else if (row + 1 < nResponses()) { q.dataset.row = String(row + 1); render(q); }
    } else {
      state[key] = value;
      changed(q);
      next(q);
    }
  }

  function pickSource(q, position) {
    var current = state[qKey(q)] || { text: "", source: null };
    var previous = current.source === null || current.source === undefined ? "" : sourceText(current.source);
    var text = current.text;
    if (!text || text === previous) text = position === null ? "" : sourceText(position);
    state[qKey(q)] = { text: text, source: position };
    changed(q);
    if (text !== (position === null ? "" : sourceText(position)) && current.text) {
      say("Your text is kept (it differs from the response): clear it to start from the response.", false);
    }
    q.querySelector("textarea[data-text]").focus();
  }

  function rankAdd(q, position) {
    var ranking = (state[qKey(q)] || []).slice();
    if (position >= nResponses() || ranking.indexOf(position) >= 0) return;
    ranking.push(position);
    state[qKey(q)] = ranking;
    changed(q);
    if (ranking.length === nResponses()) next(q);
  }

  // A key pressed while question q has the focus; true when it was used.
  function act(q, event) {
    var kind = qKind(q), key = event.key;
    if (kind === "ranking") {
      if (key === "Backspace") {
        state[qKey(q)] = (state[qKey(q)] || []).slice(0, -1);
        changed(q);
        return true;
      }
      var rank = q.querySelector('[data-rank][data-key="' + CSS.escape(key) + '"]');
      if (rank) { rankAdd(q, parseInt(rank.dataset.rank, 10)); return true; }
      return false;
    }
    if (kind === "rewrite") {
      var pick = q.querySelector('[data-source-pick][data-key="' + CSS.escape(key) + '"]');
      if (pick) { pick.click(); return true; }
      if (key === "Enter") { q.querySelector("textarea[data-text]").focus(); return true; }
      return false;
    }
    if (kind === "rating") {
      var per = q.hasAttribute("data-per-response");
      if (per && (key === "ArrowDown" || key === "ArrowUp")) {
        var row = currentRow(q) + (key === "ArrowDown" ? 1 : -1);
        q.dataset.row = String(Math.max(0, Math.min(nResponses() - 1, row)));
        render(q);
        return true;
      }
      var target = per ? q.querySelectorAll("[data-row]")[currentRow(q)] : q;
      var button = target && target.querySelector('[data-value][data-key="' + CSS.escape(key) + '"]');
      if (button) { setRating(q, per ? currentRow(q) : 0, parseInt(button.dataset.value, 10)); return true; }
      return false;
    }
    var option = q.querySelector('[data-value][data-key="' + CSS.escape(key) + '"]');
    if (option) { option.click(); return true; }
    return false;
  }

  function bindQuestion(q) {
    var kind = qKind(q);
    q.querySelectorAll("[data-value]").forEach(function (b) {
      b.addEventListener("click", function () {
        if (kind === "rating") {
          var row = b.closest("[data-row]");
          setRating(q, parseInt(row.dataset.row, 10), parseInt(b.dataset.value, 10));
          return;
        }
        if (kind === "multi_choice") {
          var chosen = (state[qKey(q)] || []).slice();
          var at = chosen.indexOf(b.dataset.value);
          if (at >= 0) chosen.splice(at, 1); else chosen.push(b.dataset.value);
          state[qKey(q)] = chosen;
          changed(q);
          return;
        }
        state[qKey(q)] = b.dataset.value;
        changed(q);
        if (kind === "pairwise" && pending === null && needsStrength(b)) {
          say("How much better? Press z (slightly), x (clearly) or c (much).", false);
          return;
        }
        next(q);
      });
    });
    q.querySelectorAll("[data-number]").forEach(function (box) {
      box.addEventListener("input", function () {
        var value = box.value === "" ? null : parseInt(box.value, 10);
        state[qKey(q)] = isNaN(value) ? null : value;
        render(q);
        draftSave();
      });
    });
    q.querySelectorAll("[data-rank]").forEach(function (b) {
      b.addEventListener("click", function () { rankAdd(q, parseInt(b.dataset.rank, 10)); });
    });
    q.querySelectorAll("[data-clear]").forEach(function (b) {
      b.addEventListener("click", function () { state[qKey(q)] = []; changed(q); });
    });
    q.querySelectorAll("[data-source-pick]").forEach(function (b) {
      b.addEventListener("click", function () {
        pickSource(q, b.dataset.sourcePick === "" ? null : parseInt(b.dataset.sourcePick, 10));
      });
    });
    var area = q.querySelector("textarea[data-text]");
    if (area) {
      area.addEventListener("input", function () {
        if (kind === "text") state[qKey(q)] = area.value;
        else state[qKey(q)] = { text: area.value, source: (state[qKey(q)] || {}).source === undefined ? null : state[qKey(q)].source };
        changed(q);
      });
    }
  }

  // Why question q's answer cannot be sent yet (null: it can); loose: only "not answered" matters.
  function questionProblem(q, loose) {
    var value = state[qKey(q)], kind = qKind(q), required = q.hasAttribute("data-required");
    var title = "“" + q.dataset.title + "”";
    var empty = value === undefined || value === null;
    if (kind === "multi_choice") empty = empty || value.length === 0;
    if (kind === "text") empty = empty || value.trim() === "";
    if (kind === "rewrite") empty = empty || !value.text || value.text.trim() === "";
    if (kind === "ranking") empty = empty || value.length === 0;
    if (kind === "rating" && q.hasAttribute("data-per-response")) {
      empty = empty || value.every(function (v) { return v === null; });
      if (!empty && (value.length < nResponses() || value.some(function (v) { return v === null; }))) {
        return "Rate every response in " + title + ".";
      }
    }
    if (empty) return required ? "Answer " + title + " first." : (loose ? "unanswered" : null);
    if (kind === "ranking" && value.length < nResponses()) return "Rank all " + nResponses() + " responses in " + title + ".";
    var min = parseInt(q.dataset.minLength || "0", 10);
    var text = kind === "text" ? value : kind === "rewrite" ? value.text : null;
    if (text !== null && text.trim().length < min) return title + " needs at least " + min + " characters.";
    return null;
  }

  function formProblem() {
    for (var i = 0; i < questions.length; i++) {
      var problem = questionProblem(questions[i], false);
      if (problem) return { question: questions[i], message: problem };
    }
    return null;
  }

  // The answers as the server wants them: response numbers on screen mapped back to the task's own indexes.
  function collect() {
    var answers = {};
    questions.forEach(function (q) {
      var key = qKey(q), kind = qKind(q), value = state[key];
      if (questionProblem(q, true)) return; // unanswered (optional)
      if (kind === "ranking") {
        answers[key] = value.map(function (position) { return order[position]; });
      } else if (kind === "rating" && q.hasAttribute("data-per-response")) {
        var byIndex = [];
        value.forEach(function (v, position) { byIndex[order[position]] = v; });
        answers[key] = byIndex;
      } else if (kind === "rewrite") {
        answers[key] = { text: value.text, source: value.source === null ? null : order[value.source] };
      } else {
        answers[key] = value;
      }
    });
    return answers;
  }

  function showErrors(byQuestion) {
    var first = null;
    questions.forEach(function (q) {
      var message = byQuestion[qKey(q)] || "";
      q.querySelector("[data-error]").textContent = message;
      if (message && !first) first = q;
    });
    if (first) focusQuestion(first);
  }

  function setupForm() {
    order = JSON.parse(form.dataset.order || "[]");
    questions = Array.prototype.slice.call(form.querySelectorAll("[data-question]"));
    var draft = draftLoad(task.dataset.lease);
    state = (draft && draft.state) || {};
    if (draft && draft.strength && strength) {
      var radio = strength.querySelector('input[value="' + CSS.escape(draft.strength) + '"]');
      if (radio) radio.checked = true;
    }
    questions.forEach(function (q) { bindQuestion(q); render(q); });
    if (draft && Object.keys(state).length) say("Your unsaved answers to this task are back.", false);
    var open = firstOpen();
    if (open) focusQuestion(open);
  }

  function firstOpen() {
    return questions.filter(function (q) { return questionProblem(q, true); })[0] || questions[0];
  }

  function currentQuestion() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("[data-question]") : null;
  }

  // Tab and Shift+Tab walk the questions, then the submit button.
  function tabTo(backwards) {
    var stops = questions.concat([form.querySelector("[data-submit]")]);
    var active = document.activeElement;
    var at = stops.indexOf(currentQuestion() || active);
    if (at < 0) return false;
    var to = at + (backwards ? -1 : 1);
    if (to < 0 || to >= stops.length) return false;
    if (to === stops.length - 1) stops[to].focus(); else focusQuestion(stops[to]);
    return true;
  }

  // ------------------------------------------------------------------------------------------ set-up per task
  function setup() {
    task = root.querySelector("[data-task]");
    help = task.querySelector("#help");
    strength = task.querySelector("[data-strength]");
    form = task.querySelector("form[data-form]");
    pending = null;
    setSending(false);
    activeMs = 0;
    activeSince = null;
    tick();
    task.querySelectorAll("form[data-once]").forEach(function (target) {
      target.addEventListener("submit", function (event) {
        event.preventDefault();
        choose(target, target === form ? null : event.submitter);
      });
    });
    if (strength) {
      strength.addEventListener("change", function (event) {
        if (event.target.name === "strength") pickStrength(event.target);
      });
    }
    questions = [];
    if (form) setupForm();
  }

  function cycleReason() {
    var select = task.querySelector("[data-reasons]");
    select.selectedIndex = (select.selectedIndex + 1) % select.options.length;
    say("Skip reason: " + select.options[select.selectedIndex].text + " (press s to skip).", false);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = Boolean(target && target.matches && target.matches("textarea, select, input:not([type=radio])"));
    if (form) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        choose(form, null);
        return;
      }
      if (event.key === "Tab" && !event.ctrlKey && !event.altKey && tabTo(event.shiftKey)) {
        event.preventDefault();
        return;
      }
      if (typing) {
        if (event.key === "Escape" && currentQuestion()) {
          currentQuestion().focus(); // leave the text box: the question's keys work again
          event.preventDefault();
        }
        return; // Enter is a new line, digits are text
      }
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing) return;
    if (event.key === "?") {
      help.hidden = !help.hidden;
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      help.hidden = true;
      return;
    }
    if (form) {
      var q = currentQuestion();
      if (!q && target === document.body) {
        q = firstOpen(); // the focus was lost (a click outside, the window left): keys go to the first open one
        if (q) focusQuestion(q);
      }
      if (q && act(q, event)) {
        event.preventDefault();
        return;
      }
      if ((event.key === "Enter" || event.key === " ") && target && target.matches && target.matches("[data-submit]")) {
        event.preventDefault(); // a slip of Enter never sends the form: Ctrl+Enter does
        say("Press Ctrl+Enter to submit.", false);
        return;
      }
      if (event.key === "Enter" && target === document.body) {
        event.preventDefault();
        return;
      }
    } else if (event.key === "Enter") {
      event.preventDefault(); // a choice is made with its own key, never by Enter
      return;
    }
    if (event.key === "r") {
      event.preventDefault();
      cycleReason();
      return;
    }
    if (event.key === "u" && undo()) {
      event.preventDefault();
      return;
    }
    var selector = '[data-key="' + CSS.escape(event.key) + '"]';
    var radio = task.querySelector("input" + selector);
    if (radio) {
      event.preventDefault();
      pickStrength(radio);
      return;
    }
    var scope = form ? task.querySelector(".skip") : task;
    var button = scope.querySelector("button" + selector);
    if (!button) return;
    event.preventDefault();
    choose(button.form, button);
  });

  draftsPrune();
  setup();
  root.dataset.ready = "1"; // keys work from here on (tests wait for this)
})();
