// The page: a form and the list of runs at /, one run at /runs/{id}; all data comes from
// the JSON API (README, "Web page").
"use strict";

const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: body ? {"Content-Type": "application/json"} : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// -- home: the form and the runs ---------------------------------------------------------
async function showHome() {
  $("home").hidden = false;
  const words = await api("GET", "/api/vocabulary");
  const list = $("words");
  for (const c of words.colors) for (const s of words.shapes) {
    const single = document.createElement("option");
    single.value = `a ${c} ${s}`.replace(/^a (orange)/, "an $1");
    list.appendChild(single);
  }
  $("grammar").textContent = words.free_text ? "Any caption." :
    `The built-in prior knows "a {colour} {shape}" and "a {colour} {shape} with a {colour} ` +
    `front": colours ${words.colors.join(", ")}; shapes ${words.shapes.join(", ")}.`;
  $("new-run").addEventListener("submit", submitRun);
  refreshRuns();
  setInterval(refreshRuns, 2000);
}

async function submitRun(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {caption: form.get("caption")};
  for (const key of ["seed", "steps"]) if (form.get(key)) body[key] = parseInt(form.get(key), 10);
  if (form.get("guidance")) body.guidance = parseFloat(form.get("guidance"));
  if (form.get("preset")) body.preset = form.get("preset");
  $("form-error").textContent = "";
  try {
    const {id} = await api("POST", "/api/runs", body);
    window.location.href = `/runs/${id}`;
  } catch (err) {
    $("form-error").textContent = err.message;
  }
}

async function refreshRuns() {
  const runs = await api("GET", "/api/runs");
  const body = $("runs").tBodies[0];
  body.replaceChildren(...runs.map((run) => {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/runs/${run.id}`;
    link.textContent = run.caption;
    const cells = [link, run.status, run.steps ? `${run.step} / ${run.steps}` : ""];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.append(value);
      row.appendChild(cell);
    }
    return row;
  }));
}

// -- one run ------------------------------------------------------------------------------
let runId = null, timer = null, shownFinished = false;
const LABELS = {
  train_seconds: "training time (s)", total_seconds: "total time (s)", faces: "mesh faces",
  iou: "volume IoU against the true object", retrieved_shape: "best-matching shape",
  color_name: "colour", front_color_name: "front colour", back_color_name: "back colour",
  janus: "Janus failure (back painted as the front)",
};

async function showRun(id) {
  runId = id;
  $("run").hidden = false;
  $("cancel").addEventListener("click", () => act("DELETE", `/api/runs/${runId}`));
  $("resume").addEventListener("click", () => act("POST", `/api/runs/${runId}/resume`));
  await refreshRun();
  timer = setInterval(refreshRun, 1000);
}

async function act(method, path) {
  try { await api(method, path); } catch (err) { $("run-error").textContent = err.message; }
  refreshRun();
}

function fileUrl(name, fresh) {
  return `/api/runs/${runId}/files/${name}` + (fresh ? `?t=${Date.now()}` : "");
}

async function refreshRun() {
  const run = await api("GET", `/api/runs/${runId}`);
  document.title = `${run.caption} - dreamfusion`;
  $("run-caption").textContent = run.caption;
  $("run-status").textContent = run.status;
  $("run-position").textContent = run.position ? `place ${run.position} in the queue` : "";
  $("run-progress").value = run.steps ? run.step / run.steps : 0;
  $("run-steps").textContent = run.steps ? `step ${run.step} of ${run.steps}` : "";
  $("run-error").textContent = run.error || "";
  $("cancel").hidden = !["queued", "running"].includes(run.status);
  $("resume").hidden = !run.resumable;
  if (run.files.includes("preview.png") && run.status !== "finished") {
    $("preview-box").hidden = false;
    $("preview").src = fileUrl("preview.png", true);
  }
  if (run.status === "finished" && !shownFinished) showFinished(run);
  if (["finished", "failed", "cancelled"].includes(run.status) && timer) {
    clearInterval(timer);
    timer = null;
  }
}

function showFinished(run) {
  shownFinished = true;
  $("preview-box").hidden = true;
  if (run.files.includes("mesh.glb")) {
    $("viewer-box").hidden = false;
    $("viewer").src = fileUrl("mesh.glb");
  }
  $("finished").hidden = false;
  for (const kind of ["glb", "obj", "ply"]) $(`dl-${kind}`).href = fileUrl(`mesh.${kind}`);
  if (run.files.includes("views.png")) $("views").src = fileUrl("views.png");
  const video = run.files.find((n) => n.startsWith("turntable."));
  if (video) {
    const media = document.createElement(video.endsWith(".mp4") ? "video" : "img");
    media.src = fileUrl(video);
    if (media.tagName === "VIDEO") Object.assign(media, {autoplay: true, loop: true, muted: true});
    $("turntable-box").replaceChildren(media);
  }
  const scores = run.metrics || {};
  $("scores").replaceChildren(...Object.entries(scores).map(([key, value]) => {
    const row = document.createElement("tr");
    row.innerHTML = "<th></th><td></td>";
    row.cells[0].textContent = LABELS[key] || key.replaceAll("_", " ");
    row.cells[1].textContent = typeof value === "number" ? +value.toFixed(3) : value;
    return row;
  }));
}

const match = window.location.pathname.match(/^\/runs\/([A-Za-z0-9_-]+)$/);
if (match) showRun(match[1]); else showHome();
