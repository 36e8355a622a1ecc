// Keyboard-first labeling: every button with data-key answers to that key; "?" toggles the help.
// A form marked data-once is sent once: a second key press or Enter cannot submit it again.
(function () {
  "use strict";
  var root = document.querySelector("[data-annotate]");
  if (!root) return;
  var help = document.getElementById("help");

  root.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (root.dataset.sent) {
        event.preventDefault();
        return;
      }
      root.dataset.sent = "1";
      root.classList.add("sending");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && target.matches && target.matches("input, textarea, select")) return;
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
    var button = root.querySelector('button[data-key="' + CSS.escape(event.key) + '"]');
    if (!button) return;
    event.preventDefault();
    if (root.dataset.sent) return;
    button.form.requestSubmit(button);
  });
})();
