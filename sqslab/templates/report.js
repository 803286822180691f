/* sqslab report charts. Static code: it reads the run's data from the JSON in
   #sqslab-data and draws it with the vendored uPlot. Names from the run (phases,
   actions, labels) reach the page only as canvas text or through textContent. */
(function () {
  "use strict";
  var holder = document.getElementById("sqslab-data");
  if (!holder || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  var charts = [];
  var timeCharts = [];
  window.sqslabCharts = charts;

  var COLORS = ["#2563eb", "#f59e0b", "#dc2626", "#16a34a", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4b5563"];
  var BANDS = ["rgba(37, 99, 235, 0.08)", "rgba(22, 163, 74, 0.08)"];
  var HEIGHT = 270;

  function fmt(digits, unit) {
    return function (u, v) { return v == null ? "–" : v.toFixed(digits) + (unit || ""); };
  }

  function clip(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }

  // An action's label: its name, and what it does unless the name says so already.
  function actionLabel(a) {
    var name = String(a.name), does = String(a["do"] || "");
    return name.indexOf(does) === 0 ? name : name + " (" + does + ")";
  }

  // Text shortened with an ellipsis to fit a width in canvas pixels.
  function fit(ctx, text, width) {
    if (ctx.measureText(text).width <= width) { return text; }
    while (text.length > 1 && ctx.measureText(text + "\u2026").width > width) { text = text.slice(0, -1); }
    return text + "\u2026";
  }

  function widthOf(el) { return Math.max(320, el.clientWidth || 800); }

  // Phases as shaded bands under the lines, timed SQS faults as red bands along the
  // bottom, actions as dashed marks over them.
  function markers(phases, actions, windows) {
    var dpr = window.devicePixelRatio || 1;
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, b = u.bbox;
          ctx.save();
          ctx.font = (11 * dpr) + "px system-ui, sans-serif";
          ctx.textAlign = "left";
          ctx.textBaseline = "top";
          phases.forEach(function (p, i) {
            if (p.end == null || p.start == null) { return; }
            var x0 = Math.max(b.left, u.valToPos(p.start, "x", true));
            var x1 = Math.min(b.left + b.width, u.valToPos(p.end, "x", true));
            if (x1 < b.left || x0 > b.left + b.width) { return; }
            ctx.fillStyle = BANDS[i % BANDS.length];
            ctx.fillRect(x0, b.top, Math.max(2 * dpr, x1 - x0), b.height);
            ctx.fillStyle = "#4b5563";
            ctx.fillText(clip(p.name, 40), x0 + 3 * dpr, b.top + 3 * dpr);
          });
          (windows || []).forEach(function (w) {
            if (w.start == null) { return; }
            var end = w.end == null ? u.scales.x.max : w.end;
            var x0 = Math.max(b.left, u.valToPos(w.start, "x", true));
            var x1 = Math.min(b.left + b.width, u.valToPos(end, "x", true));
            if (x1 < b.left || x0 > b.left + b.width) { return; }
            ctx.fillStyle = "rgba(220, 38, 38, 0.12)";
            ctx.fillRect(x0, b.top, Math.max(2 * dpr, x1 - x0), b.height);
            ctx.fillStyle = "#b91c1c";
            ctx.textBaseline = "bottom";
            ctx.fillText(fit(ctx, "fault: " + w.text, Math.max(20 * dpr, x1 - x0 - 6 * dpr)), x0 + 3 * dpr, b.top + b.height - 3 * dpr);
            ctx.textBaseline = "top";
          });
          ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, b = u.bbox;
          ctx.save();
          ctx.font = (11 * dpr) + "px system-ui, sans-serif";
          ctx.textAlign = "left";
          ctx.textBaseline = "alphabetic";
          ctx.setLineDash([5 * dpr, 4 * dpr]);
          ctx.lineWidth = 1.5 * dpr;
          actions.forEach(function (a) {
            var x = u.valToPos(a.t, "x", true);
            if (x < b.left || x > b.left + b.width) { return; }
            var color = a.status === "failed" ? "#b91c1c" : "#111827";
            ctx.strokeStyle = color;
            ctx.beginPath();
            ctx.moveTo(x, b.top);
            ctx.lineTo(x, b.top + b.height);
            ctx.stroke();
            ctx.save();
            ctx.translate(x - 4 * dpr, b.top + b.height - 4 * dpr);
            ctx.rotate(-Math.PI / 2);
            ctx.fillStyle = color;
            ctx.fillText(fit(ctx, actionLabel(a), b.height - 8 * dpr), 0, 0);
            ctx.restore();
          });
          ctx.restore();
        }]
      }
    };
  }

  var syncing = false;
  function followZoom(u, key) {
    if (key !== "x" || syncing) { return; }
    syncing = true;
    timeCharts.forEach(function (other) {
      if (other !== u) { other.setScale("x", {min: u.scales.x.min, max: u.scales.x.max}); }
    });
    syncing = false;
  }

  // Every time chart spans [0, end], so zooming one can be followed by the others and a
  // double-click shows the whole run everywhere.
  function span(x, ys, end) {
    x = x.slice();
    ys = ys.map(function (y) { return y.slice(); });
    if (!x.length || x[0] > 0) { x.unshift(0); ys.forEach(function (y) { y.unshift(null); }); }
    if (x[x.length - 1] < end) { x.push(end); ys.forEach(function (y) { y.push(null); }); }
    return [x].concat(ys);
  }

  function draw(id, opts, aligned, isTime) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try {
      opts.width = widthOf(el);
      opts.height = opts.height || HEIGHT;
      var u = new uPlot(opts, aligned, el);
      u.sqslabId = id;
      charts.push(u);
      if (isTime) { timeCharts.push(u); }
      return u;
    } catch (err) {
      var p = document.createElement("p");
      p.className = "chart-error";
      p.textContent = "This chart could not be drawn: " + err;
      el.appendChild(p);
      throw err;
    }
  }

  function timeOpts(yLabel, series, plugins, digits) {
    return {
      scales: {x: {time: false}},
      series: [{label: "t", value: fmt(1, " s")}].concat(series),
      axes: [
        {label: "seconds from t0", values: function (u, vals) { return vals.map(function (v) { return v + " s"; }); }},
        {label: yLabel, size: 60}
      ],
      cursor: {sync: {key: "sqslab-time"}, drag: {x: true, y: false}},
      hooks: {setScale: [followZoom]},
      plugins: plugins,
      legend: {live: true}
    };
  }

  function line(label, color, digits, unit, extra) {
    var s = {label: label, stroke: color, width: 1.6, value: fmt(digits, unit), points: {show: false}};
    for (var k in (extra || {})) { s[k] = extra[k]; }
    return s;
  }

  function drawRun(run) {
    var s = run.series, lat = run.latency;
    var end = Math.max(s.t.length ? s.t[s.t.length - 1] : 0, lat.t.length ? lat.t[lat.t.length - 1] + lat.bucket : 0);
    var plugins = [markers(run.phases, run.actions, run.windows)];
    draw("chart-depth", timeOpts("messages", [
      line("visible", COLORS[0], 0, "", {fill: "rgba(37, 99, 235, 0.10)"}),
      line("in flight", COLORS[1], 0),
      line("DLQ", COLORS[2], 0)
    ], plugins), span(s.t, [s["queue.visible"], s["queue.in_flight"], s["dlq.messages"]], end), true);
    draw("chart-rates", timeOpts("msg/s", [
      line("sent/s", COLORS[0], 1),
      line("processed/s", COLORS[3], 1),
      line("failed/s", COLORS[2], 1)
    ], plugins), span(s.t, [s.sent_rate, s.processed_rate, s.failed_rate], end), true);
    var stepped = uPlot.paths.stepped({align: 1});
    draw("chart-tasks", timeOpts("tasks", [
      line("running", COLORS[3], 0, "", {paths: stepped, width: 2}),
      line("desired", COLORS[4], 0, "", {paths: stepped, dash: [6, 4]})
    ], plugins), span(s.t, [s["tasks.running"], s["tasks.desired"]], end), true);
    draw("chart-latency", timeOpts("seconds", [
      line("p50", COLORS[3], 3, " s"),
      line("p95", COLORS[1], 3, " s"),
      line("p99", COLORS[2], 3, " s"),
      line("max", COLORS[9], 3, " s", {dash: [3, 3]})
    ], plugins), span(lat.t, [lat.p50, lat.p95, lat.p99, lat.max], end), true);
    if (run.concurrency) {
      var cc = run.concurrency;
      draw("chart-concurrency", timeOpts("invocations", [
        line("in progress", COLORS[3], 0, "", {paths: stepped, width: 2, fill: "rgba(22, 163, 74, 0.10)"}),
        line("throttled", COLORS[2], 0, "", {paths: stepped})
      ], plugins), span(cc.t, [cc.concurrency, cc.throttled], end), true);
    }
    if (run.blocked) {
      var bl = run.blocked;
      draw("chart-blocked", timeOpts("groups", [
        line("blocked groups", COLORS[2], 0, "", {paths: stepped, fill: "rgba(220, 38, 38, 0.12)"})
      ], plugins), span(bl.t, [bl.blocked], end), true);
    }
    var h = run.histogram;
    draw("chart-histogram", {
      scales: {x: {time: false, range: function (u, min, max) { return [(min || 0) - 0.5, (max || 0) + 0.5]; }}},
      series: [
        {label: "receive count", value: fmt(0)},
        {label: "messages", stroke: COLORS[0], fill: "rgba(37, 99, 235, 0.55)", value: fmt(0),
         paths: uPlot.paths.bars({size: [0.6, 80]}), points: {show: false}}
      ],
      axes: [{label: "receive count", incrs: [1, 2, 5, 10, 20, 50, 100]}, {label: "messages", size: 60}],
      cursor: {drag: {x: false, y: false}},
      height: 200
    }, [h.receive_count, h.messages], false);
  }

  function drawCompare(cmp) {
    var labels = cmp.labels;
    var end = 0;
    cmp.depth.forEach(function (d) { if (d.t.length) { end = Math.max(end, d.t[d.t.length - 1]); } });
    function overlay(id, key, yLabel) {
      var tables = cmp.depth.map(function (d) { return [d.t, d[key]]; });
      var aligned = uPlot.join(tables);
      var series = labels.map(function (label, i) {
        return line(label, COLORS[i % COLORS.length], 0, "", {spanGaps: true, width: 2});
      });
      return draw(id, timeOpts(yLabel, series, []), span(aligned[0], aligned.slice(1), end), true);
    }
    overlay("chart-compare-depth", "depth", "messages");
    overlay("chart-compare-dlq", "dlq", "messages");
  }

  if (data.depth && data.labels) { drawCompare(data); } else if (data.series) { drawRun(data); }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (u) { u.setSize({width: widthOf(u.root.parentNode), height: u.height}); });
    }, 100);
  });
})();
