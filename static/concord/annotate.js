// Keyboard-first labeling. Every button with data-key answers to that key; "?" toggles the help; Enter does
// nothing. Forms marked data-once are posted with fetch, once: a second press while one is on its way is ignored.
// If the request fails (network down, 5xx), the choice stays marked on the page and the next key press sends it
// again with the same client id, so the server still stores exactly one judgment. Without JavaScript the forms
// post normally (POST -> redirect -> next task).
(function () {
  "use strict";
  var root = document.querySelector("[data-annotate]");
  if (!root) return;
  var help = document.getElementById("help");
  var status = document.getElementById("status");

  // Active time: the page counts only while it is visible and focused.
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
  tick();
  ["visibilitychange", "focus", "blur"].forEach(function (name) {
    (name === "visibilitychange" ? document : window).addEventListener(name, tick);
  });

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function send(form, button) {
    if (root.dataset.sent) return;
    root.dataset.sent = "1";
    root.classList.add("sending");
    root.querySelectorAll("[aria-pressed]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    if (button) button.setAttribute("aria-pressed", "true");
    tick();
    var data = new FormData(form);
    if (button && button.name) data.set(button.name, button.value);
    if (form.classList.contains("choices")) data.set("active_seconds", (activeMs / 1000).toFixed(1));
    say("Saving…", false);
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        return response.json().then(
          function (body) { return { response: response, body: body }; },
          function () { return { response: response, body: {} }; }
        );
      })
      .then(function (result) {
        if (result.body.next) {
          window.location.assign(result.body.next);
          return;
        }
        if (result.response.status === 400 && result.body.error) {
          say(result.body.error, true);
        } else if (result.response.status === 503 && result.body.error) {
          say(result.body.error + " Your choice is kept: press the key again to retry.", true);
        } else {
          say("Couldn't save (the server answered " + result.response.status + "). Your choice is kept: press the key again to retry.", true);
        }
        root.dataset.sent = "";
        root.classList.remove("sending");
      })
      .catch(function () {
        say("Couldn't reach the server. Your choice is kept: press the key again to retry.", true);
        root.dataset.sent = "";
        root.classList.remove("sending");
      });
  }

  // Strength scale (optional per project): a decisive choice (Response 1 or 2) also needs how much better. The
  // strength can be picked before or after the choice; the judgment is sent once both are known.
  var strength = root.querySelector("[data-strength]");
  var pending = null;
  function needsStrength(button) {
    return Boolean(strength && button && (button.value === "first" || button.value === "second") &&
      !strength.querySelector("input:checked"));
  }
  function choose(form, button) {
    if (needsStrength(button)) {
      pending = button;
      root.querySelectorAll("[aria-pressed]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      button.setAttribute("aria-pressed", "true");
      say("How much better? Press z (slightly), x (clearly) or c (much).", false);
      return;
    }
    send(form, button);
  }
  function pickStrength(input) {
    input.checked = true;
    if (pending) choose(pending.form, pending);
  }
  if (strength) {
    strength.addEventListener("change", function (event) {
      if (event.target.name === "strength") pickStrength(event.target);
    });
  }

  root.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      choose(form, event.submitter);
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && target.matches && target.matches("textarea, select, input:not([type=radio])")) return;
    if (event.key === "?") {
      help.hidden = !help.hidden;
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      help.hidden = true;
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault(); // a choice is made with its own key, never by Enter
      return;
    }
    var selector = '[data-key="' + CSS.escape(event.key) + '"]';
    var radio = root.querySelector("input" + selector);
    if (radio) {
      event.preventDefault();
      pickStrength(radio);
      return;
    }
    var button = root.querySelector("button" + selector);
    if (!button) return;
    event.preventDefault();
    choose(button.form, button);
  });
  root.dataset.ready = "1"; // keys work from here on (tests wait for this)
})();
