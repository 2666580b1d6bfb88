// One WebSocket connection to /v1/ws at a time, kept open across network loss.
//
// The connection authenticates with Connect, sends heartbeats when idle, and
// reconnects with exponential backoff and full jitter after any failure. It
// handles frames, not messages: the chat client on top of it decides what to
// send on each (re)connect and what received frames mean.

import { FrameDecoder, FrameType, HEARTBEAT, concat, encodeFrame } from "./frames.js";
import { ENUMS } from "./proto.js";

export const PROTOCOL_VERSION = 1;

/** Error codes the connection acts on (docs/protocol.md, "Error codes"). */
export const ErrorCode = Object.freeze({
  UNSUPPORTED_VERSION: 3,
  UNAUTHORIZED: 10,
  TOKEN_REVOKED: 11,
  SESSION_REPLACED: 13,
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const CONNECT_TIMEOUT_MS = 10000;
/** Time allowed for the server's echo of a heartbeat before the connection counts as dead. */
const ECHO_TIMEOUT_MS = 8000;

/** Connection states, in the "state" event's detail. */
export const State = Object.freeze({
  CONNECTING: "connecting",
  ONLINE: "online",
  OFFLINE: "offline",
  ENDED: "ended",
});

/**
 * Events:
 * - "state": detail {state, reason}, where reason is why a connection was lost.
 * - "connected": detail is the Connected message.
 * - "frame": detail {type, message} for every other frame but heartbeats.
 * - "ended": detail {code, reason} when the server ended the session for
 *   good (token revoked, another tab took over); no reconnect follows.
 *
 * `opening()` is called before each Connect and returns the fields of the
 * Connect frame and the frames to pipeline right after it.
 */
export class Connection extends EventTarget {
  constructor({ url, opening }) {
    super();
    this.url = url;
    this.opening = opening;
    this.socket = null;
    this.state = State.OFFLINE;
    this.attempt = 0;
    this.timers = new Map();
    this.heartbeatMs = 30000;
    this.lastSent = 0;
    this.lastReceived = 0;
    this.onOnline = () => this.reconnectNow("network is back");
    this.onOffline = () => this.drop("the browser is offline", false);
  }

  start() {
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.open();
  }

  stop() {
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    this.closeSocket();
    this.clearTimers();
    this.setState(State.ENDED, "stopped");
  }

  /** Send `frames` (encoded Uint8Arrays) if the connection is open; return whether it was. */
  sendFrames(frames) {
    if (this.state !== State.ONLINE || frames.length === 0) return false;
    this.write(concat(frames));
    return true;
  }

  /** Send one frame of `type` with payload `message`; return whether the connection was open. */
  send(type, message) {
    return this.sendFrames([encodeFrame(type, message)]);
  }

  // Opening and closing.

  open() {
    if (this.state === State.ENDED || this.socket) return;
    if (!navigator.onLine) {
      this.setState(State.OFFLINE, "the browser is offline");
      return;
    }
    this.setState(State.CONNECTING, "");
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.decoder = new FrameDecoder();
    socket.onopen = () => this.authenticate(socket);
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = (event) => {
      if (socket === this.socket) this.drop(`closed (${event.code})`, true);
    };
    socket.onerror = () => {
      if (socket === this.socket) this.drop("connection failed", true);
    };
    this.startTimer("connect", CONNECT_TIMEOUT_MS, () => this.drop("connect timed out", true));
  }

  authenticate(socket) {
    if (socket !== this.socket) return;
    const { connect, pipelined } = this.opening();
    const frame = encodeFrame(FrameType.CONNECT, {
      version: PROTOCOL_VERSION,
      platform: ENUMS.Platform.PLATFORM_WEB,
      ...connect,
    });
    // Frames sent right after Connect are held by the server until it has
    // authenticated the connection (docs/protocol.md, "Pipelining").
    this.write(concat([frame, ...pipelined]));
  }

  /** Close the socket and schedule a reconnect; `retry` false waits for the network instead. */
  drop(reason, retry) {
    if (this.state === State.ENDED) return;
    this.closeSocket();
    this.clearTimers();
    this.setState(State.OFFLINE, reason);
    if (retry) this.scheduleReconnect(this.nextBackoff());
  }

  reconnectNow(reason) {
    if (this.state === State.ENDED || this.state === State.ONLINE) return;
    this.closeSocket();
    this.clearTimers();
    this.attempt = 0;
    this.setState(State.OFFLINE, reason);
    this.open();
  }

  /** End the session for good: the server will not accept this device again as is. */
  end(code, reason) {
    this.stop();
    this.dispatchEvent(new CustomEvent("ended", { detail: { code, reason } }));
  }

  closeSocket() {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close();
    } catch {
      // Closing a socket that never opened may throw; it is gone either way.
    }
  }

  scheduleReconnect(delayMs) {
    this.startTimer("reconnect", delayMs, () => this.open());
  }

  nextBackoff() {
    const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.attempt, 16));
    this.attempt += 1;
    return Math.random() * bound;
  }

  // Reading.

  receive(socket, data) {
    if (socket !== this.socket) return;
    this.lastReceived = Date.now();
    this.clearTimer("echo");
    let frames;
    try {
      frames = this.decoder.push(new Uint8Array(data));
    } catch (error) {
      // A server that breaks the framing rules is treated as broken.
      console.error("switchboard: invalid frame from the server:", error);
      this.drop(`invalid frame: ${error.message}`, true);
      return;
    }
    for (const frame of frames) {
      if (socket !== this.socket) return;
      this.handle(frame);
    }
  }

  handle({ type, message }) {
    switch (type) {
      case FrameType.HEARTBEAT:
        return;
      case FrameType.CONNECTED:
        this.clearTimer("connect");
        this.attempt = 0;
        this.heartbeatMs = Math.max(1, message.heartbeat) * 1000;
        this.setState(State.ONLINE, "");
        this.scheduleHeartbeat();
        this.dispatchEvent(new CustomEvent("connected", { detail: message }));
        return;
      case FrameType.RECONNECT:
        this.closeSocket();
        this.clearTimers();
        this.setState(State.OFFLINE, message.reason || "the server asked to reconnect");
        this.scheduleReconnect(message.delay);
        return;
      case FrameType.ERROR:
        if (message.fatal) return this.fatal(message);
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: { type, message } }));
  }

  fatal(error) {
    const reason = `${error.reason} (error ${error.code})`;
    if (
      error.code === ErrorCode.UNAUTHORIZED ||
      error.code === ErrorCode.TOKEN_REVOKED ||
      error.code === ErrorCode.SESSION_REPLACED ||
      error.code === ErrorCode.UNSUPPORTED_VERSION
    ) {
      this.end(error.code, reason);
      return;
    }
    this.drop(reason, true);
  }

  // Heartbeats: one when nothing was sent for an interval, and a deadline
  // for the server's echo, which detects a connection that died silently.
  // NOTE: browsers may throttle the timers of a hidden tab to about one a
  // minute, so a heartbeat can come late and the server close the
  // connection. The page then reconnects and syncs once its timers run.

  write(bytes) {
    this.socket.send(bytes);
    this.lastSent = Date.now();
  }

  scheduleHeartbeat() {
    const due = this.lastSent + this.heartbeatMs - Date.now();
    this.startTimer("heartbeat", Math.max(0, due), () => {
      if (this.state !== State.ONLINE) return;
      if (Date.now() - this.lastSent >= this.heartbeatMs) {
        this.write(HEARTBEAT);
        this.startTimer("echo", ECHO_TIMEOUT_MS, () => this.drop("heartbeat not echoed", true));
      }
      this.scheduleHeartbeat();
    });
  }

  // Timers by name: starting one cancels the pending timer of that name.

  startTimer(name, delayMs, callback) {
    this.clearTimer(name);
    this.timers.set(name, setTimeout(() => {
      this.timers.delete(name);
      callback();
    }, delayMs));
  }

  clearTimer(name) {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  clearTimers() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  setState(state, reason) {
    if (this.state === state && !reason) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, reason } }));
  }
}

/** Return the WebSocket URL of this page's server. */
export function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/ws`;
}
