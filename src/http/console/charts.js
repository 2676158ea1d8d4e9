// Small bar charts as inline SVG, drawn from the figures the page already shows in a table
// (the table is the accessible form of the same numbers; the chart is an image with a
// text alternative). Colours come from console.css classes.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** A "nice" upper bound for an axis: 1, 2, 5 × a power of ten. */
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /**
   * Grouped bars: `labels` along the x axis, one bar per series in each group.
   * series: [{ name, values: [number|null], cls }]. `format` writes an axis value.
   */
  function bars({ id, title, description, labels, series, max, integer = false, format = String, width = 640 }) {
    // Drawn at the width it will be shown at (a phone gets a narrower picture, not smaller
    // text).
    const height = Math.round(Math.max(200, Math.min(260, width * 0.5)));
    const left = 44;
    const bottom = 36;
    const top = 12;
    const plotW = width - left - 8;
    const plotH = height - top - bottom;
    const all = series.flatMap((s) => s.values.filter((v) => v !== null));
    const top1 = Math.max(0, ...all);
    // Counts get whole-number grid lines (four steps).
    const ymax = max !== undefined ? max : (integer ? Math.max(4, Math.ceil(top1 / 4) * 4) : niceMax(top1));
    const svg = el('svg', {
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-labelledby': `${id}-title ${id}-desc`,
      class: 'chart',
      id,
    });
    svg.append(el('title', { id: `${id}-title` }, title));
    svg.append(el('desc', { id: `${id}-desc` }, description));
    for (let i = 0; i <= 4; i += 1) {
      const v = (ymax * i) / 4;
      const y = top + plotH - (plotH * i) / 4;
      svg.append(el('line', { x1: left, x2: width - 8, y1: y, y2: y, class: 'grid' }));
      svg.append(el('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, format(v)));
    }
    const n = Math.max(labels.length, 1);
    const group = plotW / n;
    const barW = Math.max(1, Math.min((group * 0.8) / series.length, 40));
    const every = Math.ceil(n / 8);
    labels.forEach((label, i) => {
      const x0 = left + i * group + (group - barW * series.length) / 2;
      series.forEach((s, j) => {
        const v = s.values[i];
        if (v === null || v === undefined) return;
        const h = ymax > 0 ? (plotH * v) / ymax : 0;
        const bar = el('rect', {
          x: x0 + j * barW, y: top + plotH - h, width: Math.max(barW - 1, 1), height: Math.max(h, 0), class: s.cls,
        });
        bar.append(el('title', {}, `${label}: ${s.name} ${format(v)}`));
        svg.append(bar);
      });
      if (i % every === 0) {
        svg.append(el('text', {
          x: left + i * group + group / 2, y: height - bottom + 16, class: 'axis', 'text-anchor': 'middle',
        }, label));
      }
    });
    svg.append(el('line', { x1: left, x2: width - 8, y1: top + plotH, y2: top + plotH, class: 'baseline' }));
    const figure = document.createElement('figure');
    figure.className = 'chart-figure';
    figure.append(svg);
    const legend = document.createElement('figcaption');
    legend.className = 'legend';
    const strong = document.createElement('strong');
    strong.textContent = `${title}. `;
    legend.append(strong);
    for (const s of series) {
      const item = document.createElement('span');
      const swatch = document.createElement('span');
      swatch.className = `swatch ${s.cls}`;
      swatch.setAttribute('aria-hidden', 'true');
      item.append(swatch, document.createTextNode(s.name));
      legend.append(item);
    }
    figure.append(legend);
    return figure;
  }

  window.Charts = { bars };
}());
