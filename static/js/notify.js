// Mission Clawtrol: desktop notifications for new approvals, opt-in per browser.
// A "Desktop notifications" button (approvals page, user menu) asks the browser's permission on a click and
// remembers the choice; then an approval.requested event that arrives over /ws (app.js re-dispatches it as
// "clawtrol:approval") while this tab is hidden shows a notification. Its text is plain text, never HTML.
(function () {
  "use strict";

  const KEY = "clawtrol:notify-approvals";

  function supported() { return "Notification" in window; }

  function chosen() {
    try { return localStorage.getItem(KEY) === "on"; } catch (e) { return false; }
  }

  function remember(on) {
    try { localStorage.setItem(KEY, on ? "on" : "off"); } catch (e) { /* storage blocked: nothing to keep */ }
  }

  function active() { return supported() && Notification.permission === "granted" && chosen(); }

  function render() {
    document.querySelectorAll("[data-notify-toggle]").forEach(function (button) {
      if (!supported()) { button.hidden = true; return; }
      const blocked = Notification.permission === "denied";
      button.hidden = false;
      button.disabled = blocked;
      button.setAttribute("aria-pressed", active() ? "true" : "false");
      button.textContent = blocked ? "Desktop notifications blocked by the browser"
        : active() ? "Desktop notifications: on" : "Desktop notifications: off";
    });
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[data-notify-toggle]");
    if (!button || !supported()) return;
    if (active()) { remember(false); render(); return; }
    Notification.requestPermission().then(function (permission) {
      remember(permission === "granted");
      render();
      if (permission === "granted" && window.clawtrolToast) {
        window.clawtrolToast("New approvals will notify you while this tab is in the background.", "success");
      }
    });
  });

  function shorten(text) {
    text = String(text || "");
    return text.length > 120 ? text.slice(0, 119) + "…" : text;
  }

  document.addEventListener("clawtrol:approval", function (event) {
    const detail = event.detail || {};
    if (detail.type !== "approval.requested" || !document.hidden || !active()) return;
    const approval = (detail.payload || {}).approval || {};
    const note = new Notification("Approval requested", {
      body: (approval.agentId ? approval.agentId + " wants to run: " : "") + shorten(approval.command),
      // one notification per approval (gateway and id), however many tabs
      tag: "clawtrol-approval-" + (approval.gatewayId || "") + "-" + (approval.id || ""),
    });
    note.onclick = function () {
      window.focus();
      if (location.pathname !== "/approvals") location.assign("/approvals");
      note.close();
    };
  });

  render();
})();
