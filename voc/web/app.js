// The analysts' page: chat with streamed steps, the week's dashboard, the proposal board, the review queue.
// Plain browser JavaScript, no external assets, so it works offline.
"use strict";

const state = { session: null, week: null, actor: "分析员" };
const TOKEN_KEY = "voc-api-token"; // sessionStorage: gone when the tab closes
const $ = (selector) => document.querySelector(selector);
const STATUSES = ["待认领", "整改中", "已完成", "已验证", "未达标"];
const NEXT = { "待认领": ["整改中"], "整改中": ["已完成"], "已完成": ["整改中"], "未达标": ["整改中"], "已验证": [] };

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ the API, with the bearer token when one is set

function askForToken() {
  $("#login").hidden = false;
  $("#token").focus();
  const error = new Error("需要访问令牌：请在页面顶部输入 VOC_API_TOKEN");
  error.needsToken = true; // the token field is the message
  return error;
}

async function call(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { ...options.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw askForToken();
  }
  return response;
}

async function api(path, options = {}) {
  const response = await call(path, { ...options, headers: { "Content-Type": "application/json", ...options.headers } });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function loadImage(img, path) {
  // An <img src> cannot carry the token: fetch the PNG and show it from a blob: URL.
  const response = await call(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await response.blob());
}

function showError(error) {
  if (!error.needsToken) say("error", error.message);
}

// ------------------------------------------------------------------ tabs and weeks

function showTab(name) {
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === name));
  if (name === "dashboard") loadDashboard().catch(showError);
  if (name === "board") loadBoard().catch(showError);
  if (name === "review") loadQueue().catch(showError);
}

async function loadWeeks() {
  const runs = await api("/api/runs");
  const weeks = [...new Set(runs.filter((r) => r.status === "done").map((r) => r.period.label))].sort().reverse();
  const select = $("#week");
  select.replaceChildren(...weeks.map((w) => element("option", { value: w }, w)));
  state.week = weeks[0] || null;
}

// ------------------------------------------------------------------ chat (SSE over fetch)

function say(kind, text) {
  const line = element("div", { class: `msg ${kind}` }, text);
  $("#messages").append(line);
  $("#messages").scrollTop = $("#messages").scrollHeight;
  return line;
}

function describe(event) {
  if (event.type === "tool") return `调用工具 ${event.server}.${event.tool} ${JSON.stringify(event.arguments)}`;
  if (event.type === "step") return `${event.name}${event.detail?.intent ? "：" + event.detail.intent : ""}`;
  return "";
}

async function ask(question) {
  say("user", question);
  const response = await call("/api/chat", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ message: question, session_id: state.session }),
  });
  if (!response.ok) { say("error", (await response.json()).error); return; }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (chunk.startsWith("data: ")) handle(JSON.parse(chunk.slice(6)));
    }
  }
}

function handle(event) {
  if (event.type === "session") state.session = event.session_id;
  else if (event.type === "tool" || event.type === "step") say("step", describe(event));
  else if (event.type === "answer") {
    const cited = [...event.proposal_ids, ...event.voice_ids];
    say("answer", event.text + (cited.length ? `\n引用：${cited.join("、")}` : ""));
  } else if (event.type === "error") say("error", event.message);
}

// ------------------------------------------------------------------ dashboard

async function loadDashboard() {
  if (!state.week) { $("#headline").textContent = "还没有周度运行结果。"; return; }
  const data = await api(`/api/dashboard/${state.week}`);
  $("#headline").replaceChildren(...data.headline.map((f) => {
    const card = element("div", { class: "card" }, f.name);
    card.append(element("b", {}, String(f.current)), element("span", {}, `上周 ${f.previous}`));
    return card;
  }));
  await Promise.all(["funnel", "dimensions", "matrix"].map((name) =>
    loadImage($(`#chart-${name}`), `/api/dashboard/${state.week}/charts/${name}.png`)));
  $("#spikes").replaceChildren(...(data.spikes.length ? data.spikes.map((p) => element("li", {},
    `${p.cluster_id} ${p.label}：${p.previous_count} → ${p.current_count} 条（${p.owner_department}）`)) : [element("li", {}, "本周没有显著上升的问题")]));
  $("#problems tbody").replaceChildren(...data.problems.map((p) => {
    const row = element("tr");
    for (const [text, cls] of [[p.cluster_id], [p.priority, p.priority], [p.label], [p.owner_department], [p.current_count], [p.previous_count]])
      row.append(element("td", cls ? { class: cls } : {}, String(text)));
    return row;
  }));
}

// ------------------------------------------------------------------ proposal board

async function loadBoard() {
  const owner = $("#owner").value;
  const items = await api(`/api/proposals${owner ? "?owner=" + encodeURIComponent(owner) : ""}`);
  $("#columns").replaceChildren(...STATUSES.map((status) => {
    const column = element("div", { class: "column", "data-status": status });
    column.append(element("h3", {}, `${status}（${items.filter((p) => p.status === status).length}）`));
    for (const p of items.filter((item) => item.status === status)) column.append(card(p));
    return column;
  }));
}

function card(p) {
  const box = element("div", { class: `proposal${p.overdue ? " overdue" : ""}`, "data-id": p.proposal_id });
  box.append(element("div", { class: p.priority }, `${p.proposal_id} · ${p.priority}`),
    element("div", {}, p.problem), element("div", {}, `${p.owner_department} · 到期 ${p.due_date}${p.overdue ? "（逾期）" : ""}`));
  for (const next of NEXT[p.status]) {
    const button = element("button", { "data-to": next }, `→ ${next}`);
    button.addEventListener("click", async () => {
      try {
        await api(`/api/proposals/${p.proposal_id}`, { method: "PATCH", body: JSON.stringify({ status: next, actor: state.actor, note: "看板操作" }) });
      } catch (error) { alert(error.message); }
      loadBoard().catch(showError);
    });
    box.append(button);
  }
  return box;
}

async function loadOwners() {
  const matrix = await api("/api/service-matrix");
  $("#owner").replaceChildren(element("option", { value: "" }, "全部"),
    ...matrix.departments.map((d) => element("option", { value: d.name }, d.name)));
}

// ------------------------------------------------------------------ review queue

async function loadQueue() {
  if (!state.week) return;
  const queue = await api(`/api/reviews?week=${state.week}`);
  $("#review-summary").textContent = `${queue.week}：待复核 ${queue.pending} 条（运行 ${queue.run_id}）`;
  const owners = [...$("#owner").options].map((o) => o.value).filter(Boolean);
  $("#queue tbody").replaceChildren(...queue.items.slice(0, 100).map((item) => {
    const row = element("tr", { "data-id": item.voice_id });
    const labels = item.corrected ? `已复核：${item.corrected.owner_department || ""} ${item.corrected.tag || ""} ${item.corrected.sentiment || ""}`
      : `${item.labels.owner_department}（${item.labels.owner_confidence}）· ${item.labels.tag} · ${item.labels.sentiment}`;
    row.append(element("td", {}, item.voice_id), element("td", {}, item.text), element("td", {}, labels));
    const cell = element("td");
    const select = element("select");
    select.append(...owners.map((o) => element("option", { value: o }, o)));
    select.value = item.labels.owner_department;
    const button = element("button", {}, "确认责任部门");
    button.addEventListener("click", async () => {
      try {
        await api(`/api/reviews/${item.voice_id}`, { method: "POST", body: JSON.stringify({ owner_department: select.value, actor: state.actor }) });
      } catch (error) { alert(error.message); }
      loadQueue().catch(showError);
    });
    cell.append(select, button);
    row.append(cell);
    return row;
  }));
}

// ------------------------------------------------------------------ start

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("#week").addEventListener("change", (e) => { state.week = e.target.value; showTab(document.querySelector("nav button.active").dataset.tab); });
$("#owner").addEventListener("change", () => loadBoard().catch(showError));
$("#ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const question = $("#question").value.trim();
  if (question) { $("#question").value = ""; ask(question).catch(showError); }
});
$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("#token").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token").value = "";
  $("#login").hidden = true;
  start();
});

function start() {
  return Promise.all([loadWeeks(), loadOwners()])
    .then(() => showTab(document.querySelector("nav button.active").dataset.tab)).catch(showError);
}
start();
