// The analysts' page: chat with streamed steps, the week's dashboard, the proposal board, the review queue.
// Plain browser JavaScript, no external assets, so it works offline.
"use strict";

const state = {
  session: null, week: null, departments: [], taxonomy: null,
  review: { cursors: [null], index: 0, next: null }, queueTicket: 0,
};
const TOKEN_KEY = "voc-api-token"; // sessionStorage: gone when the tab closes
const ACTOR_KEY = "voc-actor"; // the analyst's name, recorded with every correction and status change
const $ = (selector) => document.querySelector(selector);
const STATUSES = ["待认领", "整改中", "已完成", "已验证", "未达标"];
const NEXT = { "待认领": ["整改中"], "整改中": ["已完成"], "已完成": ["整改中"], "未达标": ["整改中"], "已验证": [] };
const SENTIMENTS = ["负面", "中性", "正面"];

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function option(value, text = value) {
  return element("option", { value }, text);
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

// ------------------------------------------------------------------ who is working: asked once, kept for the tab

function actor() {
  return sessionStorage.getItem(ACTOR_KEY) || "";
}

function showActor() {
  const name = actor();
  $("#actor-form").hidden = Boolean(name);
  $("#actor-shown").hidden = !name;
  $("#actor-name").textContent = name;
}

function needActor() {
  const name = actor();
  if (name) return name;
  showActor();
  $("#actor").focus();
  throw new Error("请先在页面顶部填写您的姓名：复核和状态变更都会记录操作人");
}

// ------------------------------------------------------------------ tabs and weeks

function showTab(name) {
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === name));
  if (name === "dashboard") loadDashboard().catch(showError);
  if (name === "board") loadBoard().catch(showError);
  if (name === "review") firstQueuePage();
}

function firstQueuePage() {
  state.review = { cursors: [null], index: 0, next: null };
  loadQueue().catch(showError);
}

async function loadWeeks() {
  const runs = await api("/api/runs");
  const weeks = [...new Set(runs.filter((r) => r.status === "done").map((r) => r.period.label))].sort().reverse();
  const select = $("#week");
  select.replaceChildren(...weeks.map((w) => option(w)));
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
  // The server labels every step and tool call in Chinese; this is only the fallback.
  if (event.label) return event.label;
  if (event.type === "tool") return `工具 ${event.tool}`;
  return event.name || "";
}

// One question's progress: each step shows as running until the next one starts, then as done.
class Progress {
  constructor() { this.current = null; this.step("收到问题，开始处理"); }
  step(text) {
    this.finish();
    this.current = say("step running", text);
  }
  finish(outcome = "done") {
    if (this.current) this.current.classList.replace("running", outcome);
    this.current = null;
  }
}

async function ask(question) {
  say("user", question);
  const button = $("#ask button[type=submit]");
  button.disabled = true;
  button.textContent = "回答中…";
  const progress = new Progress();
  try {
    const response = await call("/api/chat", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: question, session_id: state.session }),
    });
    if (!response.ok) throw new Error((await response.json()).error);
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
        if (chunk.startsWith("data: ")) handle(JSON.parse(chunk.slice(6)), progress);
      }
    }
  } catch (error) {
    progress.finish("failed");
    throw error;
  } finally {
    progress.finish();
    button.disabled = false;
    button.textContent = "提问";
  }
}

function handle(event, progress) {
  if (event.type === "session") state.session = event.session_id;
  else if (event.type === "tool" || event.type === "step") progress.step(describe(event));
  else if (event.type === "answer") {
    progress.finish();
    const cited = [...event.proposal_ids, ...event.voice_ids];
    say("answer", event.text + (cited.length ? `\n引用：${cited.join("、")}` : ""));
  } else if (event.type === "error") {
    progress.finish("failed");
    say("error", event.message);
  }
}

// ------------------------------------------------------------------ dashboard

const TOP = new Set(["P1", "P2"]);
const byUrgency = (a, b) => a.priority.localeCompare(b.priority) || b.current_count - a.current_count;

function problemCard(p) {
  const card = element("div", { class: `problem ${p.priority}`, "data-id": p.cluster_id });
  const head = element("div", { class: "problem-head" });
  head.append(element("span", { class: `badge ${p.priority}` }, p.priority), element("span", {}, p.cluster_id));
  if (p.rising) head.append(element("span", { class: "rising" }, "显著上升"));
  card.append(head, element("b", {}, p.label),
    element("div", {}, `${p.owner_department} · ${p.dimension} · ${p.tag.split(">").slice(1).join(" > ")}`),
    element("div", { class: "counts" }, `本周 ${p.current_count} 条 · 上周 ${p.previous_count} 条`));
  if (p.proposal_id) card.append(element("div", { class: "muted" }, `整改建议 ${p.proposal_id}`));
  return card;
}

async function loadDashboard() {
  if (!state.week) { $("#headline").textContent = "还没有周度运行结果。"; return; }
  const data = await api(`/api/dashboard/${state.week}`);
  $("#headline").replaceChildren(...data.headline.map((f) => {
    const card = element("div", { class: "card" }, f.name);
    card.append(element("b", {}, String(f.current)), element("span", {}, `上周 ${f.previous}`));
    return card;
  }));
  const top = data.problems.filter((p) => TOP.has(p.priority)).sort(byUrgency);
  const rest = data.problems.filter((p) => !TOP.has(p.priority)).sort(byUrgency);
  $("#top-title").textContent = `重点问题（P1–P2，共 ${top.length} 个）`;
  $("#top-problems").replaceChildren(...(top.length ? top.map(problemCard) : [element("p", {}, "本周没有 P1–P2 问题。")]));
  $("#other-title").textContent = `其他问题（P3–P4，共 ${rest.length} 个，点击展开）`;
  $("#problems tbody").replaceChildren(...rest.map((p) => {
    const row = element("tr");
    for (const [text, cls] of [[p.cluster_id], [p.priority, p.priority], [p.label], [p.owner_department], [p.current_count], [p.previous_count]])
      row.append(element("td", cls ? { class: cls } : {}, String(text)));
    return row;
  }));
  $("#spikes").replaceChildren(...(data.spikes.length ? data.spikes.map((p) => element("li", {},
    `${p.cluster_id} ${p.label}：${p.previous_count} → ${p.current_count} 条（${p.owner_department}）`)) : [element("li", {}, "本周没有显著上升的问题")]));
  await Promise.all(["funnel", "dimensions", "matrix"].map((name) =>
    loadImage($(`#chart-${name}`), `/api/dashboard/${state.week}/charts/${name}.png`)));
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
        await api(`/api/proposals/${p.proposal_id}`, { method: "PATCH", body: JSON.stringify({ status: next, actor: needActor(), note: "看板操作" }) });
      } catch (error) { alert(error.message); }
      loadBoard().catch(showError);
    });
    box.append(button);
  }
  return box;
}

async function loadKnowledge() {
  const [matrix, taxonomy] = await Promise.all([api("/api/service-matrix"), api("/api/taxonomy")]);
  state.departments = matrix.departments.map((d) => d.name);
  state.taxonomy = taxonomy;
  $("#owner").replaceChildren(option("", "全部"), ...state.departments.map((d) => option(d)));
}

// ------------------------------------------------------------------ review queue: every needs-review voice, a page at a time

async function loadQueue() {
  if (!state.week) { $("#review-summary").textContent = "还没有周度运行结果。"; return; }
  const review = state.review;
  const size = Number($("#review-size").value);
  const params = new URLSearchParams({ week: state.week, limit: String(size) });
  if (review.cursors[review.index]) params.set("after", review.cursors[review.index]);
  const ticket = ++state.queueTicket;
  const queue = await api(`/api/reviews?${params}`);
  if (ticket !== state.queueTicket || review !== state.review) return; // a newer page was asked for meanwhile
  review.next = queue.next_cursor;
  review.pending = queue.pending;
  $("#review-summary").textContent = `${queue.week}：待复核 ${queue.pending} 条，复核队列共 ${queue.total} 条（运行 ${queue.run_id}）`;
  const first = review.index * size + 1;
  $("#review-page").textContent = queue.items.length
    ? `第 ${review.index + 1} 页 · 第 ${first}–${first + queue.items.length - 1} 条` : "没有需要复核的声音";
  $("#review-prev").disabled = review.index === 0;
  $("#review-next").disabled = !review.next;
  $("#queue tbody").replaceChildren(...queue.items.map(queueRow));
}

function currentLabels(item) {
  // A correction holds only the fields it changed (the others are null): the engine's labels fill the rest.
  const fixed = Object.entries(item.corrected || {}).filter(([, value]) => value != null);
  return { ...item.labels, ...Object.fromEntries(fixed) };
}

function labelsText(item) {
  const c = currentLabels(item);
  if (item.corrected) return `已复核（${c.actor}）：${c.owner_department} · ${c.dimension} · ${c.tag} · ${c.sentiment}`;
  return `${c.owner_department}（置信度 ${Number(c.owner_confidence).toFixed(2)}）· ${c.dimension} · ${c.tag} · ${c.sentiment}`;
}

function fill(select, values, current, text = (v) => v) {
  const known = values.includes(current) || current == null ? values : [current, ...values];
  select.replaceChildren(...known.map((v) => option(v, text(v))));
  if (current != null) select.value = current;
}

function queueRow(item) {
  const row = element("tr", { "data-id": item.voice_id, class: item.corrected ? "corrected" : "" });
  const current = currentLabels(item);
  const labels = element("td", { class: "labels" }, labelsText(item));
  row.append(element("td", {}, `${item.voice_id}\n${item.channel} · ${item.business || "其他"}`),
    element("td", { class: "text" }, item.text), labels);

  const owner = element("select", { name: "owner_department", "aria-label": "责任部门" });
  const dimension = element("select", { name: "dimension", "aria-label": "维度" });
  const tag = element("select", { name: "tag", "aria-label": "标签" });
  const sentiment = element("select", { name: "sentiment", "aria-label": "情绪" });
  const names = Object.fromEntries(state.taxonomy.dimensions.map((d) => [d.code, `${d.code}（${d.name}）`]));
  const tagsOf = (code) => state.taxonomy.tags.filter((t) => t.dimension === code).map((t) => t.path);
  fill(owner, state.departments, current.owner_department);
  fill(dimension, state.taxonomy.dimensions.map((d) => d.code), current.dimension, (v) => names[v] || v);
  fill(tag, tagsOf(current.dimension), current.tag);
  fill(sentiment, SENTIMENTS, current.sentiment);
  dimension.addEventListener("change", () => fill(tag, tagsOf(dimension.value), null));

  const button = element("button", { type: "button" }, "提交复核");
  button.addEventListener("click", async () => {
    try {
      const body = { actor: needActor() };
      for (const select of [owner, dimension, tag, sentiment])
        if (select.value !== String(current[select.name])) body[select.name] = select.value;
      if (Object.keys(body).length === 1) body.owner_department = owner.value; // nothing changed: the owner is confirmed
      const saved = await api(`/api/reviews/${encodeURIComponent(item.voice_id)}`, { method: "POST", body: JSON.stringify(body) });
      if (!item.corrected) state.review.pending -= 1;
      item.corrected = saved;
      Object.assign(current, currentLabels(item));
      labels.textContent = labelsText(item);
      row.classList.add("corrected");
      $("#review-summary").textContent = $("#review-summary").textContent.replace(/待复核 \d+ 条/, `待复核 ${state.review.pending} 条`);
    } catch (error) { alert(error.message); }
  });
  const fields = element("div", { class: "fields" });
  fields.append(owner, dimension, sentiment, tag, button);
  const cell = element("td", { class: "editor" });
  cell.append(fields);
  row.append(cell);
  return row;
}

// ------------------------------------------------------------------ start

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("#week").addEventListener("change", (e) => { state.week = e.target.value; showTab(document.querySelector("nav button.active").dataset.tab); });
$("#owner").addEventListener("change", () => loadBoard().catch(showError));
$("#review-next").addEventListener("click", () => {
  const review = state.review;
  if (!review.next) return;
  review.cursors[review.index + 1] = review.next;
  review.index += 1;
  loadQueue().catch(showError);
});
$("#review-size").addEventListener("change", firstQueuePage);
$("#review-prev").addEventListener("click", () => {
  if (state.review.index === 0) return;
  state.review.index -= 1;
  loadQueue().catch(showError);
});
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
$("#actor-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("#actor").value.trim();
  if (!name) return;
  sessionStorage.setItem(ACTOR_KEY, name);
  $("#actor").value = "";
  showActor();
});
$("#actor-change").addEventListener("click", () => {
  sessionStorage.removeItem(ACTOR_KEY);
  showActor();
  $("#actor").focus();
});

function start() {
  showActor();
  return Promise.all([loadWeeks(), loadKnowledge()])
    .then(() => showTab(document.querySelector("nav button.active").dataset.tab)).catch(showError);
}
start();
