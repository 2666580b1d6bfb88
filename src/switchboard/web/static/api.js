// The HTTP API as used by both pages: JSON requests with a bearer token, and
// errors raised with the server's code and message.

/** A request failed; `status` is the HTTP status, 0 when the server is unreachable. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Send a request to `path` on this server and return the parsed JSON body,
 * or null for an empty one. `options`: token, json (a body to send as JSON),
 * body (raw bytes or a Blob) and headers.
 */
export async function request(method, path, options = {}) {
  const headers = { ...(options.headers || {}) };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  if (options.token) headers.Authorization = `Bearer ${options.token}`;

  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the server is unreachable: ${error.message}`);
  }

  const text = await response.text();
  const data = text ? parseJson(text) : null;
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    throw new ApiError(
      response.status,
      detail.code || "error",
      detail.message || `${method} ${path} failed with HTTP ${response.status}`,
    );
  }
  return data;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Log in with POST /v1/sessions and return {token, user_id, device, expires_at}. */
export function login(name, password, device) {
  return request("POST", "/v1/sessions", {
    json: { name, password, device, platform: "web" },
  });
}

/** Revoke `token` with DELETE /v1/sessions/current; errors are ignored. */
export async function logout(token) {
  try {
    await request("DELETE", "/v1/sessions/current", { token });
  } catch {
    // The token is forgotten locally either way.
  }
}

/** Return a random device id, `prefix` followed by 12 hex digits. */
export function randomDevice(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return prefix + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
