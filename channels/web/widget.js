/*
 * One-tag embed of the shop assistant's chat:
 *
 *   <script src="https://shop.example/webhooks/multimodal/widget.js" async
 *           data-title="Questions? Chat with us" data-color="#1f7a4d" data-position="right"></script>
 *
 * Adds a floating button (in a shadow root, so the host page's CSS cannot reach it) that opens the chat page in
 * an iframe served by the assistant itself. Options: data-title, data-color (#rgb or #rrggbb),
 * data-position (right | left), data-open ("true" opens the chat on load), data-customer-token (the shop's
 * signed token of the logged-in customer; see docs/channels.md).
 *
 * The customer token never goes into a URL: the chat page asks for it ("shop-chat:ready") once loaded and the
 * widget answers by postMessage to the assistant's origin only. The attribute is removed from the page once
 * read. window.ShopChat.setCustomerToken(token) hands over a fresh token (or null after a logout).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__shopChatWidget) return;
  window.__shopChatWidget = true;

  var base = new URL(".", script.src);
  var chatUrl = new URL("chat?embed=1", base).href;
  var data = script.dataset || {};
  var title = (data.title || "Chat with the shop assistant").slice(0, 80);
  var color = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || "") ? data.color : "#1f7a4d";
  var side = data.position === "left" ? "left" : "right";
  var customerToken = typeof data.customerToken === "string" && data.customerToken ? data.customerToken : null;
  script.removeAttribute("data-customer-token");

  var css =
    ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;width:60px;height:60px;" +
    "border:0;border-radius:50%;background:" + color + ";color:#fff;cursor:pointer;display:grid;place-items:center;" +
    "box-shadow:0 6px 20px rgba(0,0,0,.25);transition:transform .15s}" +
    ".launcher:hover{transform:scale(1.06)}" +
    ".launcher:focus-visible{outline:3px solid #3b82f6;outline-offset:3px}" +
    ".panel{position:fixed;bottom:92px;" + side + ":20px;z-index:2147483000;width:min(390px,calc(100vw - 24px));" +
    "height:min(640px,calc(100vh - 112px));border-radius:16px;overflow:hidden;background:#fff;" +
    "box-shadow:0 12px 40px rgba(0,0,0,.28)}" +
    ".panel[hidden]{display:none}" +
    "iframe{width:100%;height:100%;border:0;display:block}" +
    "@media (max-width:480px){.panel{inset:0;width:100vw;height:100vh;height:100dvh;border-radius:0}}" +
    "@media (prefers-reduced-motion:reduce){.launcher{transition:none}}";

  var chatIcon =
    '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor" ' +
    'd="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2Zm3 5v2h10V9H7Zm0 4v2h7v-2H7Z"/></svg>';
  var closeIcon =
    '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" ' +
    'd="M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z"/></svg>';

  function mount() {
    var host = document.createElement("div");
    host.setAttribute("data-shop-chat", "");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

    var style = document.createElement("style");
    style.textContent = css;
    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher";
    launcher.setAttribute("aria-label", title);
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "shop-chat-panel");
    launcher.title = title;
    launcher.innerHTML = chatIcon;

    var panel = document.createElement("div");
    panel.className = "panel";
    panel.id = "shop-chat-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", title);
    panel.hidden = true;

    var frame = null;

    function sendCustomerToken() {
      if (frame && frame.contentWindow) {
        frame.contentWindow.postMessage({ type: "shop-chat:customer-token", token: customerToken }, base.origin);
      }
    }

    window.ShopChat = {
      setCustomerToken: function (token) {
        customerToken = typeof token === "string" && token ? token : null;
        sendCustomerToken();
      }
    };

    function open() {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.src = chatUrl;
        frame.title = title;
        frame.allow = "microphone; clipboard-read; clipboard-write";
        panel.appendChild(frame);
      }
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.innerHTML = closeIcon;
      launcher.setAttribute("aria-label", "Close the chat");
      frame.focus();
    }

    function close() {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.innerHTML = chatIcon;
      launcher.setAttribute("aria-label", title);
      launcher.focus();
    }

    launcher.addEventListener("click", function () {
      if (panel.hidden) open();
      else close();
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) close();
    });
    window.addEventListener("message", function (event) {
      if (event.origin !== base.origin || !event.data || !frame || event.source !== frame.contentWindow) return;
      if (event.data.type === "shop-chat:close") close();
      if (event.data.type === "shop-chat:ready") sendCustomerToken();
    });

    root.appendChild(style);
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);
    if (data.open === "true") open();
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
