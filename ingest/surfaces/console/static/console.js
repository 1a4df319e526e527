// fleetlake console: table filter and sort, auto-refresh, vehicle picker, copy link. No library.
"use strict";
(function () {
  function rows(table) { return Array.from(table.tBodies[0].rows).filter(r => r.dataset.fleet); }

  const filter = document.getElementById("filter");
  const statusFilter = document.getElementById("status-filter");
  const fleets = document.getElementById("fleets");
  function applyFilter() {
    const q = (filter.value || "").toLowerCase(), s = statusFilter.value;
    for (const r of rows(fleets)) {
      const show = r.textContent.toLowerCase().includes(q) && (!s || r.dataset.status === s);
      r.hidden = !show;
    }
    sessionStorage.setItem("fleetlake-filter", JSON.stringify([filter.value, s]));
  }
  if (fleets && filter && statusFilter) {
    const saved = JSON.parse(sessionStorage.getItem("fleetlake-filter") || "null");
    if (saved) { filter.value = saved[0]; statusFilter.value = saved[1]; }
    filter.addEventListener("input", applyFilter);
    statusFilter.addEventListener("change", applyFilter);
    applyFilter();
  }

  for (const table of document.querySelectorAll("table.sortable")) {
    table.tHead.querySelectorAll("th[data-sort]").forEach((th, col) => {
      th.addEventListener("click", () => {
        const asc = th.dataset.dir !== "asc";
        table.tHead.querySelectorAll("th").forEach(h => delete h.dataset.dir);
        th.dataset.dir = asc ? "asc" : "desc";
        const key = r => {
          const c = r.cells[col];
          const v = c.dataset.value !== undefined ? c.dataset.value : c.textContent.trim();
          return th.dataset.sort === "num" ? Number(v) : v.toLowerCase();
        };
        const sorted = rows(table).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (asc ? 1 : -1));
        for (const r of sorted) table.tBodies[0].appendChild(r);
      });
    });
  }

  // Reload while the box is ticked, unless the user is typing in a form.
  const auto = document.getElementById("autorefresh");
  if (auto) {
    auto.checked = sessionStorage.getItem("fleetlake-autorefresh") !== "off";
    auto.addEventListener("change", () => sessionStorage.setItem("fleetlake-autorefresh", auto.checked ? "on" : "off"));
    setInterval(() => {
      const typing = document.activeElement && ["INPUT", "SELECT"].includes(document.activeElement.tagName)
        && document.activeElement !== auto;
      if (auto.checked && !typing) location.reload();
    }, 5000);
  }

  for (const sel of document.querySelectorAll("select.autosubmit")) {
    sel.addEventListener("change", () => sel.form.submit());
  }
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", () => {
      const text = document.getElementById(b.dataset.copy).textContent;
      navigator.clipboard.writeText(text).then(() => { b.textContent = "Copied"; });
    });
  }
})();
