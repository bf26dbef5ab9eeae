"""The data dictionary page's inline CSS and script (no framework, no network).

The script reads the JSON data block, lists entities in a virtualised list (only the rows in
view exist in the DOM, so 100,000 entities scroll and filter quickly), and writes every value
with ``textContent``: nothing from the catalog is ever parsed as HTML.
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root{--fg:#1d2330;--mut:#5c6778;--bg:#fff;--alt:#f4f6f9;--line:#dde2ea;--acc:#2458c6;
--warn:#a15c00;--row:28px;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
*{box-sizing:border-box}body{margin:0;color:var(--fg);background:var(--bg);height:100vh;
display:flex;flex-direction:column}
header{padding:10px 16px;border-bottom:1px solid var(--line);background:var(--alt)}
h1{font-size:18px;margin:0}.source{margin:2px 0 8px;color:var(--mut);font-size:12px}
.filters{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#q{flex:1;min-width:240px;padding:6px 8px;font:inherit;border:1px solid var(--line);
border-radius:4px}select{font:inherit;padding:5px}#count{color:var(--mut)}
main{flex:1;display:flex;min-height:0}
nav{width:250px;overflow:auto;border-right:1px solid var(--line);padding:8px;font-size:13px}
nav button{display:block;width:100%;text-align:left;border:0;background:none;font:inherit;
padding:2px 4px;cursor:pointer;color:var(--fg);border-radius:3px;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}nav button:hover{background:var(--alt)}
nav button.on{background:#e3ebfb;color:var(--acc)}nav .p{padding-left:14px}
nav .k{padding-left:28px;color:var(--mut)}nav .n{float:right;color:var(--mut)}
#list{flex:1;overflow:auto;position:relative;outline:none}#spacer{position:relative}
.win{position:absolute;left:0;right:0}
.row,.group{height:var(--row);line-height:var(--row);padding:0 12px;white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.row{cursor:pointer;border-bottom:1px solid #f0f2f5}.row:hover{background:var(--alt)}
.row.sel{background:#e3ebfb}.group{font-weight:600;background:var(--alt);color:var(--mut);
font-size:12px;text-transform:none}
.name{font-weight:500}.badge{display:inline-block;font-size:11px;line-height:16px;
padding:0 6px;margin-left:6px;border-radius:8px;background:#eef1f6;color:var(--mut)}
.badge.hidden{background:#f3e8ff;color:#6b3fa0}.badge.nodesc{background:#fff4e0;color:var(--warn)}
.badge.stale{background:#fde8e8;color:#a02020}.place{color:var(--mut);margin-left:8px;font-size:12px}
aside{width:420px;overflow:auto;border-left:1px solid var(--line);padding:12px 16px}
aside h2{font-size:16px;margin:0 0 4px;word-break:break-word}.hint{color:var(--mut)}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid var(--line);padding:4px 6px;vertical-align:top;text-align:left;
word-break:break-word}th{color:var(--mut);font-weight:500;width:38%}
h3{font-size:13px;margin:14px 0 4px;color:var(--mut);text-transform:uppercase}
ol.tl{list-style:none;padding:0;margin:0}ol.tl li{padding:4px 0;border-bottom:1px solid #f0f2f5}
.what{font-weight:600}.when{color:var(--mut);font-size:12px}code{font-size:12px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var t0 = performance.now();
  var timing = window.kmsnapTiming = {};
  var D = JSON.parse(document.getElementById("kmsnap-data").textContent);
  var E = D.entities, K = D.kinds, A = D.accounts, P = D.products, FL = D.flags;
  timing.parse = performance.now() - t0;
  var ROW = 28;
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    return n;
  }
  function show(v) {
    if (v === null || v === undefined) { return "null"; }
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function nameOf(e) { return e[4] === null ? "(no name)" : e[4]; }
  function place(e) {
    var parts = [];
    if (e[1] >= 0) { parts.push(A[e[1]][1] === null ? A[e[1]][0] : A[e[1]][1]); }
    if (e[2] >= 0) { parts.push(P[e[2]][1] === null ? P[e[2]][0] : P[e[2]][1]); }
    return parts.join(" \u203a ");
  }
  // What search looks in: name, display name and id, lower-cased once.
  var hay = new Array(E.length);
  var displayAt = K.map(function (k) { return k.columns.indexOf("display_name"); });
  for (var i = 0; i < E.length; i++) {
    var e = E[i], s = (e[4] === null ? "" : e[4]) + "\n" + e[3], d = displayAt[e[0]];
    if (d >= 0 && typeof e[5][d] === "string") { s += "\n" + e[5][d]; }
    hay[i] = s.toLowerCase();
  }
  var state = { q: "", kind: -1, account: -1, product: -1, hidden: false, nodesc: false,
    stale: false, selected: -1 };
  var items = [], heads = [];

  function filter() {
    var started = performance.now();
    var q = state.q.toLowerCase(), need = 0, last = "";
    if (state.hidden) { need |= FL.hidden; }
    if (state.nodesc) { need |= FL.no_description; }
    if (state.stale) { need |= FL.stale; }
    items = []; heads = [];
    for (var i = 0; i < E.length; i++) {
      var e = E[i];
      if (state.kind >= 0 && e[0] !== state.kind) { continue; }
      if (state.product >= 0 && e[2] !== state.product) { continue; }
      if (state.account >= 0 && e[1] !== state.account) { continue; }
      if ((e[6] & need) !== need) { continue; }
      if (q && hay[i].indexOf(q) < 0) { continue; }
      var group = e[1] + "/" + e[2] + "/" + e[0];
      if (group !== last) {
        last = group;
        var title = place(e) || "(no account)";
        heads.push(title + " \u203a " + K[e[0]].name);
        items.push(-heads.length);
      }
      items.push(i);
    }
    var n = items.length - heads.length;
    $("count").textContent = n === E.length ? E.length + " entities" :
      n + " of " + E.length + " entities";
    $("spacer").style.height = (items.length * ROW) + "px";
    $("list").scrollTop = 0;
    render();
    timing.lastFilter = performance.now() - started;
    timing.lastCount = n;
  }

  function render() {
    var list = $("list"), spacer = $("spacer");
    var first = Math.max(0, Math.floor(list.scrollTop / ROW) - 10);
    var last = Math.min(items.length, first + Math.ceil((list.clientHeight || 800) / ROW) + 20);
    var win = el("div", "win");
    win.style.top = (first * ROW) + "px";
    for (var at = first; at < last; at++) {
      var item = items[at];
      if (item < 0) { win.appendChild(el("div", "group", heads[-item - 1])); continue; }
      var e = E[item], row = el("div", item === state.selected ? "row sel" : "row");
      row.setAttribute("data-i", String(item));
      row.appendChild(el("span", "name", nameOf(e)));
      row.appendChild(el("span", "badge", K[e[0]].name));
      if (e[6] & FL.hidden) { row.appendChild(el("span", "badge hidden", "hidden")); }
      if (e[6] & FL.no_description) {
        row.appendChild(el("span", "badge nodesc", "no description"));
      }
      if (e[6] & FL.stale) { row.appendChild(el("span", "badge stale", "stale")); }
      row.appendChild(el("span", "place", place(e)));
      win.appendChild(row);
    }
    spacer.replaceChildren(win);
  }

  function detail(i) {
    state.selected = i;
    var e = E[i], k = K[e[0]], box = $("detail");
    var nodes = [el("h2", null, nameOf(e)), el("p", "when", k.name + " \u00b7 " + place(e))];
    var table = el("table"), rows = [["id", e[3]]];
    k.columns.forEach(function (c, j) {
      if (k.documented[j] || e[5][j] !== null) { rows.push([c, show(e[5][j])]); }
    });
    rows.forEach(function (r) {
      var tr = el("tr"); tr.appendChild(el("th", null, r[0])); tr.appendChild(el("td", null, r[1]));
      table.appendChild(tr);
    });
    nodes.push(table);
    var stats = e[5][k.columns.length];
    if (stats) {
      nodes.push(el("h3", null, "usage"));
      var st = el("table");
      Object.keys(stats).sort().forEach(function (f) {
        var tr = el("tr"); tr.appendChild(el("th", null, f));
        tr.appendChild(el("td", null, show(stats[f]))); st.appendChild(tr);
      });
      nodes.push(st);
    }
    if (D.history) {
      nodes.push(el("h3", null, "timeline"));
      var events = e[7] >= 0 ? D.timelines[e[7]] : [];
      if (!events.length) { nodes.push(el("p", "hint", "No change recorded in git.")); }
      var ol = el("ol", "tl");
      events.forEach(function (t) {
        var li = el("li");
        li.appendChild(el("span", "what", t[2]));
        if (t[3]) { li.appendChild(document.createTextNode(" " + t[3])); }
        li.appendChild(el("div", "when", t[0] + " \u00b7 " + t[1] + " \u00b7 " + t[4]));
        ol.appendChild(li);
      });
      nodes.push(ol);
    }
    box.replaceChildren.apply(box, nodes);
    render();
  }

  function tree() {
    var nav = $("tree"), counts = {}, nodes = [];
    E.forEach(function (e) {
      var keys = ["a" + e[1], "p" + e[2], "k" + e[2] + "/" + e[0]];
      keys.forEach(function (key) { counts[key] = (counts[key] || 0) + 1; });
    });
    function button(cls, text, n, pick) {
      var b = el("button", cls, text);
      b.insertBefore(el("span", "n", n), b.firstChild);
      b.addEventListener("click", function () {
        nav.querySelectorAll("button.on").forEach(function (x) { x.classList.remove("on"); });
        b.classList.add("on"); pick(); filter();
      });
      return b;
    }
    nodes.push(button("on", "All accounts", E.length, function () {
      state.account = -1; state.product = -1; state.kind = -1; $("kind").value = "";
    }));
    var byAccount = {};
    P.forEach(function (p, j) { (byAccount[p[2]] = byAccount[p[2]] || []).push(j); });
    var accountIds = A.map(function (a, j) { return j; });
    if (byAccount[-1]) { accountIds.push(-1); }
    accountIds.forEach(function (a) {
      var label = a < 0 ? "(no account)" : (A[a][1] === null ? A[a][0] : A[a][1]);
      nodes.push(button("a", label, counts["a" + a] || 0, function () {
        state.account = a; state.product = -1; state.kind = -1;
      }));
      (byAccount[a] || []).forEach(function (j) {
        var p = P[j], text = (p[1] === null ? p[0] : p[1]) + (p[3] ? " (" + p[3] + ")" : "");
        nodes.push(button("p", text, counts["p" + j] || 0, function () {
          state.account = -1; state.product = j; state.kind = -1;
        }));
        K.forEach(function (k, ki) {
          var n = counts["k" + j + "/" + ki];
          if (!n || k.name === "product") { return; }
          nodes.push(button("k", k.name, n, function () {
            state.account = -1; state.product = j; state.kind = ki;
          }));
        });
      });
    });
    nav.replaceChildren.apply(nav, nodes);
  }

  var kinds = $("kind");
  K.forEach(function (k, ki) {
    var o = el("option", null, k.name); o.value = String(ki); kinds.appendChild(o);
  });
  kinds.addEventListener("change", function () {
    state.kind = kinds.value === "" ? -1 : Number(kinds.value); filter();
  });
  [["f-hidden", "hidden"], ["f-nodesc", "nodesc"], ["f-stale", "stale"]].forEach(function (f) {
    $(f[0]).addEventListener("change", function (ev) {
      state[f[1]] = ev.target.checked; filter();
    });
  });
  if (!D.stats) {
    $("f-stale").disabled = true; $("l-stale").title = "The snapshot has no usage stats";
  }
  var pending = 0;
  $("q").addEventListener("input", function (ev) {
    clearTimeout(pending);
    var value = ev.target.value;
    pending = setTimeout(function () { state.q = value; filter(); }, 60);
  });
  $("list").addEventListener("scroll", function () { window.requestAnimationFrame(render); });
  $("list").addEventListener("click", function (ev) {
    var row = ev.target.closest(".row");
    if (row) { detail(Number(row.getAttribute("data-i"))); }
  });
  window.kmsnapSearch = function (text) { $("q").value = text; state.q = text; filter();
    return timing.lastFilter; };
  var hash = /^#q=(.*)$/.exec(location.hash);
  if (hash) { state.q = decodeURIComponent(hash[1]); $("q").value = state.q; }
  tree();
  filter();
  timing.load = performance.now() - t0;
  document.documentElement.setAttribute("data-ready", "1");
})();
"""
