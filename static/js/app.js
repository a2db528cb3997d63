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
      default: return null;
    }
  }

  let socket = null;
  let delay = 1000;

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
      const fromMe = event.payload && event.payload.actorId && event.payload.actorId === me;
      const text = fromMe ? null : describe(event);
      if (text) toast(text, "info");
    });
    socket.addEventListener("close", function () {
      document.body.classList.add("live-offline");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  if (me) connect();
})();
