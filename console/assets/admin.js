// The administration pages: drives by set (#/admin), heal (#/heal), KMS
// keys (#/kms) and identities (#/iam). Loaded after app.js (its helpers).
// The menu shows them only when api/session says the server lets this
// user call them; the server refuses them to anyone else all the same.
"use strict";

// ---- drives, sets, node ----

async function adminPage() {
  show("admin");
  const info = await call("GET", "admin/info");
  $("admin-summary").textContent = "Deployment " + info.deployment_id + " (this node): " + info.data_shards +
    " data + " + info.parity_shards + " parity shards per set, heal queue " + info.heal_queue +
    ", bitrot errors " + info.bitrot_errors;
  const bySet = new Map();
  for (const d of info.drives) {
    if (!bySet.has(d.set)) bySet.set(d.set, []);
    bySet.get(d.set).push(d);
  }
  const box = $("topology");
  box.replaceChildren();
  for (const [set, drives] of [...bySet.entries()].sort((a, b) => a[0] - b[0])) {
    const div = document.createElement("div");
    div.className = "set";
    div.dataset.set = set;
    const online = drives.filter((d) => d.state === "online").length;
    const h = document.createElement("h2");
    h.textContent = "Set " + set + ": " + online + " of " + drives.length + " drives online";
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const t of ["#", "Path", "State", "Free", "Total"]) cell(head, t);
    const body = table.createTBody();
    for (const d of drives) {
      const tr = document.createElement("tr");
      tr.className = "drive";
      tr.dataset.state = d.state;
      cell(tr, d.index); cell(tr, d.path);
      cell(tr, d.state).className = "state-" + d.state;
      cell(tr, size(d.free_bytes)); cell(tr, size(d.total_bytes));
      body.appendChild(tr);
    }
    div.append(h, table);
    box.appendChild(div);
  }
}

// ---- heal: the admin API's progress lines, read as they stream ----

function healPage() {
  show("heal");
}

function healRows(summary) {
  props($("heal-summary"), Object.entries(summary || {}));
}

async function startHeal(ev) {
  ev.preventDefault();
  const params = {};
  if ($("heal-bucket").value.trim()) params.bucket = $("heal-bucket").value.trim();
  if ($("heal-prefix").value) params.prefix = $("heal-prefix").value;
  if ($("heal-deep").checked) params.deep = "true";
  const progress = $("heal-progress");
  progress.dataset.state = "running";
  progress.textContent = "healing...";
  try {
    const r = await fetch(API + "admin/heal?" + qs(params), {
      method: "POST", headers: { "X-Cairn-Csrf": session.csrf }, credentials: "same-origin",
    });
    if (!r.ok) {
      const data = await r.json().catch(() => ({}));
      throw new Error((data.code || r.status) + ": " + (data.message || r.statusText));
    }
    const reader = r.body.getReader();
    const text = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += text.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue;
        const ev = JSON.parse(line);
        if (ev.event === "progress") {
          progress.textContent = ev.summary.objects_scanned + (ev.total ? " of " + ev.total : "") +
            " objects scanned, " + ev.summary.objects_healed + " healed: " + ev.current;
          healRows(ev.summary);
        } else if (ev.event === "error") {
          status(ev.message, true);
        } else if (ev.event === "done") {
          progress.textContent = "done";
          progress.dataset.state = "done";
          healRows(ev.summary);
        }
      }
    }
    if (progress.dataset.state !== "done") throw new Error("the heal stopped before it was done");
  } catch (e) {
    progress.dataset.state = "failed";
    status(e.message, true);
  }
}

// ---- KMS ----

async function kmsPage() {
  show("kms");
  const k = await call("GET", "admin/kms");
  $("kms-summary").textContent = "Backend " + k.backend + (k.location ? " at " + k.location : "") +
    ", default key " + k.default_key;
  const tbody = $("kms-table").tBodies[0];
  tbody.replaceChildren();
  for (const [name, version] of k.keys) {
    const tr = document.createElement("tr");
    tr.className = "kms-key";
    tr.dataset.key = name;
    tr.dataset.version = version;
    cell(tr, name); cell(tr, version);
    cell(tr, button("Rotate", () => rotateKey(name)));
    tbody.appendChild(tr);
  }
}

async function createKey(ev) {
  ev.preventDefault();
  try {
    await call("POST", "admin/kms/keys", { name: $("kms-name").value.trim() });
    $("kms-name").value = "";
    await kmsPage();
    status("key created");
  } catch (e) { status(e.message, true); }
}

async function rotateKey(name) {
  try {
    const r = await call("POST", "admin/kms/rotate", { name });
    await kmsPage();
    $("kms-rotated").textContent = "Key " + r.key + " is at version " + r.new_version + "; " + r.resealed +
      " object keys resealed, " + r.failed + " failed";
    status("key rotated");
  } catch (e) { status(e.message, true); }
}

// ---- identities (the IAM query API; its XML read as text only) ----

async function iam(params) {
  const r = await call("POST", "iam", null, params);
  return new DOMParser().parseFromString(r.xml, "application/xml");
}

function texts(doc, tag) {
  return Array.from(doc.getElementsByTagName(tag), (e) => e.textContent);
}

const BUILTIN = "arn:aws:iam::aws:policy/";

async function iamPage() {
  show("iam");
  const [users, groups, policies] = await Promise.all([
    iam({ Action: "ListUsers" }), iam({ Action: "ListGroups" }), iam({ Action: "ListPolicies" }),
  ]);
  const arns = texts(policies, "Arn");
  const names = texts(policies, "PolicyName");
  for (const sel of document.querySelectorAll(".policy-choice")) {
    sel.replaceChildren(new Option("(no policy)", ""));
    names.forEach((n, i) => sel.appendChild(new Option(n, arns[i])));
  }
  const ptable = $("iam-policies").tBodies[0];
  ptable.replaceChildren();
  names.forEach((n, i) => {
    const tr = document.createElement("tr");
    tr.className = "policy";
    tr.dataset.policy = n;
    cell(tr, n); cell(tr, arns[i]);
    const act = cell(tr, "");
    if (!arns[i].startsWith(BUILTIN)) {
      act.appendChild(button("Delete", () => iamChange({ Action: "DeletePolicy", PolicyArn: arns[i] }, "policy deleted")));
    }
    ptable.appendChild(tr);
  });

  const utable = $("iam-users").tBodies[0];
  utable.replaceChildren();
  for (const user of texts(users, "UserName")) {
    const attached = texts(await iam({ Action: "ListAttachedUserPolicies", UserName: user }), "PolicyName");
    const tr = document.createElement("tr");
    tr.className = "user";
    tr.dataset.user = user;
    cell(tr, user); cell(tr, attached.join(", "));
    const act = cell(tr, "");
    act.append(button("Create access key", () => createAccessKey(user)),
      button("Delete", () => deleteUser(user)));
    utable.appendChild(tr);
  }

  const gtable = $("iam-groups").tBodies[0];
  gtable.replaceChildren();
  for (const group of texts(groups, "GroupName")) {
    const [g, gp] = await Promise.all([iam({ Action: "GetGroup", GroupName: group }),
      iam({ Action: "ListAttachedGroupPolicies", GroupName: group })]);
    const tr = document.createElement("tr");
    tr.className = "group";
    tr.dataset.group = group;
    cell(tr, group);
    cell(tr, texts(g, "UserName").join(", "));
    cell(tr, texts(gp, "PolicyName").join(", "));
    cell(tr, button("Delete", () => iamChange({ Action: "DeleteGroup", GroupName: group }, "group deleted")));
    gtable.appendChild(tr);
  }
}

async function iamChange(params, done) {
  try {
    await iam(params);
    await iamPage();
    status(done);
    return true;
  } catch (e) {
    status(e.message, true);
    return false;
  }
}

async function createUser(ev) {
  ev.preventDefault();
  const user = $("iam-user-name").value.trim();
  const policy = $("iam-user-policy").value;
  try {
    await iam({ Action: "CreateUser", UserName: user });
    if (policy) await iam({ Action: "AttachUserPolicy", UserName: user, PolicyArn: policy });
    $("iam-user-name").value = "";
    await iamPage();
    status("user created");
  } catch (e) { status(e.message, true); }
}

async function createAccessKey(user) {
  try {
    const doc = await iam({ Action: "CreateAccessKey", UserName: user });
    $("iam-key-id").textContent = texts(doc, "AccessKeyId")[0] || "";
    $("iam-key-secret").textContent = texts(doc, "SecretAccessKey")[0] || "";
    $("iam-new-key").dataset.user = user;
    $("iam-new-key").hidden = false;
    status("access key created for " + user);
  } catch (e) { status(e.message, true); }
}

// A user's keys and attached policies go first (IAM refuses to delete a
// user that still has them).
async function deleteUser(user) {
  if (!confirm("Delete user " + user + "?")) return;
  try {
    for (const id of texts(await iam({ Action: "ListAccessKeys", UserName: user }), "AccessKeyId")) {
      await iam({ Action: "DeleteAccessKey", UserName: user, AccessKeyId: id });
    }
    for (const arn of texts(await iam({ Action: "ListAttachedUserPolicies", UserName: user }), "PolicyArn")) {
      await iam({ Action: "DetachUserPolicy", UserName: user, PolicyArn: arn });
    }
    await iamChange({ Action: "DeleteUser", UserName: user }, "user deleted");
  } catch (e) { status(e.message, true); }
}

async function createGroup(ev) {
  ev.preventDefault();
  const group = $("iam-group-name").value.trim();
  const policy = $("iam-group-policy").value;
  try {
    await iam({ Action: "CreateGroup", GroupName: group });
    if (policy) await iam({ Action: "AttachGroupPolicy", GroupName: group, PolicyArn: policy });
    $("iam-group-name").value = "";
    await iamPage();
    status("group created");
  } catch (e) { status(e.message, true); }
}

function setupAdmin() {
  $("heal-form").addEventListener("submit", startHeal);
  $("kms-form").addEventListener("submit", createKey);
  $("iam-user-form").addEventListener("submit", createUser);
  $("iam-group-form").addEventListener("submit", createGroup);
  $("iam-member-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    iamChange({ Action: "AddUserToGroup", UserName: $("iam-member-user").value.trim(),
      GroupName: $("iam-member-group").value.trim() }, "user added to group");
  });
  $("iam-policy-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    iamChange({ Action: "CreatePolicy", PolicyName: $("iam-policy-name").value.trim(),
      PolicyDocument: $("iam-policy-doc").value }, "policy created");
  });
}

document.addEventListener("DOMContentLoaded", setupAdmin);
