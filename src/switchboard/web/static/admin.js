// The admin dashboard: logs in, polls GET /v1/admin/stats and drains gateways.
//
// The token lives in sessionStorage, so it is gone when the tab closes and
// other tabs do not share it.

import { ApiError, login, logout, randomDevice, request } from "./api.js";
import { drawLineChart } from "./charts.js";
import { element, formatBytes, formatClock, showOnly } from "./dom.js";

const POLL_MS = 2000;
const TOKEN_KEY = "switchboard.admin.token";
const NAME_KEY = "switchboard.admin.name";
const VIEWS = ["login-view", "forbidden-view", "dashboard-view"];

const FIGURES = [
  ["connections", "Connections"],
  ["active_users", "Users online"],
  ["users", "Accounts"],
  ["groups", "Groups"],
  ["messages_sent", "Messages sent"],
  ["messages_delivered", "Messages delivered"],
  ["syncs", "Sync pages"],
  ["errors", "Errors"],
];

let pollTimer = null;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showLogin(message = "") {
  stopPolling();
  document.getElementById("login-error").textContent = message;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  showOnly(VIEWS, "login-view");
  document.querySelector("#login-form [name=name]").focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const session = await login(name, form.elements.password.value, randomDevice("admin-"));
    sessionStorage.setItem(TOKEN_KEY, session.token);
    sessionStorage.setItem(NAME_KEY, name);
    form.reset();
    start();
  } catch (error) {
    document.getElementById("login-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  const current = token();
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NAME_KEY);
  if (current) await logout(current);
  showLogin();
}

function start() {
  document.getElementById("who").textContent = sessionStorage.getItem(NAME_KEY) || "";
  document.getElementById("logout").hidden = false;
  poll();
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

// Poll again only after the previous response, so a slow server never
// gets overlapping requests.
async function poll() {
  stopPolling();
  try {
    const stats = await request("GET", "/v1/admin/stats", { token: token() });
    showOnly(VIEWS, "dashboard-view");
    render(stats);
    setStatus(`Updated ${formatClock(Date.now())}`, false);
  } catch (error) {
    if (handleAuthError(error)) return;
    setStatus(`Update failed: ${error.message}. Retrying.`, true);
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function handleAuthError(error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("Your session has expired. Log in again.");
    return true;
  }
  if (error.status === 403) {
    stopPolling();
    document.getElementById("forbidden-message").textContent = error.message;
    showOnly(VIEWS, "forbidden-view");
    return true;
  }
  return false;
}

function setStatus(text, failed) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", failed);
}

// Rendering.

function render(stats) {
  renderFigures(stats);
  renderCharts(stats);
  renderPlatforms(stats.by_platform);
  renderGateways(stats.gateways);
}

function renderFigures(stats) {
  const errors = Object.values(stats.errors).reduce((sum, count) => sum + count, 0);
  const values = { ...stats, errors };
  const items = FIGURES.map(([key, label]) =>
    element(
      "div",
      { className: "figure", "data-figure": key },
      element("span", { className: "value" }, String(values[key])),
      element("span", { className: "label" }, label),
    ),
  );
  document.getElementById("figures").replaceChildren(...items);
}

function renderCharts(stats) {
  const history = stats.history;
  const now = history.length ? history[history.length - 1].time : Date.now() / 1000;
  const points = (key) => history.map((point) => [point.time, point[key]]);
  drawLineChart(
    document.getElementById("rate-chart"),
    [
      { className: "delivered", points: points("delivered_per_second") },
      // Dashed and drawn last, so it shows where both lines coincide.
      { className: "sent", points: points("sent_per_second") },
    ],
    { now, unit: "/s" },
  );
  drawLineChart(
    document.getElementById("connection-chart"),
    [{ className: "connections", points: points("connections") }],
    { now },
  );
}

function renderPlatforms(byPlatform) {
  const total = Object.values(byPlatform).reduce((sum, count) => sum + count, 0);
  const rows = Object.entries(byPlatform).map(([platform, count]) => {
    const share = total ? (100 * count) / total : 0;
    const bar = element("span", { className: `fill platform-${platform}` });
    bar.style.width = `${share}%`;
    return element(
      "div",
      { className: "platform", "data-platform": platform },
      element("span", { className: "name" }, platform),
      element("span", { className: "bar" }, bar),
      element("span", { className: "count" }, `${count} (${share.toFixed(0)}%)`),
    );
  });
  document.getElementById("platforms").replaceChildren(...rows);
}

function renderGateways(gateways) {
  const accepting = gateways.filter((gateway) => !gateway.draining).length;
  const rows = gateways.map((gateway) =>
    element(
      "tr",
      { "data-gateway": gateway.name },
      element("td", {}, gateway.name),
      element("td", {}, gateway.address),
      element("td", { className: "connections" }, String(gateway.connections)),
      element("td", {}, `${gateway.cpu_percent.toFixed(1)} %`),
      element("td", {}, formatBytes(gateway.rss_bytes)),
      element(
        "td",
        { className: `state ${gateway.draining ? "draining" : "accepting"}` },
        gateway.draining ? "draining" : "accepting",
      ),
      element(
        "td",
        {},
        element(
          "button",
          {
            type: "button",
            className: "danger",
            disabled: gateway.draining,
            onclick: () => confirmDrain(gateway, accepting <= 1),
          },
          "Drain…",
        ),
      ),
    ),
  );
  document.querySelector("#gateways tbody").replaceChildren(...rows);
}

// Draining, after a confirmation dialog.

function confirmDrain(gateway, last) {
  const dialog = document.getElementById("drain-dialog");
  document.getElementById("drain-name").textContent = gateway.name;
  document.getElementById("drain-clients").textContent = String(gateway.connections);
  document.getElementById("drain-last").hidden = !last;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "drain") drain(gateway.name, last);
  };
  dialog.showModal();
}

async function drain(name, force) {
  const result = document.getElementById("drain-result");
  const query = force ? "?force=true" : "";
  try {
    const answer = await request(
      "POST",
      `/v1/admin/gateways/${encodeURIComponent(name)}/drain${query}`,
      { token: token() },
    );
    result.textContent = `Gateway ${name} is draining: ${answer.clients_told} clients were told to reconnect.`;
  } catch (error) {
    if (handleAuthError(error)) return;
    result.textContent = `Drain of ${name} failed: ${error.message}`;
  }
  poll();
}

function init() {
  document.getElementById("login-form").addEventListener("submit", submitLogin);
  document.getElementById("logout").addEventListener("click", signOut);
  document.getElementById("switch-account").addEventListener("click", signOut);
  if (token()) start();
  else showLogin();
}

init();
