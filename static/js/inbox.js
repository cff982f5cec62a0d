// The inbox's live behaviour: the websocket (live updates, soft lock heartbeat, streamed AI
// drafts), the composer's character counter, and keyboard shortcuts. Everything here is an
// enhancement: the pages work without it (links, form posts). Text from fans or the AI is never
// inserted as markup here: draft chunks arrive HTML-escaped by the server, cards and fragments
// are rendered by Django with autoescaping, and messages shown from frames use textContent.
(() => {
  "use strict";

  const page = document.querySelector(".inbox-page");
  if (!page) return;
  // htmx copies "style" from a swapped element to its replacement while settling; the CSP refuses
  // inline style, so a style attribute left by anything (a browser tool, an extension) would turn
  // every composer swap into violations. Classes and sizes are all the inbox settles.
  htmx.config.attributesToSettle = ["class", "width", "height"];
  const conversationId = page.dataset.conversationId ? Number(page.dataset.conversationId) : null;
  const isList = page.hasAttribute("data-inbox-list");
  const canSend = page.hasAttribute("data-can-send");
  const HEARTBEAT_MS = 30000;
  const ORDER_KEY = "huntaze.inbox.order";

  // --- Websocket ------------------------------------------------------------------------------
  let socket = null;
  let retry = 1000;
  let heartbeat = null;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${page.dataset.inboxSocket}`);
    socket.addEventListener("open", () => {
      retry = 1000;
      page.dataset.socket = "open";
      if (conversationId) send({ action: "watch", conversation_id: conversationId });
      if (heartbeat) send({ action: "lock", conversation_id: conversationId });
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      handle(frame);
    });
    socket.addEventListener("close", (event) => {
      page.dataset.socket = "closed";
      if (event.code === 4403) {
        status("You no longer have access to this inbox. Reload the page.");
        return;
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function status(text) {
    const region = document.getElementById("draft-status") || document.getElementById("inbox-live");
    if (region) region.textContent = text;
  }

  function handle(frame) {
    switch (frame.type) {
      case "changed": return changed(frame.conversations || []);
      case "lock": return lockAnswer(frame);
      case "drafts.start": return draftsStart(frame);
      case "draft.chunk": return draftChunk(frame);
      case "draft": return draftCard(frame);
      case "draft.error": return draftError(frame);
      case "drafts.done": return draftsDone();
      case "drafts.cancelled": return draftsDone();
      case "error": return status(frame.message || "Something went wrong.");
      default: return undefined;
    }
  }

  // --- Live updates ----------------------------------------------------------------------------
  let refreshTimer = null;
  function changed(ids) {
    if (isList) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refreshList, 250);
    } else if (conversationId && ids.includes(conversationId)) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refreshConversation, 250);
    }
  }

  function refreshList() {
    const selected = selectedRow();
    const href = selected ? selected.querySelector("a").getAttribute("href") : null;
    htmx.ajax("GET", location.pathname + location.search, { target: "#inbox-list", swap: "outerHTML" }).then(() => {
      saveOrder();
      if (href) {
        const link = document.querySelector(`#inbox-list a[href="${CSS.escape(href)}"]`);
        if (link) select(link.closest("[data-conversation-row]"), false);
      }
    });
  }

  function refreshConversation() {
    htmx.ajax("GET", page.dataset.historyUrl, { target: "#conversation-history", swap: "outerHTML" }).then(scrollHistory);
  }

  function scrollHistory() {
    const history = document.getElementById("conversation-history");
    if (history) history.scrollTop = history.scrollHeight;
  }

  // --- Soft lock ---------------------------------------------------------------------------------
  function lockAnswer(frame) {
    if (frame.conversation_id !== conversationId || frame.taken) return;
    const banner = document.getElementById("conversation-lock");
    if (!banner) return;
    const p = document.createElement("p");
    p.className = "notice lock-banner";
    const strong = document.createElement("strong");
    strong.textContent = `${frame.holder || "Someone"} is answering`;
    p.append(strong, " this fan right now. Read before you write.");
    banner.replaceChildren(p);
  }

  function startHeartbeat() {
    if (heartbeat || !conversationId || !canSend) return;
    send({ action: "lock", conversation_id: conversationId });
    heartbeat = setInterval(() => send({ action: "lock", conversation_id: conversationId }), HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    clearInterval(heartbeat);
    heartbeat = null;
  }

  document.addEventListener("focusin", (event) => {
    if (event.target.closest("#composer")) startHeartbeat();
  });
  document.addEventListener("focusout", (event) => {
    const composer = document.getElementById("composer");
    if (composer && !composer.contains(event.relatedTarget)) stopHeartbeat();
  });

  // --- Drafts ------------------------------------------------------------------------------------
  function draftButtons(disabled) {
    document.querySelectorAll("[data-drafts-form] button").forEach((b) => { b.disabled = disabled; });
  }

  function draftsStart(frame) {
    const list = document.getElementById("draft-cards");
    if (!list) return;
    draftButtons(true);
    status(frame.kind === "upsell" ? "Writing upsell drafts…" : "Writing reply drafts…");
    const cards = [];
    for (let index = 0; index < frame.count; index += 1) {
      const li = document.createElement("li");
      li.className = "draft-card streaming";
      li.id = `draft-${index}`;
      const text = document.createElement("p");
      text.className = "draft-text";
      text.id = `draft-${index}-text`;
      li.append(text);
      cards.push(li);
    }
    list.replaceChildren(...cards);
  }

  function draftChunk(frame) {
    const text = document.getElementById(`draft-${frame.index}-text`);
    // frame.html is the chunk escaped by the server: text only, no markup.
    if (text) text.insertAdjacentHTML("beforeend", frame.html);
  }

  function draftCard(frame) {
    const card = document.getElementById(`draft-${frame.index}`);
    if (!card) return;
    const holder = document.createElement("template");
    holder.innerHTML = frame.html.trim();  // rendered by Django with autoescaping
    const fresh = holder.content.firstElementChild;
    card.replaceWith(fresh);
    htmx.process(fresh);
  }

  function draftError(frame) {
    const card = frame.index === null ? null : document.getElementById(`draft-${frame.index}`);
    const note = document.createElement("p");
    note.className = "danger";
    note.textContent = frame.message;
    if (card) {
      card.classList.remove("streaming");
      card.append(note);
    } else {
      status(frame.message);
    }
  }

  function draftsDone() {
    draftButtons(false);
    document.querySelectorAll(".draft-card.streaming").forEach((card) => card.classList.remove("streaming"));
    status("Drafts ready: use one, edit it if you like, then press Send.");
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("[data-drafts-form]");
    if (!form || !conversationId) return;
    const kind = event.submitter && event.submitter.value === "upsell" ? "upsell" : "reply";
    if (send({ action: "drafts", conversation_id: conversationId, kind })) event.preventDefault();
  });

  function useDraft(link) {
    const composer = document.getElementById("composer");
    const card = link.closest(".draft-card");
    if (!composer || !card) return false;
    const textarea = composer.querySelector("textarea[name=text]");
    textarea.value = card.querySelector(".draft-text").textContent;
    composer.querySelector("input[name=draft]").value = link.dataset.useDraft;
    const template = composer.querySelector("select[name=template]");
    if (template) template.value = "";
    const price = composer.querySelector("input[name=ppv_price]");
    if (price && link.dataset.price) price.value = link.dataset.price;
    updateCounter(textarea);
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    return true;
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-use-draft]");
    if (link && useDraft(link)) event.preventDefault();
  });

  // --- Composer ------------------------------------------------------------------------------------
  function updateCounter(textarea) {
    const composer = textarea.closest("#composer");
    const counter = composer && composer.querySelector("[data-counter]");
    if (!counter) return;
    const limit = Number(textarea.dataset.limit || 0);
    const length = textarea.value.trim().length;
    counter.querySelector("[data-counter-value]").textContent = String(length);
    counter.classList.toggle("over", limit > 0 && length > limit);
  }

  document.addEventListener("input", (event) => {
    if (event.target.matches("#composer textarea[name=text]")) updateCounter(event.target);
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("#composer select[name=template]") && event.target.value) {
      // A click, not requestSubmit(insert): htmx takes the pressed button (action=template) from
      // its click, and without it the post would be a send.
      const insert = event.target.form.querySelector("[data-insert-template]");
      if (insert) insert.click();
    }
  });
  document.addEventListener("htmx:afterSettle", () => {
    const textarea = document.querySelector("#composer textarea[name=text]");
    if (textarea) updateCounter(textarea);
    // A sent message replaces the composer (and releases the lock): stop renewing it.
    const composer = document.getElementById("composer");
    if (heartbeat && !(composer && composer.contains(document.activeElement))) stopHeartbeat();
    if (isList) saveOrder();
  });

  function sendNow() {
    const composer = document.getElementById("composer");
    if (!composer) return;
    composer.querySelector("[data-send]").click();
  }

  // --- List selection and order --------------------------------------------------------------------
  function rows() { return Array.from(document.querySelectorAll("[data-conversation-row]")); }
  function selectedRow() { return document.querySelector("[data-conversation-row].selected"); }

  function select(row, focus = true) {
    rows().forEach((r) => r.classList.remove("selected"));
    if (!row) return;
    row.classList.add("selected");
    if (focus) row.querySelector("a").focus();
  }

  function saveOrder() {
    const hrefs = rows().map((row) => row.querySelector("a").getAttribute("href"));
    try { sessionStorage.setItem(ORDER_KEY, JSON.stringify(hrefs)); } catch { /* private mode */ }
  }

  function move(step) {
    if (isList) {
      const all = rows();
      if (!all.length) return;
      const current = all.indexOf(selectedRow());
      const next = current === -1 ? (step > 0 ? 0 : all.length - 1) : Math.min(Math.max(current + step, 0), all.length - 1);
      select(all[next]);
      return;
    }
    let order = [];
    try { order = JSON.parse(sessionStorage.getItem(ORDER_KEY) || "[]"); } catch { order = []; }
    const here = order.indexOf(location.pathname);
    const target = here === -1 ? null : order[here + step];
    if (target) location.assign(target);
  }

  // --- Keyboard ------------------------------------------------------------------------------------
  const dialog = document.getElementById("shortcuts");

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (document.getElementById("composer")) {
        event.preventDefault();
        sendNow();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (dialog && dialog.open) return;
    switch (event.key) {
      case "?":
        if (dialog) { event.preventDefault(); dialog.showModal(); }
        break;
      case "/": {
        const search = document.querySelector("[data-shortcut-search]");
        if (search) { event.preventDefault(); search.focus(); search.select(); }
        break;
      }
      case "j": event.preventDefault(); move(1); break;
      case "k": event.preventDefault(); move(-1); break;
      case "a": {
        const first = document.querySelector("#draft-cards [data-use-draft]");
        if (first) { event.preventDefault(); useDraft(first); }
        break;
      }
      default: break;
    }
  });

  if (isList) saveOrder();
  if (!isList) scrollHistory();
  const textarea = document.querySelector("#composer textarea[name=text]");
  if (textarea) updateCounter(textarea);
  connect();
})();
