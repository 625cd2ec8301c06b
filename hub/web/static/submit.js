// The submission page: hash the chosen file on this device, put only the hash in the form.
//
// The file input has no name and sits outside the form, so the browser never sends the
// file; this script reads it locally and fills the form's three hidden fields: type,
// hash, quality. A picture is hashed with static/hashing/pdq.js. A video is hashed
// with static/hashing/vpdq.js: one PDQ hash a second of the video (its frames), and
// the form's hash field carries those frames in their one encoding (PROTOCOL.md §6.3)
// as hex; the preview shows how many frames and their SHA-256, the hash the case
// will have. When the browser cannot work the frames out (no decoder for the video,
// longer than the hub takes, too few detailed frames to ever match, or vpdq.js not
// loaded), the file's MD5 (static/hashing/md5.js) is sent instead and the page says
// which was sent and why.
//
// The choices (one radio per thing submitted, with its first type, its fallback, its
// preview labels and caps as data attributes) are written by the server from its
// registry of hash types; HASHERS says how to call each type's browser hasher.
"use strict";
(() => {
  const HASHERS = {
    pdq: async (blob) => globalThis.hashhubPDQ.fromFile(blob),
    md5: async (blob, chosen, onProgress) => ({
      hash: await globalThis.hashhubMD5.fromFile(blob, onProgress),
      quality: null,
    }),
    vpdq: async (blob, chosen, onProgress, signal) => {
      if (typeof globalThis.hashhubVPDQ === "undefined") {
        throw new Error("this page's video hasher did not load");
      }
      const { frames } = await globalThis.hashhubVPDQ.fromFile(blob, {
        maxFrames: Number(chosen.dataset.maxFrames),
        onProgress,
        signal,
      });
      const floor = Number(chosen.dataset.goodQuality);
      const good = new Set(frames.filter((f) => f.quality >= floor).map((f) => f.pdq));
      if (good.size < Number(chosen.dataset.goodFrames)) {
        throw new Error(`only ${good.size} of its ${frames.length} frames have enough detail to match by`);
      }
      const { bytes, sha256 } = await globalThis.hashhubVPDQ.encode(frames);
      return {
        hash: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
        quality: null,
        frames: frames.length,
        shown: sha256,
      };
    },
  };
  const form = document.getElementById("submission");
  const file = document.getElementById("file");
  const send = document.getElementById("send");
  const progress = document.getElementById("progress");
  const status = document.getElementById("hash-status");
  const fields = {
    type: document.getElementById("hash-type"),
    hash: document.getElementById("hash-value"),
    quality: document.getElementById("hash-quality"),
  };
  const preview = {
    type: document.getElementById("preview-type"),
    hash: document.getElementById("preview-hash"),
    framesTerm: document.getElementById("preview-frames-term"),
    frames: document.getElementById("preview-frames"),
  };
  let run = 0;
  let stopping = null; // stops the video being hashed when another file or choice is made

  function choice() {
    return document.querySelector("input[name=media]:checked")
      || document.querySelector("input[name=media]");
  }

  function media() {
    return choice().value;
  }

  function showFrames(count) {
    if (!preview.frames) return;
    preview.frames.hidden = preview.framesTerm.hidden = count === undefined;
    preview.frames.textContent = count === undefined ? "—" : String(count);
  }

  function clear(message) {
    fields.type.value = fields.hash.value = fields.quality.value = "";
    preview.type.textContent = preview.hash.textContent = "—";
    showFrames(undefined);
    send.disabled = true;
    progress.hidden = true;
    status.textContent = message || "";
  }

  function ready(type, label, result, note) {
    fields.type.value = type;
    fields.hash.value = result.hash;
    fields.quality.value = result.quality === null ? "" : String(result.quality);
    preview.type.textContent = label;
    preview.hash.textContent = result.shown || result.hash;
    showFrames(result.frames);
    progress.hidden = true;
    status.textContent = note;
    send.disabled = false;
  }

  function done(result) {
    if (result.frames !== undefined) {
      return `Done: ${result.frames} frames of the video were hashed on this device. Only their fingerprints will be sent. Check below, then send.`;
    }
    return result.quality === null
      ? "Done. Check below, then send."
      : `Done: quality ${result.quality}. Check below, then send.`;
  }

  async function hashWith(type, chosen, blob, mine, signal) {
    progress.value = 0;
    return HASHERS[type](blob, chosen, (count, total) => {
      if (mine === run) progress.value = total ? count / total : count;
    }, signal);
  }

  async function compute() {
    const mine = ++run;
    if (stopping) stopping.abort();
    stopping = typeof AbortController === "undefined" ? null : new AbortController();
    const signal = stopping ? stopping.signal : undefined;
    const blob = file.files && file.files[0];
    if (!blob) {
      clear("");
      return;
    }
    const chosen = choice();
    const type = chosen.dataset.hashType;
    const fallback = chosen.dataset.fallbackType || "";
    const floor = chosen.dataset.minQuality === "" ? null : Number(chosen.dataset.minQuality);
    clear(chosen.dataset.maxFrames
      ? "Working out the video's frames on your device. A long video takes a while…"
      : "Working out the hash on your device…");
    if (media() !== "image") progress.hidden = false;
    let result;
    try {
      result = await hashWith(type, chosen, blob, mine, signal);
    } catch (error) {
      if (mine !== run) return;
      if (!fallback) {
        clear(media() === "image"
          ? "This file could not be opened as a picture on this device. If it is a video, choose “video” above."
          : "This file could not be read. Nothing was sent.");
        return;
      }
      const why = error && error.message ? error.message : String(error);
      status.textContent = `The video's frames could not be worked out in this browser (${why}). Working out the MD5 of the file instead…`;
      try {
        const digest = await hashWith(fallback, chosen, blob, mine);
        if (mine !== run) return;
        ready(fallback, chosen.dataset.fallbackPreview, digest,
          `The video's frames could not be worked out in this browser (${why}), so the MD5 of the file will be sent instead: it matches exact copies of this file only. Check below, then send.`);
      } catch (second) {
        if (mine !== run) return;
        clear("This file could not be read. Nothing was sent.");
      }
      return;
    }
    if (mine !== run) return;
    if (floor !== null && result.quality < floor) {
      clear(`This picture has too little detail for a reliable hash (quality ${result.quality}, at least ${floor} is needed). Nothing was sent.`);
      return;
    }
    ready(type, chosen.dataset.preview, result, done(result));
  }

  file.addEventListener("change", compute);
  for (const radio of document.querySelectorAll("input[name=media]")) {
    radio.addEventListener("change", compute);
  }
  form.addEventListener("submit", (event) => {
    if (!fields.hash.value) event.preventDefault();
  });
  clear("");
})();
