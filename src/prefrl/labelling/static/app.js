// The labelling page: lease a query (two clips, one clip to rate, or two texts), show it, send the
// answer, repeat. No build step.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "equal", ArrowDown: "cant_tell" };
let current = null; // the query on screen
let lastSaved = null; // the query of the last answer this page saved: what undo may take back
let busy = false; // a request is in flight: ignore keys and clicks
let pollTimer = null;

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    const error = new Error(data.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showProgress(p) {
  const budget = p.budget === null ? "-" : p.budget;
  $("progress").textContent =
    `answered ${p.answered} of budget ${budget} · pending ${p.pending} · yours ${p.yours}`;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "status error" : "status";
}

function playTogether() {
  // both clips have the same number of frames: restart both whenever one ends (synchronised loop)
  const videos = [$("left"), $("right")];
  const restart = () => videos.forEach((v) => { v.currentTime = 0; v.play().catch(() => {}); });
  videos.forEach((v) => {
    v.onended = restart;
    v.onerror = () => setStatus("a clip failed to load: reload the page to try again", true);
  });
  let ready = 0;
  videos.forEach((v) => {
    v.oncanplaythrough = () => { v.oncanplaythrough = null; if (++ready === 2) restart(); };
  });
}

function mark() {
  // state for tests and scripts driving the page: the query on screen, and whether a request is busy
  document.body.dataset.query = current ? String(current.id) : "";
  document.body.dataset.busy = busy ? "1" : "0";
}

function showRating(query) {
  // one clip, looping, and a button per point of the scale (keys 1..n)
  $("rating-max").textContent = String(query.classes);
  const buttons = $("rating-buttons");
  buttons.replaceChildren();
  for (let i = 0; i < query.classes; i++) {
    const button = document.createElement("button");
    const end = i === 0 ? " · worst" : i === query.classes - 1 ? " · best" : "";
    button.textContent = `${i + 1}${end}`;
    button.title = `key ${i + 1}`;
    button.dataset.rating = String(i);
    button.addEventListener("click", () => send({ rating: i }, `rated ${i + 1} of ${query.classes}`));
    buttons.appendChild(button);
  }
  const cantTell = document.createElement("button");
  cantTell.textContent = "↓ Can't tell";
  cantTell.addEventListener("click", () => send({ choice: "cant_tell" }, "can't tell"));
  buttons.appendChild(cantTell);
  const isText = query.response !== undefined; // one answer to a prompt, or one clip
  $("rate-text").hidden = !isText;
  $("rate-clip").hidden = isText;
  if (isText) {
    $("single").removeAttribute("src");
    $("rate-prompt").textContent = query.prompt; // text, never HTML
    $("rate-response").textContent = query.response;
    return;
  }
  $("single").onerror = () => setStatus("the clip failed to load: reload the page to try again", true);
  $("single").src = query.clips[0] + "?token=" + encodeURIComponent(token);
  $("single").play().catch(() => {});
}

let picks = []; // a ranking in progress: the positions picked so far, best first

function showRanking(query) {
  // the prompt and K responses as cards; keys 1..K (or clicks) pick the best remaining one
  picks = [];
  $("rank-prompt").textContent = query.prompt;
  const list = $("rank-list");
  list.replaceChildren();
  query.responses.forEach((text, k) => {
    const card = document.createElement("div");
    card.className = "card";
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = String(k + 1);
    const body = document.createElement("pre");
    body.className = "response";
    body.textContent = text; // text, never HTML
    const place = document.createElement("span");
    place.className = "place";
    card.append(key, body, place);
    card.addEventListener("click", () => pick(k));
    list.appendChild(card);
  });
}

function pick(k) {
  if (busy || !current || current.kind !== "rank" || picks.includes(k)) return;
  picks.push(k);
  const card = $("rank-list").children[k];
  card.classList.add("placed");
  card.querySelector(".place").textContent = `#${picks.length}`;
  const size = current.responses.length;
  if (picks.length === size - 1) { // the last one is the worst: the ranking is complete
    picks.push([...Array(size).keys()].find((i) => !picks.includes(i)));
    send({ ranking: picks.slice() }, `ranked ${picks.map((i) => i + 1).join(" > ")}`);
  }
}

function resetPicks() {
  picks = [];
  for (const card of $("rank-list").children) {
    card.classList.remove("placed");
    card.querySelector(".place").textContent = "";
  }
}

function show(query) {
  current = query;
  $("description").textContent = query.description;
  $("message").hidden = true;
  $("buttons").hidden = query.kind === "rate" || query.kind === "rank";
  $("rating").hidden = query.kind !== "rate";
  $("ranking").hidden = query.kind !== "rank";
  if (query.kind === "rank") {
    $("clips").hidden = true;
    $("text").hidden = true;
    showRanking(query);
  } else if (query.kind === "rate") {
    $("clips").hidden = true;
    $("text").hidden = true;
    showRating(query);
  } else if (query.kind === "clips") {
    $("text").hidden = true;
    $("clips").hidden = false;
    playTogether();
    $("left").src = query.clips[0] + "?token=" + encodeURIComponent(token);
    $("right").src = query.clips[1] + "?token=" + encodeURIComponent(token);
  } else {
    $("clips").hidden = true;
    $("text").hidden = false;
    $("prompt").textContent = query.prompt;
    $("response-left").textContent = query.responses[0];
    $("response-right").textContent = query.responses[1];
  }
}

function showWaiting(message) {
  current = null;
  $("clips").hidden = true;
  $("text").hidden = true;
  $("rating").hidden = true;
  $("ranking").hidden = true;
  $("buttons").hidden = true;
  $("message").hidden = false;
  $("message").textContent = message;
  mark();
  clearTimeout(pollTimer);
  pollTimer = setTimeout(next, 2000);
}

async function next() {
  try {
    const data = await api("GET", "/api/next");
    showProgress(data.progress);
    if (data.query === null) showWaiting(data.message);
    else if (!current || current.id !== data.query.id) show(data.query);
    mark();
  } catch (err) {
    setStatus(err.message, true);
    showWaiting("cannot reach the labelling server; retrying…");
  }
}

function answer(choice) {
  // a comparison's choice; on a rating or ranking query only "can't tell" (the arrow down) applies
  if (current && (current.kind === "rate" || current.kind === "rank")) {
    if (choice === "cant_tell") send({ choice }, "can't tell");
    return;
  }
  send({ choice }, choice.replace("_", " "));
}

async function send(body, what) {
  if (busy || !current) return;
  busy = true;
  mark();
  const query = current;
  setStatus("saving…", false);
  try {
    const data = await api("POST", "/api/answer", { query_id: query.id, ...body });
    showProgress(data.progress); // the server has committed the answer when it replies
    lastSaved = query.id;
    setStatus(`saved: query ${query.id} → ${what}`, false);
    await next();
  } catch (err) {
    setStatus(err.message, true);
    if (query.kind === "rank") resetPicks(); // nothing saved: rank again
    if (err.status === 409 || err.status === 404) {
      // the lease was lost (expired, taken, or the query is gone): nothing was saved; move on, and
      // let undo take back only what this page saved since
      lastSaved = null;
      current = null;
      setStatus(`not saved: ${err.message}. Here is the next query.`, true);
      await next();
    }
  } finally {
    busy = false;
    mark();
  }
}

async function undo() {
  if (busy) return;
  if (lastSaved === null) {
    setStatus("nothing to undo: no answer saved from this page since it opened (or since one failed)", true);
    return;
  }
  busy = true;
  mark();
  try {
    const data = await api("POST", "/api/undo", { query_id: lastSaved });
    lastSaved = null;
    showProgress(data.progress);
    setStatus(`undone: query ${data.undone} is yours to answer again`, false);
    current = null;
    await next();
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    busy = false;
    mark();
  }
}

document.addEventListener("keydown", (event) => {
  const point = Number.parseInt(event.key, 10);
  if (current && current.kind === "rank" && point >= 1 && point <= current.responses.length) {
    event.preventDefault();
    pick(point - 1);
  } else if (current && current.kind === "rank" && event.key === "r") {
    event.preventDefault();
    resetPicks();
  } else if (current && current.kind === "rate" && point >= 1 && point <= current.classes) {
    event.preventDefault();
    send({ rating: point - 1 }, `rated ${point} of ${current.classes}`);
  } else if (KEYS[event.key]) { event.preventDefault(); answer(KEYS[event.key]); }
  else if (event.key === "u" || event.key === "Backspace") { event.preventDefault(); undo(); }
});
document.querySelectorAll("[data-choice]").forEach((button) => {
  button.addEventListener("click", () => answer(button.dataset.choice));
});
$("undo").addEventListener("click", undo);
next();
