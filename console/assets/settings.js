// The bucket settings page (#/s/BUCKET): versioning, object lock's default
// retention, default encryption, lifecycle expiration rules, tags and the
// bucket policy. Loaded after app.js (its helpers: $, call, cell, button,
// status, show, enc). Every change is one console call, which is one S3
// call as the session's user; the page then shows what the server says.
"use strict";

let settingsBucket = "";
let settingsTags = [];

// A section's error (the user may not read it), or null.
function sectionError(v) {
  return v && typeof v === "object" && !Array.isArray(v) && v.error ? v.error : null;
}

async function settingsPage(bucket) {
  show("settings");
  settingsBucket = bucket;
  $("settings-title").textContent = bucket + ": settings";
  $("settings-browse").href = "#/b/" + enc(bucket) + "/";
  const d = await call("GET", "settings", { bucket });
  const v = d.versioning || {};
  $("settings-versioning").checked = v.status === "Enabled";
  $("settings-versioning-status").textContent = sectionError(v) || (v.status ? "(" + v.status + ")" : "(never enabled)");

  const lock = d.lock;
  const lockForm = $("lock-form");
  if (sectionError(lock)) {
    $("lock-state").textContent = sectionError(lock);
    lockForm.hidden = true;
  } else if (!lock || !lock.enabled) {
    $("lock-state").textContent = "Object lock is not enabled on this bucket (it is chosen when a bucket is created).";
    lockForm.hidden = true;
  } else {
    $("lock-state").textContent = "Object lock enabled; default retention: " +
      (lock.mode ? lock.mode + " for " + (lock.days ? lock.days + " days" : lock.years + " years") : "none");
    lockForm.hidden = false;
    $("lock-mode").value = lock.mode || "";
    if (lock.days) $("lock-days").value = lock.days;
  }
  lockForm.dataset.mode = lock && lock.mode ? lock.mode : "";

  const e = d.encryption;
  $("encryption-algorithm").value = e && e.algorithm ? e.algorithm : "none";
  $("encryption-key").value = e && e.key ? e.key : "";
  $("encryption-form").dataset.algorithm = e && e.algorithm ? e.algorithm : "none";

  const rules = $("lifecycle-table").tBodies[0];
  rules.replaceChildren();
  for (const r of Array.isArray(d.lifecycle) ? d.lifecycle : []) {
    const tr = document.createElement("tr");
    tr.className = "rule";
    tr.dataset.rule = r.id || "";
    cell(tr, r.id); cell(tr, r.prefix); cell(tr, r.status); cell(tr, r.days);
    cell(tr, button("Delete", () => settingsChange("POST", "settings/lifecycle/delete", { bucket, id: r.id }, undefined, "rule deleted")));
    rules.appendChild(tr);
  }
  if (sectionError(d.lifecycle)) status(sectionError(d.lifecycle), true);

  settingsTags = Array.isArray(d.tags) ? d.tags : [];
  const tags = $("tags-table").tBodies[0];
  tags.replaceChildren();
  for (const t of settingsTags) {
    const tr = document.createElement("tr");
    tr.className = "tag";
    tr.dataset.tag = t.key;
    cell(tr, t.key); cell(tr, t.value);
    cell(tr, button("Delete", () => saveTags(settingsTags.filter((x) => x.key !== t.key), "tag deleted")));
    tags.appendChild(tr);
  }

  const p = d.policy;
  $("policy-text").value = typeof p === "string" ? prettyJson(p) : "";
  $("policy-text").placeholder = sectionError(p) || "no bucket policy";
}

function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}

// One change, then the page again with `done` in the status line (or the
// server's error).
// Resolves whether the change was made.
async function settingsChange(method, path, params, body, done) {
  try {
    await call(method, path, params, body);
  } catch (e) {
    status(e.message, true);
    return false;
  }
  try {
    await settingsPage(settingsBucket);
    status(done);
  } catch (e) { status(e.message, true); }
  return true;
}

function clear(...ids) {
  for (const id of ids) $(id).value = "";
}

function saveTags(tags, done) {
  return settingsChange("PUT", "settings/tags", { bucket: settingsBucket }, { tags }, done);
}

function setupSettings() {
  $("settings-versioning").addEventListener("change", () =>
    settingsChange("PUT", "versioning", { bucket: settingsBucket, enabled: String($("settings-versioning").checked) },
      undefined, "versioning " + ($("settings-versioning").checked ? "enabled" : "suspended")));
  $("lock-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const params = { bucket: settingsBucket };
    if ($("lock-mode").value) { params.mode = $("lock-mode").value; params.days = $("lock-days").value; }
    settingsChange("PUT", "settings/lock", params, undefined, "default retention saved");
  });
  $("encryption-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const params = { bucket: settingsBucket, algorithm: $("encryption-algorithm").value };
    if ($("encryption-key").value.trim()) params.key = $("encryption-key").value.trim();
    settingsChange("PUT", "settings/encryption", params, undefined, "default encryption saved");
  });
  $("lifecycle-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    settingsChange("POST", "settings/lifecycle", {
      bucket: settingsBucket, id: $("lifecycle-id").value.trim(),
      prefix: $("lifecycle-prefix").value, days: $("lifecycle-days").value,
    }, undefined, "rule added").then((ok) => ok && clear("lifecycle-id", "lifecycle-prefix", "lifecycle-days"));
  });
  $("tag-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("tag-key").value.trim();
    const tags = settingsTags.filter((t) => t.key !== key).concat([{ key, value: $("tag-value").value }]);
    saveTags(tags, "tags saved").then((ok) => ok && clear("tag-key", "tag-value"));
  });
  $("policy-save").addEventListener("click", () =>
    settingsChange("PUT", "settings/policy", { bucket: settingsBucket }, { policy: $("policy-text").value }, "policy saved"));
  $("policy-delete").addEventListener("click", () =>
    settingsChange("PUT", "settings/policy", { bucket: settingsBucket }, { policy: "" }, "policy deleted"));
}

document.addEventListener("DOMContentLoaded", setupSettings);
