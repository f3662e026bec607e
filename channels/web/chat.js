/*
 * Web chat of the shop assistant: text, quick replies, photos (picker, drag and drop, paste) and voice notes
 * (MediaRecorder, Opus in WebM/OGG). Talks to the multimodal REST channel with multipart/form-data.
 * Plain JavaScript, no build step, no external resources.
 *
 * The conversation id comes from the server (POST .../session: a signed "web:<random>.<signature>", kept in
 * localStorage); when the server no longer knows it (403 unknown_sender, e.g. after a restart without
 * SENDER_ID_SECRET) the page asks for a new one and sends the message again. Embedded by widget.js, the page
 * may receive the shop's customer token from the embedding page by postMessage (never in a URL) and sends it
 * with each message in the X-Customer-Token header.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var ENDPOINT = new URL(
    (script && script.getAttribute("data-endpoint")) || "webhook",
    (script && script.src) || window.location.href
  ).href;
  var SESSION_ENDPOINT = new URL(
    (script && script.getAttribute("data-session")) || "session",
    (script && script.src) || window.location.href
  ).href;
  var SENDER_KEY = "shopChat.senderId";
  var SENDER_RE = /^web:[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/;
  var CUSTOMER_TOKEN_RE = /^[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*$/; // a JWT, checked by the server
  var TOKEN_WAIT_MS = 1500; // how long an embedded page waits for the widget's answer before the first send
  var MAX_ATTACHMENTS = 10;
  var IMAGE_MAX_BYTES = 10 * 1024 * 1024;
  var AUDIO_MAX_BYTES = 20 * 1024 * 1024;
  var MAX_RECORDING_S = 120;
  var IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];
  var RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
  var WELCOME =
    "Hi! I'm the shop's assistant. Ask me about a product, a price or your order. " +
    "You can also send a photo of a product or a voice note.";
  var NO_ANSWER = "I didn't get an answer to that — could you try again, or put it another way?";
  var OFFLINE =
    "I can't reach the shop assistant right now — please check your connection and try again.";

  var $ = function (id) { return document.getElementById(id); };
  var transcript, form, input, fileInput, tray, notice, recorderPanel, recorderTime, recordButton, dropZone;

  var pending = []; // attachments waiting in the tray: {file, kind, url}
  var queue = Promise.resolve(); // messages are sent one after the other
  var customerToken = null; // the shop's token for a logged-in customer, from the embedding page
  var tokenReady = Promise.resolve(); // settles once an embedded page has heard from the widget
  var sender = null;
  var noticeTimer = null;
  var recording = null; // {recorder, stream, chunks, started, timer, cancelled, mime}

  // ---- helpers ------------------------------------------------------------------------------------
  function storedSender() {
    var id = null;
    try { id = window.localStorage.getItem(SENDER_KEY); } catch (e) { /* storage blocked */ }
    return id && SENDER_RE.test(id) ? id : null;
  }

  function newSender() {
    // A conversation id issued and signed by the server; kept so the conversation survives a reload.
    return window.fetch(SESSION_ENDPOINT, {
      method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok || !data || typeof data.sender !== "string" || !SENDER_RE.test(data.sender)) {
          var error = new Error("no conversation id");
          error.data = data;
          error.status = response.status;
          throw error;
        }
        sender = data.sender;
        try { window.localStorage.setItem(SENDER_KEY, sender); } catch (e) { /* keep it for this page only */ }
        return sender;
      });
    });
  }

  function ensureSender() {
    if (sender) return Promise.resolve(sender);
    return newSender();
  }

  function listenForCustomerToken() {
    // Only the page that embeds this one (the widget) may hand over a customer token, by postMessage.
    if (window.parent === window) return;
    var settle;
    tokenReady = new Promise(function (resolve) { settle = resolve; });
    window.setTimeout(settle, TOKEN_WAIT_MS);
    window.addEventListener("message", function (event) {
      if (event.source !== window.parent || !event.data || event.data.type !== "shop-chat:customer-token") return;
      var value = event.data.token;
      customerToken = typeof value === "string" && value.length <= 4096 && CUSTOMER_TOKEN_RE.test(value)
        ? value : null;
      settle();
    });
    window.parent.postMessage({ type: "shop-chat:ready" }, "*"); // carries nothing secret
  }

  function safeUrl(value) {
    if (typeof value !== "string" || !value) return null;
    if (/^data:image\/(png|jpeg|gif|webp);base64,/i.test(value)) return value;
    try {
      var url = new URL(value, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function scrollDown() {
    transcript.scrollTop = transcript.scrollHeight;
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
    window.clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(function () { notice.hidden = true; }, 7000);
  }

  function kindOf(file) {
    var type = (file.type || "").toLowerCase();
    if (IMAGE_TYPES.indexOf(type) >= 0) return "image";
    if (type.indexOf("audio/") === 0 || type === "video/webm" || type === "video/ogg") return "audio";
    if (!type) {
      if (/\.(jpe?g|png|webp|gif)$/i.test(file.name)) return "image";
      if (/\.(ogg|oga|opus|webm|mp3|m4a|wav|flac|aac|3gp)$/i.test(file.name)) return "audio";
    }
    return null;
  }

  function formatSeconds(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  // ---- transcript ---------------------------------------------------------------------------------
  function addMessage(role) {
    var item = el("li", "msg msg--" + role);
    transcript.appendChild(item);
    return item;
  }

  function addMedia(item, attachments) {
    if (!attachments.length) return;
    var media = el("div", "msg__media");
    attachments.forEach(function (a) {
      if (a.kind === "image") {
        var img = el("img", "msg__image");
        img.src = a.url;
        img.alt = "Photo you sent: " + a.file.name;
        media.appendChild(img);
      } else {
        var audio = el("audio", "msg__audio");
        audio.controls = true;
        audio.preload = "metadata";
        audio.src = a.url;
        audio.setAttribute("aria-label", "Voice note you sent");
        media.appendChild(audio);
      }
    });
    item.appendChild(media);
  }

  function renderUser(text, attachments) {
    var item = addMessage("user");
    item.appendChild(el("span", "visually-hidden", "You said:"));
    if (text) item.appendChild(el("div", "bubble", text));
    addMedia(item, attachments);
    scrollDown();
  }

  function renderSystem(text) {
    var item = addMessage("system");
    item.setAttribute("role", "alert");
    item.appendChild(el("div", "bubble", text));
    scrollDown();
  }

  function renderButtons(item, buttons) {
    var group = el("div", "buttons");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Suggested replies");
    buttons.forEach(function (button) {
      if (!button || (typeof button.title !== "string" && typeof button.payload !== "string")) return;
      var title = button.title || button.payload;
      var payload = typeof button.payload === "string" && button.payload ? button.payload : title;
      var node = el("button", "quick-reply", title);
      node.type = "button";
      node.addEventListener("click", function () {
        Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
        node.setAttribute("aria-pressed", "true");
        enqueue(payload, [], title);
      });
      group.appendChild(node);
    });
    item.appendChild(group);
  }

  function renderBot(message) {
    if (!message || typeof message !== "object") return;
    var item = addMessage("bot");
    item.appendChild(el("span", "visually-hidden", "Assistant:"));
    var custom = message.custom && typeof message.custom === "object" ? message.custom : null;
    var text = typeof message.text === "string" ? message.text : custom && typeof custom.text === "string" ? custom.text : "";
    if (text) item.appendChild(el("div", "bubble", text));
    var imageUrl = safeUrl(message.image || (custom && custom.image));
    if (imageUrl) {
      var img = el("img", "msg__image");
      img.src = imageUrl;
      img.alt = "Image from the assistant";
      img.loading = "lazy";
      img.addEventListener("load", scrollDown);
      var media = el("div", "msg__media");
      media.appendChild(img);
      item.appendChild(media);
    }
    var attachmentUrl = safeUrl(typeof message.attachment === "string" ? message.attachment : null);
    if (attachmentUrl) {
      var link = el("a", "msg__link", "Open the attachment");
      link.href = attachmentUrl;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      item.appendChild(link);
    }
    var buttons = Array.isArray(message.buttons) ? message.buttons
      : Array.isArray(message.quick_replies) ? message.quick_replies : null;
    if (buttons && buttons.length) renderButtons(item, buttons);
    if (!item.querySelector(".bubble, img, a, button")) item.remove();
    scrollDown();
  }

  function showTyping() {
    var item = addMessage("bot");
    item.classList.add("typing");
    item.setAttribute("aria-label", "The assistant is typing");
    var bubble = el("div", "bubble");
    for (var i = 0; i < 3; i++) bubble.appendChild(el("span", "typing__dot"));
    item.appendChild(bubble);
    scrollDown();
    return item;
  }

  // ---- sending ------------------------------------------------------------------------------------
  function enqueue(text, attachments, shownText) {
    renderUser(shownText !== undefined ? shownText : text, attachments);
    queue = queue.then(function () { return post(text, attachments); });
    return queue;
  }

  function errorMessage(status, data) {
    return data && data.error && typeof data.error.message === "string" ? data.error.message
      : "Sorry, something went wrong (HTTP " + status + ") — please try again.";
  }

  // Each message carries an id; a retry after a dropped connection or a restarting server sends the same id,
  // and the server answers it once (channels/dedupe.py).
  function newMessageId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var RETRY_DELAYS_MS = [1000, 3000];

  function isRetryable(result) {
    var code = result.data && result.data.error && result.data.error.code;
    return result.status === 502 || result.status === 504 || (result.status === 503 && code === "still_handling");
  }

  function later(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function sendWithRetries(text, attachments, messageId, attempt) {
    attempt = attempt || 0;
    function again() {
      return later(RETRY_DELAYS_MS[attempt]).then(function () {
        return sendWithRetries(text, attachments, messageId, attempt + 1);
      });
    }
    return send(text, attachments, messageId).then(function (result) {
      return isRetryable(result) && attempt < RETRY_DELAYS_MS.length ? again() : result;
    }, function (error) {
      if (attempt >= RETRY_DELAYS_MS.length) throw error;
      return again();
    });
  }

  function send(text, attachments, messageId) {
    var body = new FormData();
    body.append("sender", sender);
    if (messageId) body.append("message_id", messageId);
    if (text) body.append("message", text);
    attachments.forEach(function (a) { body.append("files", a.file, a.file.name); });
    var headers = { Accept: "application/json" };
    if (customerToken) headers["X-Customer-Token"] = customerToken;
    return window.fetch(ENDPOINT, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          return { status: response.status, ok: response.ok, data: data };
        });
      });
  }

  function isUnknownSender(result) {
    return result.status === 403 && result.data && result.data.error && result.data.error.code === "unknown_sender";
  }

  function post(text, attachments) {
    var typing = showTyping();
    var messageId = newMessageId();
    return tokenReady
      .then(ensureSender)
      .then(function () { return sendWithRetries(text, attachments, messageId); })
      .then(function (result) {
        if (!isUnknownSender(result)) return result;
        // The server no longer knows this conversation (restarted with a new key): start a new one.
        sender = null;
        return newSender().then(function () { return sendWithRetries(text, attachments, messageId); });
      })
      .then(function (result) {
        typing.remove();
        if (!result.ok) {
          renderSystem(errorMessage(result.status, result.data));
          return;
        }
        var replies = Array.isArray(result.data) ? result.data : [];
        if (!replies.length) renderSystem(NO_ANSWER);
        replies.forEach(renderBot);
      })
      .catch(function (error) {
        typing.remove();
        renderSystem(error && error.status ? errorMessage(error.status, error.data) : OFFLINE);
      });
  }

  function submit() {
    if (recording) return;
    var text = input.value.trim();
    if (!text && !pending.length) {
      input.focus();
      return;
    }
    var attachments = pending.slice();
    pending = [];
    renderTray();
    input.value = "";
    autoGrow();
    enqueue(text, attachments);
    input.focus();
  }

  // ---- attachments --------------------------------------------------------------------------------
  function addFiles(files) {
    Array.prototype.forEach.call(files || [], function (file) {
      var kind = kindOf(file);
      if (!kind) {
        showNotice("I can read photos (JPEG, PNG, WebP, GIF) and voice notes — “" + file.name + "” is neither.");
        return;
      }
      var limit = kind === "image" ? IMAGE_MAX_BYTES : AUDIO_MAX_BYTES;
      if (file.size > limit) {
        showNotice("“" + file.name + "” is too big — I can take photos up to 10 MB and voice notes up to 20 MB.");
        return;
      }
      if (pending.length >= MAX_ATTACHMENTS) {
        showNotice("I can look at up to " + MAX_ATTACHMENTS + " attachments in one message.");
        return;
      }
      pending.push({ file: file, kind: kind, url: URL.createObjectURL(file) });
    });
    renderTray();
  }

  function renderTray() {
    tray.textContent = "";
    tray.hidden = pending.length === 0;
    pending.forEach(function (a, index) {
      var item = el("li", "tray__item");
      if (a.kind === "image") {
        var img = el("img", "tray__thumb");
        img.src = a.url;
        img.alt = "";
        item.appendChild(img);
      } else {
        item.appendChild(el("span", "tray__name", "🎤 " + a.file.name));
      }
      if (a.kind === "image") item.appendChild(el("span", "tray__name", a.file.name));
      var remove = el("button", "tray__remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + a.file.name);
      remove.addEventListener("click", function () {
        pending.splice(index, 1);
        renderTray();
        input.focus();
      });
      item.appendChild(remove);
      tray.appendChild(item);
    });
  }

  // ---- voice notes --------------------------------------------------------------------------------
  function pickRecordingType() {
    if (!window.MediaRecorder || typeof MediaRecorder.isTypeSupported !== "function") return "";
    for (var i = 0; i < RECORDING_TYPES.length; i++) {
      if (MediaRecorder.isTypeSupported(RECORDING_TYPES[i])) return RECORDING_TYPES[i];
    }
    return "";
  }

  function extensionFor(mime) {
    if (mime.indexOf("ogg") >= 0) return ".ogg";
    if (mime.indexOf("mp4") >= 0) return ".m4a";
    return ".webm";
  }

  function setRecordingUi(on) {
    form.classList.toggle("is-recording", on);
    recorderPanel.hidden = !on;
    recordButton.setAttribute("aria-label", on ? "Stop recording and send" : "Record a voice note");
    recordButton.setAttribute("aria-pressed", on ? "true" : "false");
    input.disabled = on;
    $("send-button").disabled = on;
    recorderTime.textContent = "0:00";
  }

  function startRecording() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      showNotice("This browser can't record voice notes — you can attach an audio file instead.");
      return;
    }
    navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } })
      .then(function (stream) {
        var mime = pickRecordingType();
        var recorder = new MediaRecorder(stream, mime ? { mimeType: mime, audioBitsPerSecond: 48000 } : undefined);
        recording = { recorder: recorder, stream: stream, chunks: [], started: Date.now(), cancelled: false, mime: mime };
        var state = recording;
        recorder.addEventListener("dataavailable", function (event) {
          if (event.data && event.data.size) state.chunks.push(event.data);
        });
        recorder.addEventListener("stop", function () { finishRecording(state); });
        recorder.start(250);
        setRecordingUi(true);
        state.timer = window.setInterval(function () {
          var seconds = (Date.now() - state.started) / 1000;
          recorderTime.textContent = formatSeconds(seconds);
          if (seconds >= MAX_RECORDING_S) stopRecording(false);
        }, 250);
        $("record-stop").focus();
      })
      .catch(function (error) {
        showNotice(error && error.name === "NotAllowedError"
          ? "I need permission to use your microphone to record a voice note."
          : "I couldn't start the microphone — you can attach an audio file instead.");
      });
  }

  function stopRecording(cancel) {
    if (!recording) return;
    recording.cancelled = cancel;
    window.clearInterval(recording.timer);
    if (recording.recorder.state !== "inactive") recording.recorder.stop();
    else finishRecording(recording);
  }

  function finishRecording(state) {
    state.stream.getTracks().forEach(function (track) { track.stop(); });
    if (recording === state) recording = null;
    setRecordingUi(false);
    input.focus();
    if (state.cancelled || state.sent) return;
    state.sent = true;
    var type = (state.recorder.mimeType || state.mime || "audio/webm").split(";")[0];
    var blob = new Blob(state.chunks, { type: type });
    if (!blob.size) {
      showNotice("That recording came out empty — please try again.");
      return;
    }
    var stamp = new Date().toISOString().replace(/[:.]/g, "-");
    var file = new File([blob], "voice-note-" + stamp + extensionFor(type), { type: type });
    var text = input.value.trim();
    input.value = "";
    autoGrow();
    enqueue(text, [{ file: file, kind: "audio", url: URL.createObjectURL(blob) }]);
  }

  // ---- wiring -------------------------------------------------------------------------------------
  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  function hasFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  function init() {
    transcript = $("transcript");
    form = $("composer");
    input = $("message-input");
    fileInput = $("file-input");
    tray = $("tray");
    notice = $("notice");
    recorderPanel = $("recorder");
    recorderTime = $("recorder-time");
    recordButton = $("record-button");
    dropZone = $("drop-zone");
    sender = storedSender();
    listenForCustomerToken();

    if (/(?:^|[?&])embed=1(?:&|$)/.test(window.location.search)) {
      document.documentElement.classList.add("embedded");
      var close = $("close-button");
      close.hidden = false;
      close.addEventListener("click", function () {
        window.parent.postMessage({ type: "shop-chat:close" }, "*");
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    input.addEventListener("input", autoGrow);
    fileInput.addEventListener("change", function () {
      addFiles(fileInput.files);
      fileInput.value = "";
      input.focus();
    });
    $("attach-button").addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        fileInput.click();
      }
    });
    fileInput.tabIndex = -1; // the visible label is the keyboard stop
    $("attach-button").tabIndex = 0;
    $("attach-button").setAttribute("role", "button");

    recordButton.addEventListener("click", function () {
      if (recording) stopRecording(false);
      else startRecording();
    });
    $("record-stop").addEventListener("click", function () { stopRecording(false); });
    $("record-cancel").addEventListener("click", function () { stopRecording(true); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && recording) stopRecording(true);
    });
    if (!window.MediaRecorder || !navigator.mediaDevices) recordButton.hidden = true;

    document.addEventListener("paste", function (event) {
      var items = (event.clipboardData && event.clipboardData.items) || [];
      var files = [];
      Array.prototype.forEach.call(items, function (item) {
        if (item.kind === "file") {
          var file = item.getAsFile();
          if (file) files.push(file);
        }
      });
      if (files.length) {
        event.preventDefault();
        addFiles(files);
      }
    });

    var dragDepth = 0;
    document.addEventListener("dragenter", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth += 1;
      dropZone.hidden = false;
    });
    document.addEventListener("dragover", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("dragleave", function () {
      dragDepth = Math.max(0, dragDepth - 1);
      if (!dragDepth) dropZone.hidden = true;
    });
    document.addEventListener("drop", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      dropZone.hidden = true;
      addFiles(event.dataTransfer.files);
    });

    renderBot({ text: WELCOME });
    input.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
