// Small DOM helpers shared by the pages.

/** Create an element with `attributes` and `children` (strings or nodes). */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** Show the element with id `shown` and hide the others of `ids`. */
export function showOnly(ids, shown) {
  for (const id of ids) document.getElementById(id).hidden = id !== shown;
}

/** Return `bytes` as "12.3 MB" and so on, in powers of 1000. */
export function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Return a time in milliseconds since the epoch as local HH:MM:SS. */
export function formatClock(milliseconds) {
  return new Date(milliseconds).toLocaleTimeString([], { hour12: false });
}
