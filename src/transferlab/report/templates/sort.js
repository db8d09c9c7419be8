(function () {
  "use strict";
  // Each cell carries its sort key in data-sort (numbers as plain decimals, empty when missing),
  // so sorting never parses formatted text such as "+1.2 [−0.3, 2.4]".
  function keyOf(row, column) {
    var cell = row.cells[column];
    if (!cell) { return ""; }
    var key = cell.getAttribute("data-sort");
    return key === null ? cell.textContent.trim() : key;
  }
  function compare(a, b, numeric) {
    if (!numeric) { return a.localeCompare(b, undefined, { numeric: true }); }
    var x = parseFloat(a), y = parseFloat(b);
    return x - y;
  }
  function sortBy(table, header, column) {
    var numeric = header.classList.contains("num");
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = keyOf(r1, column), b = keyOf(r2, column);
      // Missing values stay at the bottom in both directions.
      if (a === "" || b === "") { return (a === "") - (b === ""); }
      var order = compare(a, b, numeric);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      var button = header.querySelector("button");
      if (button) {
        button.addEventListener("click", function () { sortBy(table, header, column); });
      }
    });
  });
})();
