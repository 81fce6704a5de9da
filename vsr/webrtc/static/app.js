// vsr WebRTC page: send the camera, show it beside the enhanced video with live fps and latency.
// window.vsrState carries the numbers shown, for tests and for curious users (devtools).
"use strict";

const state = (window.vsrState = {
  connected: false, error: null, localFrames: 0, remoteFrames: 0,
  localSize: [0, 0], remoteSize: [0, 0], fpsLocal: 0, fpsRemote: 0,
  rttMs: null, jitterBufferMs: null, serverLatencyMs: null, server: null,
});
const $ = (id) => document.getElementById(id);
let pc = null;
let timers = [];

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
  if (isError) state.error = text;
}

// Count presented frames per second with requestVideoFrameCallback (fallback: getStats fps).
function countFrames(video, key) {
  const times = [];
  const onFrame = (now) => {
    state[key + "Frames"] += 1;
    times.push(now);
    while (times.length && times[0] < now - 1000) times.shift();
    state["fps" + key[0].toUpperCase() + key.slice(1)] = times.length;
    state[key + "Size"] = [video.videoWidth, video.videoHeight];
    video.requestVideoFrameCallback(onFrame);
  };
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(onFrame);
}

async function pollNetwork() {
  if (!pc) return;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
      state.rttMs = s.currentRoundTripTime * 1000;
    }
    if (s.type === "inbound-rtp" && s.kind === "video" && s.jitterBufferEmittedCount) {
      state.jitterBufferMs = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
      if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) state.fpsRemote = s.framesPerSecond || 0;
    }
  });
}

async function pollServer() {
  try {
    const r = await fetch("stats");
    state.server = await r.json();
    state.serverLatencyMs = state.server.latency_recent_ms ?? null;
  } catch (e) { /* the server went away; the connection state says so */ }
}

const fmt = (v, unit = " ms") => (v === null || v === undefined ? "–" : Math.round(v) + unit);

function render() {
  $("local-stat").textContent =
    `${state.localSize[0]}x${state.localSize[1]}  ${state.fpsLocal} fps`;
  const e2e = state.serverLatencyMs !== null && state.rttMs !== null
    ? state.serverLatencyMs + state.rttMs + (state.jitterBufferMs || 0) : null;
  $("remote-stat").textContent =
    `${state.remoteSize[0]}x${state.remoteSize[1]}  ${state.fpsRemote} fps  ` +
    `latency: vsr ${fmt(state.serverLatencyMs)} + network RTT ${fmt(state.rttMs)} + ` +
    `jitter buffer ${fmt(state.jitterBufferMs)} ≈ ${fmt(e2e)}`;
  const s = state.server;
  if (s && s.frames_in !== undefined) {
    $("server").textContent =
      `server: in ${s.frames_in} / out ${s.frames_out} frames, ${s.frames_degraded} degraded, ` +
      `${s.frames_dropped} dropped (stale), tiers ${JSON.stringify(s.controller.frames_per_tier)}, ` +
      `infer p50 ${fmt(s.stages.infer.p50_ms)}`;
  }
}

function waitForIce(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (peer.iceGatheringState === "complete") {
        peer.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    peer.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000); // use what was gathered so far
  });
}

async function start() {
  $("start").disabled = true;
  try {
    setStatus("asking for the camera…");
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    $("local").srcObject = stream;
    countFrames($("local"), "local");
    pc = new RTCPeerConnection();
    pc.addEventListener("connectionstatechange", () => {
      state.connected = pc.connectionState === "connected";
      setStatus(`connection ${pc.connectionState}`, pc.connectionState === "failed");
    });
    pc.addEventListener("track", (ev) => {
      $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]);
      countFrames($("remote"), "remote");
    });
    stream.getVideoTracks().forEach((t) => pc.addTrack(t, stream));
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    setStatus("connecting…");
    const r = await fetch("offer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    if (!r.ok) throw new Error(`offer refused: ${r.status} ${await r.text()}`);
    await pc.setRemoteDescription(await r.json());
    timers = [setInterval(pollNetwork, 1000), setInterval(pollServer, 1000), setInterval(render, 250)];
    $("stop").disabled = false;
  } catch (e) {
    setStatus(`error: ${e.message || e}`, true);
    $("start").disabled = false;
  }
}

function stop() {
  timers.forEach(clearInterval);
  if (pc) pc.close();
  pc = null;
  const local = $("local").srcObject;
  if (local) local.getTracks().forEach((t) => t.stop());
  state.connected = false;
  setStatus("stopped");
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
if (new URLSearchParams(location.search).has("autostart")) start();
