// Huitong pages: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  // Large text without a reload; the link still works (and sets the cookie) without JS.
  document.querySelectorAll("[data-text-toggle]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var large = !document.documentElement.classList.contains("text-large");
      document.documentElement.classList.toggle("text-large", large);
      link.setAttribute("aria-pressed", large ? "true" : "false");
      document.cookie = "huitong_text=" + (large ? "large" : "normal") +
        "; path=/app; max-age=31536000; samesite=strict";
    });
  });

  // Filter selects apply as soon as they change.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) { select.form.submit(); }
    });
  });

  // Ask before a form with data-confirm does something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // A quick filter over a table's rows (shown only when scripts run).
  document.querySelectorAll("[data-filter-for]").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    if (!table || !input) { return; }
    box.hidden = false;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  });
})();
