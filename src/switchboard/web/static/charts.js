// Line charts drawn as SVG, for the dashboard's statistics of the last hour.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 180;
const MARGIN = { left: 48, right: 12, top: 12, bottom: 24 };

function svgElement(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

/** Return a round upper bound for an axis whose data reach `value`. */
export function niceMaximum(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function formatValue(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  return String(Number(value.toFixed(2)));
}

// Spans the x axis may have, in seconds, with the step between time labels.
const SPANS = [
  [300, 60],
  [600, 120],
  [1200, 300],
  [1800, 300],
  [3600, 900],
];

/**
 * Return [span, tick]: the shortest axis span in seconds that shows `covered`
 * seconds of data, at most an hour, and the step between its time labels.
 */
export function chooseSpan(covered) {
  return SPANS.find(([span]) => span >= covered) || SPANS[SPANS.length - 1];
}

/**
 * Draw a line chart into the <svg> `svg`, replacing its content.
 *
 * `series` is a list of {className, points}, each point [time, value] with
 * time in seconds since the epoch. The x axis ends at `now` and spans the
 * shortest of 5, 10, 20, 30 and 60 minutes that covers the oldest point.
 * Points older than an hour are left out.
 */
export function drawLineChart(svg, series, { now, unit = "" }) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  const oldest = Math.min(now, ...series.flatMap((line) => line.points.map(([time]) => time)));
  const [span, tick] = chooseSpan(now - oldest);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const start = now - span;
  const visible = series.map((line) => ({
    ...line,
    points: line.points.filter(([time]) => time >= start && time <= now),
  }));
  const peak = Math.max(0, ...visible.flatMap((line) => line.points.map(([, value]) => value)));
  const top = niceMaximum(peak);
  const x = (time) => MARGIN.left + ((time - start) / span) * plotWidth;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  // Grid lines with the value of each, at quarters of the axis.
  for (let quarter = 0; quarter <= 4; quarter++) {
    const value = (top * quarter) / 4;
    svg.append(
      svgElement("line", {
        class: "grid", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value),
      }),
      svgElement(
        "text",
        { class: "axis", x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" },
        formatValue(value) + (quarter === 4 ? unit : ""),
      ),
    );
  }

  // Time labels, in minutes before now.
  for (let ago = span; ago >= 0; ago -= tick) {
    const label = ago === 0 ? "now" : `−${ago / 60} min`;
    let anchor = "middle";
    if (ago === span) anchor = "start";
    if (ago === 0) anchor = "end";
    svg.append(
      svgElement("text", { class: "axis", x: x(now - ago), y: HEIGHT - 6, "text-anchor": anchor }, label),
    );
  }

  for (const line of visible) {
    if (line.points.length === 0) continue;
    const path = line.points.map(([time, value]) => `${x(time).toFixed(1)},${y(value).toFixed(1)}`);
    svg.append(svgElement("polyline", { class: `line ${line.className}`, points: path.join(" ") }));
  }
}
