// The Cairn console's pages. Plain JavaScript, no framework, no inline
// script (the Content-Security-Policy forbids it). The session lives in an
// HTTP-only cookie; the CSRF token is kept in this page's memory only.
"use strict";

const API = "api/";
const PART_SIZE = 8 * 1024 * 1024;
const SINGLE_PUT_MAX = 16 * 1024 * 1024;
let session = null;

const $ = (id) => document.getElementById(id);

function show(page) {
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + page;
  document.body.dataset.page = page;
}

function status(text, error) {
  const s = $("status");
  s.textContent = text || "";
  s.className = error ? "error" : "";
}

function qs(params) {
  return new URLSearchParams(params).toString();
}

async function call(method, path, params, body) {
  const headers = {};
  if (method !== "GET" && session) headers["X-Cairn-Csrf"] = session.csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const url = API + path + (params ? "?" + qs(params) : "");
  const r = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== "login") {
    session = null;
    location.hash = "#/login";
  }
  if (!r.ok) {
    const e = new Error((data.code || r.status) + ": " + (data.message || r.statusText));
    e.status = r.status;
    throw e;
  }
  return data;
}

function cell(tr, text) {
  const td = document.createElement("td");
  if (text instanceof Node) td.appendChild(text);
  else td.textContent = text === undefined || text === null ? "" : String(text);
  tr.appendChild(td);
  return td;
}

function link(text, href) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  return a;
}

function button(text, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onclick);
  return b;
}

function size(n) {
  if (n === null || n === undefined) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function enc(s) { return encodeURIComponent(s); }

// ---- routing ----

async function route() {
  status("");
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  if (!session) {
    try {
      session = await call("GET", "session");
    } catch (e) {
      session = null;
    }
  }
  $("menu").hidden = !session;
  $("logout").hidden = !session;
  $("who").textContent = session ? session.user : "";
  for (const id of ["nav-admin", "nav-heal", "nav-kms"]) $(id).hidden = !(session && session.admin);
  $("nav-iam").hidden = !(session && session.iam);
  if (!session) return loginPage(parts);
  // a new access key's secret is shown once, on the page that made it
  $("iam-new-key").hidden = true;
  $("iam-key-secret").textContent = "";
  try {
    switch (parts[0]) {
      case "b": return await browse(decodeURIComponent(parts[1] || ""), decodeURIComponent(parts.slice(2).join("/")));
      case "o": return await objectPage(decodeURIComponent(parts[1] || ""), decodeURIComponent(parts.slice(2).join("/")));
      case "s": return await settingsPage(decodeURIComponent(parts[1] || ""));
      case "admin": return await adminPage();
      case "heal": return healPage();
      case "kms": return await kmsPage();
      case "iam": return await iamPage();
      default: return await buckets();
    }
  } catch (e) {
    status(e.message, true);
  }
}

// Shows `hash`: a changed hash routes through hashchange, the same one
// routes here (never both: two renders would interleave their rows).
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---- login ----

// Reasons an SSO login came back refused (api/oidc/callback's codes).
const SSO_ERRORS = {
  StateMismatch: "the login did not start here (state mismatch)",
  NonceMismatch: "the provider's token was not issued for this login (nonce mismatch)",
  NoPendingLogin: "no login was started in this browser, or it expired",
  LoginExpired: "the login took too long",
  ProviderRefused: "the identity provider refused the login",
  AccessDenied: "your identity maps to no policy of this server",
};

async function loginPage(parts) {
  show("login");
  if (parts[1] === "error" && parts[2]) {
    const code = decodeURIComponent(parts[2]);
    status("Single sign-on failed: " + (SSO_ERRORS[code] || code), true);
  }
  try {
    const cfg = await call("GET", "config");
    $("sso").hidden = !cfg.sso;
  } catch (e) {
    $("sso").hidden = true;
  }
}

async function login(ev) {
  ev.preventDefault();
  try {
    session = await call("POST", "login", null, {
      access_key: $("login-access").value,
      secret_key: $("login-secret").value,
    });
    $("login-secret").value = "";
    session = await call("GET", "session");
    go("#/buckets");
  } catch (e) {
    session = null;
    status(e.message, true);
  }
}

async function logout() {
  try { await call("POST", "logout"); } catch (e) { /* the cookie goes anyway */ }
  session = null;
  go("#/login");
}

// ---- buckets ----

async function buckets() {
  show("buckets");
  const data = await call("GET", "buckets");
  const tbody = $("bucket-table").tBodies[0];
  tbody.replaceChildren();
  for (const b of data.buckets) {
    const tr = document.createElement("tr");
    tr.dataset.bucket = b.name;
    cell(tr, link(b.name, "#/b/" + enc(b.name) + "/"));
    cell(tr, b.created);
    tbody.appendChild(tr);
  }
}

async function createBucket(ev) {
  ev.preventDefault();
  try {
    await call("POST", "buckets", { bucket: $("bucket-name").value.trim() });
    $("bucket-name").value = "";
    await buckets();
    status("bucket created");
  } catch (e) { status(e.message, true); }
}

// ---- browsing ----

let view = { bucket: "", prefix: "", next: null };

async function browse(bucket, prefix) {
  show("browse");
  view = { bucket, prefix, next: null };
  $("browse-title").textContent = bucket;
  $("browse-settings").href = "#/s/" + enc(bucket);
  const crumbs = $("crumbs");
  crumbs.replaceChildren(link(bucket, "#/b/" + enc(bucket) + "/"));
  let acc = "";
  for (const seg of prefix.split("/").filter((s) => s)) {
    acc += seg + "/";
    crumbs.append(" / ", link(seg, "#/b/" + enc(bucket) + "/" + enc(acc)));
  }
  $("object-table").tBodies[0].replaceChildren();
  const v = await call("GET", "versioning", { bucket });
  $("versioning").checked = v.enabled;
  await page();
}

async function page() {
  const params = { bucket: view.bucket, prefix: view.prefix };
  if (view.next) params.token = view.next;
  const data = await call("GET", "objects", params);
  const tbody = $("object-table").tBodies[0];
  for (const f of data.folders) {
    const tr = document.createElement("tr");
    tr.dataset.folder = f;
    cell(tr, link(f.slice(view.prefix.length), "#/b/" + enc(view.bucket) + "/" + enc(f)));
    cell(tr, ""); cell(tr, ""); cell(tr, "");
    tbody.appendChild(tr);
  }
  for (const o of data.objects) {
    if (o.key === view.prefix) continue; // the folder's own marker
    const tr = document.createElement("tr");
    tr.dataset.key = o.key;
    cell(tr, link(o.key.slice(view.prefix.length), "#/o/" + enc(view.bucket) + "/" + enc(o.key)));
    cell(tr, size(o.size));
    cell(tr, o.modified);
    cell(tr, button("Delete", () => removeObject(view.bucket, o.key, null)));
    tbody.appendChild(tr);
  }
  view.next = data.next;
  $("more").hidden = !data.next;
}

async function setVersioning() {
  try {
    await call("PUT", "versioning", { bucket: view.bucket, enabled: String($("versioning").checked) });
    status("versioning " + ($("versioning").checked ? "enabled" : "suspended"));
  } catch (e) {
    $("versioning").checked = !$("versioning").checked;
    status(e.message, true);
  }
}

async function createFolder(ev) {
  ev.preventDefault();
  const name = $("folder-name").value.trim().replace(/\/+$/, "");
  if (!name) return;
  try {
    await call("POST", "folder", { bucket: view.bucket, key: view.prefix + name + "/" });
    $("folder-name").value = "";
    location.hash = "#/b/" + enc(view.bucket) + "/" + enc(view.prefix + name + "/");
  } catch (e) { status(e.message, true); }
}

// Deletes `key` (one version of it, with `version`), then shows `after`
// (default: the page again).
async function removeObject(bucket, key, version, after) {
  if (!confirm("Delete " + key + (version ? " (version " + version + ")" : "") + "?")) return;
  const params = { bucket, key };
  if (version) params.version = version;
  try {
    await call("POST", "delete", params);
    if (after) go(after);
    else await route();
    status("deleted " + key);
  } catch (e) { status(e.message, true); }
}

// ---- uploads: one PUT for small files, parts for big ones; the browser
// streams each body, the server never holds a whole file ----

function send(method, path, params, blob, onprogress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, API + path + "?" + qs(params));
    x.setRequestHeader("X-Cairn-Csrf", session.csrf);
    x.upload.onprogress = (e) => onprogress(e.loaded);
    x.onload = () => {
      let data = {};
      try { data = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
      if (x.status >= 200 && x.status < 300) resolve(data);
      else reject(new Error((data.code || x.status) + ": " + (data.message || "")));
    };
    x.onerror = () => reject(new Error("upload failed"));
    x.send(blob);
  });
}

async function uploadOne(file, row) {
  const bucket = view.bucket;
  const key = view.prefix + file.name;
  const bar = row.querySelector("progress");
  const label = row.querySelector("span");
  bar.max = file.size || 1;
  const progress = (done) => { bar.value = done; label.textContent = file.name + ": " + size(done) + " of " + size(file.size); };
  if (file.size <= SINGLE_PUT_MAX) {
    await send("PUT", "upload", { bucket, key }, file, progress);
  } else {
    const { upload_id } = await call("POST", "multipart/create", { bucket, key, type: file.type || "" });
    const parts = [];
    try {
      for (let start = 0, n = 1; start < file.size; start += PART_SIZE, n++) {
        const blob = file.slice(start, Math.min(start + PART_SIZE, file.size));
        const r = await send("PUT", "multipart/part", { bucket, key, upload: upload_id, part: n }, blob,
          (done) => progress(start + done));
        parts.push({ part: n, etag: r.etag });
      }
      await call("POST", "multipart/complete", { bucket, key, upload: upload_id }, { parts });
    } catch (e) {
      await call("POST", "multipart/abort", { bucket, key, upload: upload_id }).catch(() => {});
      throw e;
    }
  }
  progress(file.size);
  row.dataset.state = "done";
}

async function uploadFiles() {
  const input = $("upload-input");
  const files = Array.from(input.files);
  input.value = "";
  await uploadList(files);
}

async function uploadList(files) {
  for (const file of files) {
    const row = document.createElement("div");
    row.className = "upload";
    row.dataset.name = file.name;
    row.dataset.state = "running";
    row.append(document.createElement("progress"), document.createElement("span"));
    $("uploads").appendChild(row);
    try {
      await uploadOne(file, row);
    } catch (e) {
      row.dataset.state = "failed";
      status(file.name + ": " + e.message, true);
    }
  }
  $("object-table").tBodies[0].replaceChildren();
  view.next = null;
  await page();
}

// ---- one object ----

let current = { bucket: "", key: "" };

function props(table, rows) {
  const tbody = table.tBodies[0];
  tbody.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    cell(tr, k); cell(tr, v);
    tbody.appendChild(tr);
  }
}

async function objectPage(bucket, key) {
  show("object");
  current = { bucket, key };
  $("object-title").textContent = bucket + "/" + key;
  $("object-download").href = API + "download?" + qs({ bucket, key });
  $("share-url").value = "";
  $("share-note").textContent = "";
  const d = await call("GET", "details", { bucket, key });
  props($("object-props"), [["Size", size(d.size)], ["Type", d.content_type], ["ETag", d.etag],
    ["Modified", d.modified], ["Version", d.version_id],
    ["Encryption", d.sse ? (d.sse + (d.sse_key ? " (key " + d.sse_key + ")" : "")) : "none"]]);
  props($("object-meta"), Object.entries(d.metadata));
  lockState(d);
  const preview = $("preview");
  preview.replaceChildren(button("Show preview", () => showPreview(d)));
  preview.firstChild.id = "preview-load";
  props($("object-tags"), Array.isArray(d.tags) ? d.tags.map((t) => [t.key, t.value]) : [["error", d.tags.error]]);
  const tbody = $("object-versions").tBodies[0];
  tbody.replaceChildren();
  for (const v of Array.isArray(d.versions) ? d.versions : []) {
    const tr = document.createElement("tr");
    tr.className = "version";
    tr.dataset.version = v.version_id;
    cell(tr, v.version_id + (v.latest ? " (latest)" : "") + (v.delete_marker ? " (delete marker)" : ""));
    cell(tr, size(v.size));
    cell(tr, v.modified);
    const actions = cell(tr, "");
    if (!v.delete_marker) actions.appendChild(link("Download", API + "download?" + qs({ bucket, key, version: v.version_id })));
    actions.appendChild(button("Delete", () => removeObject(bucket, key, v.version_id)));
    tbody.appendChild(tr);
  }
}

// ---- retention, legal hold, previews ----

function lockState(d) {
  const r = d.retention;
  const rows = [];
  if (r && r.error) rows.push(["Retention", r.error]);
  else rows.push(["Retention", r && r.mode ? r.mode + " until " + r.until : "none"]);
  const h = d.legal_hold;
  rows.push(["Legal hold", h && h.error ? h.error : (h ? "ON" : "OFF")]);
  props($("object-lock"), rows);
  $("object-lock").dataset.retention = r && r.mode ? r.mode : "";
  $("legal-hold").checked = h === true;
}

async function setRetention(ev) {
  ev.preventDefault();
  const local = $("retention-until").value;
  if (!local) return;
  const params = { bucket: current.bucket, key: current.key, mode: $("retention-mode").value,
    until: new Date(local).toISOString().replace(/\.\d+Z$/, "Z") };
  if ($("retention-bypass").checked) params.bypass = "true";
  try {
    await call("PUT", "retention", params);
    await objectPage(current.bucket, current.key);
    status("retention set");
  } catch (e) { status(e.message, true); }
}

async function setLegalHold() {
  const on = $("legal-hold").checked;
  try {
    await call("PUT", "legal-hold", { bucket: current.bucket, key: current.key, on: String(on) });
    await objectPage(current.bucket, current.key);
    status("legal hold " + (on ? "on" : "off"));
  } catch (e) {
    $("legal-hold").checked = !on;
    status(e.message, true);
  }
}

async function showPreview(d) {
  const box = $("preview");
  if (d.image) {
    const img = document.createElement("img");
    img.alt = d.key;
    img.src = API + "download?" + qs({ bucket: d.bucket, key: d.key, inline: "image" });
    box.replaceChildren(img);
    return;
  }
  try {
    const p = await call("GET", "preview", { bucket: d.bucket, key: d.key });
    const pre = document.createElement("pre");
    pre.id = "preview-text";
    pre.textContent = p.binary ? "(binary data: no preview)" : p.text;
    box.replaceChildren(pre);
    if (p.truncated) box.append("(first 64 KiB shown)");
  } catch (e) { status(e.message, true); }
}

// Files dropped on the folder view upload into it.
function setupDrop() {
  const zone = $("page-browse");
  const mark = (on) => $("dropzone").classList.toggle("over", on);
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); mark(true); });
  zone.addEventListener("dragleave", () => mark(false));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    mark(false);
    const files = Array.from(ev.dataTransfer ? ev.dataTransfer.files : []);
    if (files.length) uploadList(files).catch((e) => status(e.message, true));
  });
}

async function share(ev) {
  ev.preventDefault();
  const secs = $("share-seconds").value || $("share-expiry").value;
  try {
    const r = await call("POST", "share", { bucket: current.bucket, key: current.key, expires: secs });
    $("share-url").value = r.url;
    $("share-note").textContent = "Valid until " + new Date(r.expires * 1000).toISOString() +
      (r.limited_by_session ? " (your session ends then: a link lives no longer than the credentials that signed it)" : "");
  } catch (e) { status(e.message, true); }
}

async function deleteCurrent() {
  const prefix = current.key.includes("/") ? current.key.slice(0, current.key.lastIndexOf("/") + 1) : "";
  await removeObject(current.bucket, current.key, null, "#/b/" + enc(current.bucket) + "/" + enc(prefix));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("bucket-form").addEventListener("submit", createBucket);
  $("folder-form").addEventListener("submit", createFolder);
  $("versioning").addEventListener("change", setVersioning);
  $("upload-input").addEventListener("change", uploadFiles);
  $("more").addEventListener("click", () => page().catch((e) => status(e.message, true)));
  $("share-form").addEventListener("submit", share);
  $("object-delete").addEventListener("click", deleteCurrent);
  $("retention-form").addEventListener("submit", setRetention);
  $("legal-hold").addEventListener("change", setLegalHold);
  setupDrop();
  window.addEventListener("hashchange", route);
  route();
});
