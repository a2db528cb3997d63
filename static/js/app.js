// Mission Clawtrol: the live channel (/ws) and toasts, on every signed-in page.
// Events arrive as {type, payload, timestamp}; each is re-dispatched on document as a
// "clawtrol:event" CustomEvent so pages (the board) can react. Toast text is set with textContent:
// titles and names come from users and agents and are never parsed as HTML.
(function () {
  "use strict";

  const me = document.body.dataset.userId || "";

  function toast(message, level) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = "toast" + (level === "error" ? " toast-error" : level === "success" ? " toast-success" : "");
    item.setAttribute("role", level === "error" ? "alert" : "status");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, level === "error" ? 8000 : 5000);
  }
  window.clawtrolToast = toast;

  // Server-sent toasts: HX-Trigger: {"clawtrol:toast": {"message": "...", "level": "error"}}
  document.body.addEventListener("clawtrol:toast", function (event) {
    const detail = event.detail || {};
    if (detail.message) toast(String(detail.message), detail.level);
  });

  const STATUS = {"backlog": "Backlog", "todo": "To do", "in-progress": "In progress", "review": "Review", "done": "Done"};

  function describe(event) {
    const p = event.payload || {};
    const who = p.actor || "Someone";
    const task = p.task || {};
    const title = task.title || p.title || "a task";
    switch (event.type) {
      case "task.created": return who + " created '" + title + "'";
      case "task.deleted": return who + " deleted '" + title + "'";
      case "task.updated": {
        const old = p.oldTask || {};
        if (old.status && task.status && old.status !== task.status) {
          return who + " moved '" + title + "' to " + (STATUS[task.status] || task.status);
        }
        if ((p.updates || []).indexOf("assignedTo") >= 0) {
          return task.assignedTo === me ? who + " assigned '" + title + "' to you" : who + " reassigned '" + title + "'";
        }
        return who + " updated '" + title + "'";
      }
      case "comment.created": return who + " commented on '" + title + "'";
      case "agent.stalled": return "Agent session stalled: " + shorten(p.label || p.sessionKey) +
        " (no activity for " + Math.floor((p.quietMs || 0) / 60000) + " min)";
      case "approval.requested": return "Approval requested: " + shorten((p.approval || {}).command);
      case "approval.resolved": {
        const verb = {"allow-once": "allowed once", "allow-always": "allowed always", "deny": "denied"}[p.decision] || "decided";
        return (p.resolvedBy || who) + " " + verb + ": " + shorten((p.approval || {}).command);
      }
      default: return null;
    }
  }

  function shorten(text) {
    text = String(text || "");
    return text.length > 60 ? text.slice(0, 59) + "…" : text;
  }

  // The pending-approvals count in the header, kept current from approval events.
  function updateApprovalBadge(count) {
    if (typeof count !== "number") return;
    document.querySelectorAll("[data-pending-approvals]").forEach(function (badge) {
      badge.textContent = String(count);
      badge.title = count + " pending";
      badge.hidden = count === 0;
    });
  }

  // Countdowns to an approval's expiry: "in 4m 05s", then "expired" (and its buttons are disabled).
  function tickCountdowns() {
    const now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      const left = Math.floor((Number(element.dataset.countdown) - now) / 1000);
      const item = element.closest(".approval");
      if (left <= 0) {
        element.textContent = "expired";
        if (item && !item.classList.contains("approval-expired")) {
          item.classList.add("approval-expired");
          item.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
        }
        return;
      }
      const minutes = Math.floor(left / 60), seconds = left % 60;
      element.textContent = "in " + (minutes ? minutes + "m " + String(seconds).padStart(2, "0") + "s" : seconds + " s");
      if (item) item.classList.toggle("approval-urgent", left <= 30);
    });
  }
  tickCountdowns();
  setInterval(tickCountdowns, 1000);

  let socket = null;
  let delay = 1000;
  // Set when this page starts navigating away (a link, a form such as Sign out). A socket closed after
  // that is handled a few seconds later, if the page is still here (a download does not unload it):
  // navigating at once would abort the navigation under way.
  let leaving = false;
  window.addEventListener("beforeunload", function () { leaving = true; });

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws");
    socket.addEventListener("open", function () {
      delay = 1000;
      document.body.classList.remove("live-offline");
      socket.send(JSON.stringify({type: "subscribe", channels: ["tasks", "approvals", "activity"]}));
    });
    socket.addEventListener("message", function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (!event || !event.type || event.type === "connected" || event.type === "subscribed") return;
      document.dispatchEvent(new CustomEvent("clawtrol:event", {detail: event}));
      if (event.type.indexOf("approval.") === 0) {
        updateApprovalBadge((event.payload || {}).pendingCount);
        document.dispatchEvent(new CustomEvent("clawtrol:approval", {detail: event}));
      }
      const fromMe = event.payload && event.payload.actorId && event.payload.actorId === me;
      const text = fromMe ? null : describe(event);
      if (text) toast(text, "info");
    });
    socket.addEventListener("close", function onClose(closed) {
      if (leaving) { leaving = false; setTimeout(function () { onClose(closed); }, 3000); return; }
      // 4401: this browser's access was revoked (signed out, deactivated): go to the sign-in page.
      // 4403: the role changed: reload, so the page (and a new socket) carry the new role.
      if (closed.code === 4401) { location.assign("/login"); return; }
      if (closed.code === 4403) { location.reload(); return; }
      document.body.classList.add("live-offline");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  if (me) connect();
})();
