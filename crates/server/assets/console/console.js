/*
 * Draws the console's charts with uPlot. Each chart is an element
 *   <div class="chart" data-chart="ID"></div>
 * beside the JSON it draws, <script type="application/json" id="ID">{...}</script>:
 *   {"kind": "bars" | "lines", "x": ["label", ...], "series": [{"label": "...", "values": [...]}],
 *    "y": "axis label"}
 * The same numbers are in a table under each chart, for readers and for pages without script.
 */
(function () {
  'use strict';
  var COLOURS = ['#0b57d0', '#b3261e', '#146c2e', '#8c4a00', '#6b3fa0', '#00696f', '#5f5f5f', '#a8005f'];

  function draw(el) {
    var source = document.getElementById(el.getAttribute('data-chart'));
    if (!source || typeof uPlot !== 'function') return;
    var spec = JSON.parse(source.textContent);
    var xs = spec.x.map(function (_, i) { return i; });
    var bars = spec.kind === 'bars';
    var series = [{ label: spec.xLabel || '', value: function (u, i) { return i == null ? '' : spec.x[i]; } }];
    spec.series.forEach(function (s, n) {
      var colour = COLOURS[n % COLOURS.length];
      series.push({
        label: s.label,
        stroke: colour,
        width: bars ? 1 : 2,
        fill: bars ? colour : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.6 / spec.series.length, 80], align: 0 }) : undefined,
        points: { show: !bars && spec.x.length < 40 }
      });
    });
    var width = Math.max(280, Math.min(el.clientWidth || 720, 960));
    // About one label per 90 pixels, whatever the number of points.
    var every = Math.max(1, Math.ceil(spec.x.length / Math.max(1, Math.floor(width / 90))));
    var opts = {
      width: width,
      height: 260,
      series: series,
      scales: { x: { time: false, range: [-0.6, spec.x.length - 0.4] } },
      axes: [
        { values: function (u, splits) { return splits.map(function (i) { return Number.isInteger(i) && i % every === 0 ? (spec.x[i] || '') : ''; }); } },
        { label: spec.y || '' }
      ],
      legend: { show: spec.series.length > 1 }
    };
    new uPlot(opts, [xs].concat(spec.series.map(function (s) { return s.values; })), el);
    el.setAttribute('data-drawn', 'true');
  }

  // A segment condition's size while it is typed: asked of the server half a second after
  // the last keystroke, with the form's CSRF token.
  function sizeAsTyped(area) {
    var out = document.getElementById(area.getAttribute('aria-describedby'));
    var form = area.form;
    var timer = null;
    area.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var body = new URLSearchParams();
        body.set('csrf', form.elements.csrf.value);
        body.set('condition', area.value);
        fetch(area.getAttribute('data-size-url'), { method: 'POST', body: body, credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (j) {
            out.textContent = j.error ? j.error : j.size + ' of ' + j.evaluated + ' customers match now';
          })
          .catch(function () { out.textContent = ''; });
      }, 500);
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-chart]'), function (el) {
      try { draw(el); } catch (e) { el.setAttribute('data-error', String(e)); }
    });
    Array.prototype.forEach.call(document.querySelectorAll('textarea[data-size-url]'), sizeAsTyped);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
