/* Agent console: keeps the board and the call page current from server-sent events.
 * Plain JavaScript, no build step. Rows are built with textContent only (never HTML
 * from event data); the call page swaps in a panel the server rendered and escaped. */
(function () {
  "use strict";

  var lang = document.body.dataset.lang === "en" ? "en-GB" : "de-DE";

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) el.textContent = when.toLocaleString(lang);
    });
  }

  /* Stream ids are "<ms>-<seq>"; both parts fit a double. */
  function parseId(id) {
    var parts = String(id || "0-0").split("-");
    return [Number(parts[0]) || 0, Number(parts[1]) || 0];
  }
  function newer(a, b) {
    var x = parseId(a), y = parseId(b);
    return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
  }

  /* Opens the stream and shows whether it is live; the browser itself reconnects and
   * sends Last-Event-ID, so the server resumes right after the last event we got. */
  function connect(url, handlers) {
    var live = document.getElementById("live");
    var notice = document.getElementById("reconnecting");
    var noticeTimer = null;
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      live.dataset.live = "1";
      clearTimeout(noticeTimer);
      notice.hidden = true;
    });
    source.addEventListener("call", handlers.call);
    source.addEventListener("reset", handlers.reset);
    source.addEventListener("error", function () {
      live.dataset.live = "0";
      /* A stream ends every few minutes on purpose: only say so if it stays away. */
      clearTimeout(noticeTimer);
      noticeTimer = setTimeout(function () { notice.hidden = false; }, 5000);
      if (source.readyState === EventSource.CLOSED) {
        /* Refused (e.g. 401 after the session ended): the reload shows the login. */
        setTimeout(function () { window.location.reload(); }, 2000);
      }
    });
    return source;
  }

  function ageText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function startBoard(board) {
    var tbody = document.getElementById("calls");
    var empty = document.getElementById("empty");
    var t = JSON.parse(document.getElementById("texts").textContent);
    var seen = new Map(); /* call_sid -> newest event id applied, also for removed rows */

    function label(kind, value) {
      if (value === null || value === undefined || value === "") return t[kind + "_none"] || "–";
      return t[kind + "_" + value] || String(value);
    }
    function cell(tr, text, cls) {
      var td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
      return td;
    }
    function render(pop, id) {
      var tr = document.createElement("tr");
      tr.dataset.call = pop.call_sid;
      tr.dataset.eventId = id;
      tr.dataset.identified = pop.identified ? "true" : "false";
      tr.dataset.started = pop.started_at || "";
      /* As agent_text.phase: only a routed call is (not) identified; ended calls never
       * get here, they leave the board. */
      var phase = !pop.routed ? "identifying" : pop.identified ? "identified" : "not_identified";
      tr.dataset.phase = phase;
      var badge = document.createElement("span");
      badge.className = "badge " + phase;
      badge.textContent = t[phase];
      cell(tr, "").appendChild(badge);
      cell(tr, "", "age");
      cell(tr, pop.caller || t.withheld, "caller");
      cell(tr, pop.identified ? pop.name + " (" + pop.customer_number + ")" : "–", "customer");
      cell(tr, label("topic", pop.topic));
      cell(tr, label("reason", pop.reason));
      var state = pop.routed ? t.routed : t.in_ivr;
      cell(tr, pop.call_status ? state + " · " + label("status", pop.call_status) : state, "state");
      var link = document.createElement("a");
      link.href = board.dataset.callUrl.replace("CALLSID", encodeURIComponent(pop.call_sid));
      link.textContent = t.open;
      cell(tr, "").appendChild(link);
      return tr;
    }
    function before(a, b) {
      /* The server's order: start time (ISO text sorts right), then CallSid, descending. */
      if (a.dataset.started !== b.dataset.started) return a.dataset.started > b.dataset.started;
      return a.dataset.call > b.dataset.call;
    }
    function insert(tr) {
      var rows = tbody.querySelectorAll("tr");
      for (var i = 0; i < rows.length; i++) {
        if (before(tr, rows[i])) {
          tbody.insertBefore(tr, rows[i]);
          return;
        }
      }
      tbody.appendChild(tr);
    }
    function apply(id, pop) {
      if (!pop || !pop.call_sid) return;
      var known = seen.get(pop.call_sid);
      if (known && !newer(id, known)) return; /* already applied: never twice */
      seen.set(pop.call_sid, id);
      var old = tbody.querySelector('tr[data-call="' + CSS.escape(pop.call_sid) + '"]');
      if (old) old.remove();
      if (!pop.ended) {
        var tr = render(pop, id);
        tr.classList.add("fresh");
        insert(tr);
      }
      tick();
    }
    function tick() {
      var now = Date.now();
      tbody.querySelectorAll("tr").forEach(function (tr) {
        var started = Date.parse(tr.dataset.started);
        if (!isNaN(started)) tr.querySelector(".age").textContent = ageText((now - started) / 1000);
      });
      empty.hidden = tbody.querySelector("tr") !== null;
    }

    tbody.querySelectorAll("tr").forEach(function (tr) { seen.set(tr.dataset.call, tr.dataset.eventId); });
    tick();
    setInterval(tick, 1000);
    connect(board.dataset.events + "?after=" + encodeURIComponent(board.dataset.after), {
      call: function (ev) { apply(ev.lastEventId, JSON.parse(ev.data)); },
      /* Events were trimmed or the stream was lost: start again from a fresh snapshot. */
      reset: function () { window.location.reload(); },
    });
  }

  function startCall(root) {
    var pop = document.getElementById("pop");
    var busy = false, again = false;
    function refresh() {
      /* One fetch at a time; a change during it triggers exactly one more. */
      if (busy) { again = true; return; }
      busy = true;
      fetch(root.dataset.popUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { window.location.reload(); return null; }
          return response.text();
        })
        .then(function (html) {
          if (html) { pop.innerHTML = html; localizeTimes(pop); }
        })
        .finally(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    }
    var url = root.dataset.events + "?call=" + encodeURIComponent(root.dataset.call) +
      "&after=" + encodeURIComponent(root.dataset.after);
    connect(url, { call: refresh, reset: refresh });
  }

  localizeTimes(document);
  var board = document.getElementById("board");
  if (board) startBoard(board);
  var call = document.getElementById("call");
  if (call) startCall(call);
})();
