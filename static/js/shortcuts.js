// Keyboard shortcuts, loaded only for users who turned them on in their profile
// (templates/base.html; apps/accounts/profile.py). No library: a two-key "g x" sequence, "/" and
// "?". Keys typed into a field, or with Ctrl/Alt/Meta held, are left alone. The targets come from
// this script tag's data-* attributes, so no URL is hard-coded here.
(() => {
  const script = document.currentScript;
  if (!script) return;
  const urls = script.dataset;
  const SEQUENCES = {
    d: { url: urls.dashboard, label: "Go to the dashboard" },
    i: { url: urls.inbox, label: "Go to the inbox" },
    f: { url: urls.fans, label: "Go to fans" },
    c: { url: urls.campaigns, label: "Go to campaigns" },
    n: { url: urls.notifications, label: "Go to notifications" },
    p: { url: urls.profile, label: "Go to your profile" },
  };
  let pendingG = 0;
  let dialog = null;

  const typing = (target) =>
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));

  function helpDialog() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "shortcuts-help";
    dialog.setAttribute("aria-labelledby", "shortcuts-help-title");
    const title = document.createElement("h2");
    title.id = "shortcuts-help-title";
    title.textContent = "Keyboard shortcuts";
    const list = document.createElement("dl");
    const rows = [
      ...Object.entries(SEQUENCES).filter(([, s]) => s.url).map(([key, s]) => [`g ${key}`, s.label]),
      ["/", "Search on this page (or the fan list)"],
      ["?", "Show this list"],
      ["Esc", "Close this list"],
    ];
    for (const [keys, label] of rows) {
      const dt = document.createElement("dt");
      const kbd = document.createElement("kbd");
      kbd.textContent = keys;
      dt.append(kbd);
      const dd = document.createElement("dd");
      dd.textContent = label;
      list.append(dt, dd);
    }
    const note = document.createElement("p");
    note.textContent = "Turn shortcuts off in your profile.";
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    dialog.append(title, list, note, close);
    document.body.append(dialog);
    return dialog;
  }

  function search() {
    const field = document.querySelector("input[type=search], input[name=q], [data-shortcut-search]");
    if (field) {
      field.focus();
      if (typeof field.select === "function") field.select();
    } else if (urls.fans) {
      window.location.assign(urls.fans);
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
    if (dialog && dialog.open) return; // the dialog handles Esc itself
    const now = Date.now();
    if (pendingG && now - pendingG < 1500) {
      pendingG = 0;
      const target = SEQUENCES[event.key];
      if (target && target.url) {
        event.preventDefault();
        window.location.assign(target.url);
      }
      return;
    }
    if (event.key === "g") {
      pendingG = now;
    } else if (event.key === "/") {
      event.preventDefault();
      search();
    } else if (event.key === "?") {
      event.preventDefault();
      helpDialog().showModal();
    }
  });
})();
