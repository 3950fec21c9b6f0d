// Rejections per time bucket as a stacked bar chart in inline SVG (no library), with a data table beside it as
// the accessible alternative.

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#b3261e", "#1f6feb", "#9a6700", "#1a7f37", "#8250df", "#bf3989", "#0e7490", "#57606a"];

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function colourOf(codes, code) {
  return PALETTE[codes.indexOf(code) % PALETTE.length];
}

export function rejectionChart(data) {
  const width = 760;
  const height = 260;
  const pad = { left: 44, right: 36, top: 12, bottom: 40 };
  const buckets = data.buckets;
  const totals = buckets.map((b) => Object.values(b.counts).reduce((n, c) => n + c, 0));
  const max = Math.max(1, ...totals);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "rej-chart-title",
    class: "chart",
  });
  const title = svg("title", { id: "rej-chart-title" });
  title.textContent = `Rejections per ${data.bucket_seconds} s bucket, ${totals.reduce((n, c) => n + c, 0)} in all`;
  chart.append(title);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  for (const tick of [0, Math.ceil(max / 2), max]) {
    const y = pad.top + plotH - (tick / max) * plotH;
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    const label = svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end", class: "axis" });
    label.textContent = String(tick);
    chart.append(label);
  }
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  buckets.forEach((bucket, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let y = pad.top + plotH;
    for (const code of data.codes) {
      const count = bucket.counts[code] || 0;
      if (!count) continue;
      const h = (count / max) * plotH;
      y -= h;
      const rect = svg("rect", { x, y, width: barW, height: h, fill: colourOf(data.codes, code) });
      const tip = svg("title");
      tip.textContent = `${bucket.start}: ${code} ${count}`;
      rect.append(tip);
      chart.append(rect);
    }
    if (buckets.length <= 12 || i % Math.ceil(buckets.length / 12) === 0) {
      const label = svg("text", { x: x + barW / 2, y: height - pad.bottom + 16, "text-anchor": "middle", class: "axis" });
      label.textContent = bucket.start.slice(5, 16).replace("T", " ");
      chart.append(label);
    }
  });
  return chart;
}
