// The board: drag-and-drop between columns, the task dialog, and live refresh of affected columns.
(function () {
  "use strict";

  const dialog = () => document.getElementById("task-dialog");

  // --- the task dialog: open when htmx fills it, close on request from the server ---------------
  document.addEventListener("htmx:after:swap", function (event) {
    const target = event.detail && event.detail.ctx && event.detail.ctx.target;
    const d = dialog();
    if (d && target && target.id === "task-dialog-body" && !d.open) d.showModal();
  });
  document.body.addEventListener("clawtrol:close-dialog", function () {
    const d = dialog();
    if (d && d.open) d.close();
  });

  // --- drag and drop -----------------------------------------------------------------------------
  let dragged = null;
  let origin = null;

  document.addEventListener("dragstart", function (event) {
    const card = event.target.closest && event.target.closest(".task-card[draggable='true']");
    if (!card) return;
    dragged = card;
    origin = {parent: card.parentNode, next: card.nextSibling};
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.taskId);
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    document.querySelectorAll(".column.drop-target").forEach((c) => c.classList.remove("drop-target"));
    dragged = null;
  });

  document.addEventListener("dragover", function (event) {
    const column = event.target.closest && event.target.closest(".column");
    if (!dragged || !column) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".column.drop-target").forEach((c) => c !== column && c.classList.remove("drop-target"));
    column.classList.add("drop-target");
  });

  document.addEventListener("drop", function (event) {
    const column = event.target.closest && event.target.closest(".column");
    if (!dragged || !column) return;
    event.preventDefault();
    const card = dragged;
    const status = column.dataset.status;
    column.classList.remove("drop-target");
    if (status === card.dataset.status) return;
    // Move it now; the server's answer re-renders both columns (and snaps the card back if refused).
    const body = column.querySelector(".column-body");
    body.insertBefore(card, body.firstChild);
    const url = "/board/tasks/" + encodeURIComponent(card.dataset.taskId) + "/move?status=" +
      encodeURIComponent(status) + "&version=" + encodeURIComponent(card.dataset.version);
    // The source is <body>: the card itself is replaced by the answer, and the toast event must bubble.
    htmx.ajax("POST", url, {source: document.body, swap: "none"}).catch(function () {
      if (origin) origin.parent.insertBefore(card, origin.next);
      window.clawtrolToast && window.clawtrolToast("The move could not be saved; check your connection.", "error");
    });
  });

  // --- live: refresh the columns another change touched -------------------------------------------
  // One request for all touched columns (they swap together, out of band), one request at a time (so an
  // older answer can never land after a newer one).
  const pending = new Set();
  let timer = null;
  let inflight = false;

  function flush() {
    if (inflight || pending.size === 0) return;
    const query = Array.from(pending).map((s) => "status=" + encodeURIComponent(s)).join("&");
    pending.clear();
    inflight = true;
    htmx.ajax("GET", "/board/columns?" + query, {source: document.body, swap: "none"})
      .catch(function () {})
      .finally(function () { inflight = false; flush(); });
  }

  function refresh(status) {
    if (!status || !document.getElementById("column-" + status)) return;
    pending.add(status);
    clearTimeout(timer);
    timer = setTimeout(flush, 50);
  }

  document.addEventListener("clawtrol:event", function (event) {
    const e = event.detail;
    const p = e.payload || {};
    const task = p.task || {};
    if (e.type === "task.created" || e.type === "task.deleted") refresh(task.status);
    if (e.type === "task.updated") {
      refresh(task.status);
      if (p.oldTask && p.oldTask.status !== task.status) refresh(p.oldTask.status);
    }
    // The open task changed under us: offer a reload (comments reload by themselves).
    const open = document.getElementById("task-detail");
    const taskId = task.id || p.taskId;
    if (!open || open.dataset.taskId !== taskId) return;
    const fromMe = p.actorId && p.actorId === document.body.dataset.userId;
    if (e.type.indexOf("comment.") === 0 && !fromMe) {
      htmx.ajax("GET", "/board/tasks/" + encodeURIComponent(taskId) + "/comments",
        {target: "#task-comments", swap: "outerHTML"});
    } else if (e.type === "task.updated" && !fromMe) {
      const notice = open.querySelector(".live-notice");
      if (notice) notice.hidden = false;
    } else if (e.type === "task.deleted" && !fromMe) {
      const d = dialog();
      if (d && d.open) d.close();
    }
  });
})();
