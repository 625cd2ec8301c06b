/*
 * vPDQ frames of a video, computed in the person's own browser.
 *
 * The submission page hashes the video on the device so that only its frames
 * (a PDQ hash, a quality and a time per sampled frame) are ever sent: this file
 * never makes a request, never uploads the video and keeps no pixels. The video
 * is decoded by the browser's own media stack (a <video> element that is muted,
 * plays inline and is never attached to the page) and each sampled frame is
 * drawn on a canvas and hashed with hashhubPDQ.fromImageData (pdq.js, loaded
 * first).
 *
 * Which frames: the node hashes with Meta's vpdq (one frame a second, the
 * node's SECONDS_PER_FRAME), which decodes every frame and keeps frame n when
 * n % trunc(frameRate) == 0, at the time n / frameRate (its frame number over
 * the stream's average frame rate, in float32). At a whole frame rate (24, 25,
 * 30, 60 fps) those are the frames shown at 0 s, 1 s, 2 s…; at NTSC's 29.97 fps
 * they are frames 0, 29, 58… at 0 s, 0.968 s, 1.935 s…, which drift a second
 * from whole seconds every half minute. So this file takes vpdq's instants, and
 * needs the frame rate, which a browser does not tell a page: it is measured
 * from the frames' own timestamps (requestVideoFrameCallback's mediaTime) by a
 * few seeks, and snapped to a whole rate or a whole rate × 1000/1001 when within
 * RATE_SNAP; options.frameRate gives it instead. Without frame callbacks the
 * instants are whole seconds. Frames are hashed at the video's own size, as
 * vpdq does (it does not downscale unless asked), and as stored: a phone held
 * upright records frames on their side with a display matrix saying how to
 * turn them (MP4 and QuickTime "tkhd"), which the browser applies and vpdq does
 * not, so the matrix is read from the file and the frame turned back.
 *
 * Each instant is reached by setting currentTime and waiting for "seeked" and,
 * where the browser has requestVideoFrameCallback, for the frame itself to be
 * presented; a seek that lands on the frame already hashed (past the last
 * frame) is not hashed twice. A seek that takes longer than
 * options.seekTimeoutMs rejects. The rate is measured and the instants found
 * for a video of constant frame rate; a variable-rate recording's frames are
 * taken at instants a little off vpdq's.
 *
 * Caps, as the node's: a video of at most MAX_SECONDS (3 hours), at most
 * MAX_FRAMES frames (36,000) and MAX_PIXELS (3840 × 2160) a frame;
 * options.maxFrames lowers the frame cap (the hub's public page takes an hour),
 * checked before any frame is hashed, so a long video is refused at once. A file the
 * browser cannot decode rejects with an Error saying so.
 *
 * Known limits, where the node and the browser see different pictures: the
 * browser shows a video of non-square pixels stretched by its pixel aspect
 * ratio, where vpdq hashes the stored frames as they are (the picture differs);
 * the browser converts colours by the stream's colour tags, where vpdq's
 * converter assumes BT.601 (a few bits).
 *
 * Interface (a plain <script src> after pdq.js):
 *   await hashhubVPDQ.fromFile(blob, {frameRate, seekTimeoutMs, maxFrames, onProgress, signal}?)
 *       -> {frames: [{millis, pdq, quality}], duration, width, height, frameRate}
 *   await hashhubVPDQ.encode(frames) -> {bytes, sha256}
 * encode gives PROTOCOL.md §6.3's encoding of the frames (37 bytes a frame: the
 * PDQ hash, the quality, the time in milliseconds big-endian) and its SHA-256
 * (Web Crypto) as 64 hex digits: a vpdq record's hash.
 */
(function (root) {
  "use strict";

  /** One frame hashed a second, as the node's vpdq does. */
  const SECONDS_PER_FRAME = 1;
  /** Longest video hashed (the node's VideoLimits.max_seconds). */
  const MAX_SECONDS = 3 * 60 * 60;
  /** Most frames of one video (PROTOCOL.md §6.3). */
  const MAX_FRAMES = 36000;
  /** Most pixels in a frame (the node's VideoLimits.max_pixels, 4K UHD). */
  const MAX_PIXELS = 3840 * 2160;
  /** Default wait for one seek (and for the file to open). */
  const SEEK_TIMEOUT_MS = 20000;
  /** How far past an instant to seek, so a timestamp rounded down still lands on its frame. */
  const SEEK_NUDGE_SECONDS = 0.001;
  /**
   * How long after "seeked" to wait for the frame to be presented (none comes
   * when the seek lands on the frame already shown): when sampling, and when
   * measuring the frame rate (many of whose seeks land on the frame shown).
   */
  const SAMPLE_GRACE_MS = 1000;
  const PROBE_GRACE_MS = 500;
  const PDQ_BYTES = 32;
  const FRAME_BYTES = PDQ_BYTES + 1 + 4;
  const MAX_MILLIS = 2 ** 32 - 1;

  /** The instants vpdq hashes: [{seconds, millis}], in ascending time, before `duration`. */
  function sampleInstants(duration, frameRate) {
    const instants = [];
    if (frameRate === undefined) {
      for (let k = 0; k === 0 || k * SECONDS_PER_FRAME < duration; k++) {
        instants.push({ seconds: k * SECONDS_PER_FRAME, millis: Math.round(k * SECONDS_PER_FRAME * 1000) });
        if (instants.length > MAX_FRAMES) break;
      }
      return instants;
    }
    const step = Math.max(1, Math.trunc(SECONDS_PER_FRAME * frameRate));
    for (let n = 0; n === 0 || n / frameRate < duration; n += step) {
      const seconds = Math.fround(Math.fround(n) / Math.fround(frameRate));
      instants.push({ seconds: n / frameRate, millis: Math.round(seconds * 1000) });
      if (instants.length > MAX_FRAMES) break;
    }
    return instants;
  }

  function checkedOptions(options) {
    const {
      frameRate, seekTimeoutMs = SEEK_TIMEOUT_MS, maxFrames = MAX_FRAMES, onProgress, signal,
    } = options || {};
    if (frameRate !== undefined && !(Number.isFinite(frameRate) && frameRate > 0)) {
      throw new TypeError("hashhubVPDQ: frameRate is a positive number of frames a second");
    }
    if (!(Number.isFinite(seekTimeoutMs) && seekTimeoutMs > 0)) {
      throw new TypeError("hashhubVPDQ: seekTimeoutMs is a positive number of milliseconds");
    }
    if (!(Number.isInteger(maxFrames) && maxFrames >= 1 && maxFrames <= MAX_FRAMES)) {
      throw new TypeError("hashhubVPDQ: maxFrames is a whole number from 1 to " + MAX_FRAMES);
    }
    if (onProgress !== undefined && typeof onProgress !== "function") {
      throw new TypeError("hashhubVPDQ: onProgress is a function");
    }
    return { frameRate, seekTimeoutMs, maxFrames, onProgress, signal };
  }

  function mediaError(video) {
    const error = video.error;
    const said = error && error.message ? error.message : "no decoder for it";
    return new Error("This file is not a video the browser can play (" + said + ")");
  }

  /**
   * Resolve when `video` fires one of `events`, reject on its "error" or after
   * `timeoutMs`; `start` is run after the listeners are in place.
   */
  function waitFor(video, events, timeoutMs, what, start) {
    return new Promise((resolve, reject) => {
      const done = (settle, value) => {
        clearTimeout(timer);
        for (const name of events) video.removeEventListener(name, onEvent);
        video.removeEventListener("error", onError);
        settle(value);
      };
      const onEvent = (event) => done(resolve, event);
      const onError = () => done(reject, mediaError(video));
      const timer = setTimeout(
        () => done(reject, new Error("The video took longer than " + timeoutMs / 1000 + " s " + what)),
        timeoutMs,
      );
      for (const name of events) video.addEventListener(name, onEvent);
      video.addEventListener("error", onError);
      if (start) start();
    });
  }

  /** A muted, inline, detached <video> that has decoded its first frame. */
  async function openVideo(url, timeoutMs) {
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    video.preload = "auto";
    await waitFor(video, ["loadeddata"], timeoutMs, "to open", () => {
      video.src = url;
    });
    if (!(video.videoWidth > 0 && video.videoHeight > 0)) {
      throw new Error("This file has no picture to hash (no video track the browser can show)");
    }
    return video;
  }

  /**
   * The video's duration in seconds. A recording without one in its header (as
   * browsers' own recordings often are) reports Infinity until the browser has
   * seen its end, so seek far past it once and read the duration then.
   */
  async function durationOf(video, timeoutMs) {
    if (Number.isFinite(video.duration)) return video.duration;
    await waitFor(video, ["seeked"], timeoutMs, "to find its end", () => {
      video.currentTime = 1e101;
    });
    if (!Number.isFinite(video.duration)) {
      throw new Error("The browser cannot tell how long this video is");
    }
    return video.duration;
  }

  /**
   * A seeker over `video`: `seek(seconds, graceMs)` sets currentTime, waits for
   * "seeked" and, where the browser has requestVideoFrameCallback, for the frame
   * there to be presented, and answers that frame's mediaTime (its timestamp),
   * or null without frame callbacks. A seek that lands on the frame already
   * shown presents nothing new: when no callback comes within `graceMs`, the
   * frame shown before is answered. A browser whose callback never comes for a
   * detached video is noticed on the first seek and not waited for again.
   */
  function seekerOf(video, timeoutMs) {
    const state = { use: typeof video.requestVideoFrameCallback === "function", confirmed: false, shown: null };
    async function seek(seconds, graceMs) {
      let handle = null;
      const presented = state.use
        ? new Promise((resolve) => {
            handle = video.requestVideoFrameCallback((now, metadata) => {
              handle = null;
              resolve(metadata.mediaTime);
            });
          })
        : null;
      let timer;
      try {
        await waitFor(video, ["seeked"], timeoutMs, "to seek to " + seconds.toFixed(3) + " s", () => {
          video.currentTime = seconds;
        });
        if (presented === null) return null;
        const late = new Promise((resolve) => {
          timer = setTimeout(() => resolve(undefined), graceMs);
        });
        const mediaTime = await Promise.race([presented, late]);
        if (mediaTime !== undefined) {
          state.confirmed = true;
          state.shown = mediaTime;
        } else if (!state.confirmed) {
          state.use = false;
        }
        return state.use ? state.shown : null;
      } finally {
        clearTimeout(timer);
        if (handle !== null) video.cancelVideoFrameCallback(handle);
      }
    }
    return { seek };
  }

  /**
   * A frame rate at most this far from a whole one (or from a whole one × 1000/1001,
   * as NTSC's 29.97) is taken to be it: vpdq's step is its whole part, so 30 fps
   * measured as 29.999 must not step by 29.
   */
  const RATE_SNAP = 0.01;

  function snappedRate(rate) {
    const whole = Math.round(rate);
    if (whole > 0 && Math.abs(rate - whole) <= RATE_SNAP) return whole;
    const ntsc = (Math.round((rate * 1001) / 1000) * 1000) / 1001;
    if (ntsc > 0 && Math.abs(rate - ntsc) <= RATE_SNAP) return ntsc;
    return rate;
  }

  /**
   * The video's frame rate, measured from its frames' timestamps (a browser does
   * not tell a page the rate): find the second frame's timestamp by seeking, take
   * the rate from the first interval, then refine it over spans four times longer
   * each, counting the frames in a span by the rate so far (containers such as
   * WebM round timestamps to the millisecond, so one interval alone is not enough
   * to tell 29.97 from 30). Undefined without frame callbacks, or for a video
   * with fewer than two frames in its first two seconds.
   */
  async function measuredFrameRate(seeker, duration) {
    const first = await seeker.seek(0, SAMPLE_GRACE_MS);
    if (first === null) return undefined;
    let before = first;
    let after = null;
    let width = 0.02;
    while (after === null && width <= 2 && first + width < duration) {
      const shown = await seeker.seek(first + width, PROBE_GRACE_MS);
      if (shown === null) return undefined;
      if (shown > first) after = first + width;
      else before = first + width;
      width *= 2;
    }
    if (after === null) return undefined;
    let second = await seeker.seek(after, PROBE_GRACE_MS);
    while (after - before > 0.0002) {
      const middle = (before + after) / 2;
      const shown = await seeker.seek(middle, PROBE_GRACE_MS);
      if (shown === null) return undefined;
      if (shown > first) {
        after = middle;
        second = shown;
      } else {
        before = middle;
      }
    }
    let rate = 1 / (second - first);
    for (let frames = 8; ; frames *= 4) {
      const last = frames / rate >= duration - first - 2 / rate;
      const span = last ? duration - first - 1.5 / rate : (frames + 0.5) / rate;
      if (span <= 0) break;
      const shown = await seeker.seek(first + span, PROBE_GRACE_MS);
      if (shown === null) return undefined;
      const count = Math.round((shown - first) * rate);
      if (count > 0) rate = count / (shown - first);
      if (last) break;
    }
    return snappedRate(rate);
  }

  /** Largest MP4 "moov" box read for the display matrix (a 3-hour film's is a few MB). */
  const MAX_MOVIE_HEADER_BYTES = 64 * 1024 * 1024;
  /** Top-level MP4 boxes looked through for "moov" at most. */
  const MAX_TOP_LEVEL_BOXES = 1024;

  async function bytesOf(file, start, end) {
    return new DataView(await file.slice(start, end).arrayBuffer());
  }

  function boxType(view, at) {
    let type = "";
    for (let i = 0; i < 4; i++) {
      const code = view.getUint8(at + i);
      if (code < 0x20 || code > 0x7e) return null;
      type += String.fromCharCode(code);
    }
    return type;
  }

  /** The MP4 boxes of view[start, end): [{type, start (of the payload), end}]. */
  function boxesIn(view, start, end) {
    const found = [];
    let at = start;
    while (at + 8 <= end) {
      let size = view.getUint32(at);
      const type = boxType(view, at + 4);
      let header = 8;
      if (size === 1 && at + 16 <= end) {
        size = Number(view.getBigUint64(at + 8));
        header = 16;
      } else if (size === 0) {
        size = end - at;
      }
      if (type === null || size < header || at + size > end) break;
      found.push({ type, start: at + header, end: at + size });
      at += size;
    }
    return found;
  }

  /** The payload of the file's top-level "moov" box (MP4, QuickTime, 3GP), or null. */
  async function movieHeader(file) {
    let at = 0;
    for (let n = 0; n < MAX_TOP_LEVEL_BOXES && at + 8 <= file.size; n++) {
      const head = await bytesOf(file, at, Math.min(file.size, at + 16));
      let size = head.getUint32(0);
      const type = boxType(head, 4);
      let header = 8;
      if (size === 1 && head.byteLength >= 16) {
        size = Number(head.getBigUint64(8));
        header = 16;
      } else if (size === 0) {
        size = file.size - at;
      }
      if (type === null || size < header) return null;
      if (type === "moov") {
        if (size > MAX_MOVIE_HEADER_BYTES || at + size > file.size) return null;
        return bytesOf(file, at + header, at + size);
      }
      at += size;
    }
    return null;
  }

  /**
   * How the browser turns the stored frames to show them: the first video track's
   * display matrix (MP4 "tkhd"), as {a, b, c, d} of ±1 and 0 when it is a quarter
   * turn or a flip, null for none or for anything else (browsers show only those).
   * vpdq hashes the frames as stored, so they are turned back before hashing.
   */
  async function storedTurn(file) {
    const movie = await movieHeader(file);
    if (movie === null) return null;
    for (const track of boxesIn(movie, 0, movie.byteLength).filter((box) => box.type === "trak")) {
      const parts = boxesIn(movie, track.start, track.end);
      const header = parts.find((box) => box.type === "tkhd");
      const media = parts.find((box) => box.type === "mdia");
      const handler = media && boxesIn(movie, media.start, media.end).find((box) => box.type === "hdlr");
      if (!header || !handler || handler.end - handler.start < 12) continue;
      if (boxType(movie, handler.start + 8) !== "vide") continue;
      const matrix = header.start + 4 + (movie.getUint8(header.start) === 1 ? 32 : 20) + 16;
      if (matrix + 20 > header.end) return null;
      const [a, b, c, d] = [0, 4, 12, 16].map((offset) => Math.round(movie.getInt32(matrix + offset) / 65536));
      const unit = (x) => x === 1 || x === -1;
      const turn = (b === 0 && c === 0 && unit(a) && unit(d)) || (a === 0 && d === 0 && unit(b) && unit(c));
      return turn && !(a === 1 && d === 1) ? { a, b, c, d } : null;
    }
    return null;
  }

  /**
   * A canvas of the stored frame size that draws the shown frame back into the
   * stored orientation: x' = a x + c y, y' = b x + d y takes a stored pixel to
   * where it is shown, and for these matrices the inverse is the transpose.
   */
  function drawingContext(shownWidth, shownHeight, turn) {
    const quarter = turn !== null && turn.a === 0;
    const width = quarter ? shownHeight : shownWidth;
    const height = quarter ? shownWidth : shownHeight;
    const canvas = Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
    if (context === null) throw new Error("hashhubVPDQ: this browser gives no 2D canvas to read pixels");
    context.imageSmoothingEnabled = false;
    if (turn !== null) {
      const { a, b, c, d } = turn;
      const corners = [
        [0, 0],
        [shownWidth, 0],
        [0, shownHeight],
        [shownWidth, shownHeight],
      ];
      const xs = corners.map(([x, y]) => a * x + b * y);
      const ys = corners.map(([x, y]) => c * x + d * y);
      context.setTransform(a, c, b, d, -Math.min(...xs), -Math.min(...ys));
    }
    return { context, width, height };
  }

  function checkAborted(signal) {
    if (signal && signal.aborted) {
      throw signal.reason instanceof Error ? signal.reason : new Error("Hashing the video was stopped");
    }
  }

  /**
   * Decode a video in the browser and return its vPDQ frames, its duration (s),
   * its frame size as shown and the frame rate its frames were sampled by (null
   * when it could not be measured: whole seconds were sampled). Rejects with an Error when the browser cannot
   * decode it, when it breaks a cap, or when a seek times out.
   * @param {Blob} file
   * @param {{frameRate?: number, seekTimeoutMs?: number, maxFrames?: number,
   *          onProgress?: (done: number, total: number) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<{frames: {millis: number, pdq: string, quality: number}[],
   *                    duration: number, width: number, height: number, frameRate: number|null}>}
   */
  async function fromFile(file, options) {
    if (typeof Blob === "undefined" || !(file instanceof Blob)) {
      throw new TypeError("hashhubVPDQ.fromFile needs a File or Blob");
    }
    if (typeof root.hashhubPDQ === "undefined") {
      throw new Error("hashhubVPDQ needs pdq.js loaded first");
    }
    const { frameRate, seekTimeoutMs, maxFrames, onProgress, signal } = checkedOptions(options);
    const url = URL.createObjectURL(file);
    let video = null;
    try {
      video = await openVideo(url, seekTimeoutMs);
      const duration = await durationOf(video, seekTimeoutMs);
      if (duration > MAX_SECONDS) {
        throw new Error(
          "This video is " + Math.round(duration) + " s long, longer than the limit of " + MAX_SECONDS + " s",
        );
      }
      const width = video.videoWidth;
      const height = video.videoHeight;
      if (width * height > MAX_PIXELS) {
        throw new Error(
          "This video's frames are " + width + " × " + height + " pixels, more than the limit of " + MAX_PIXELS,
        );
      }
      const seeker = seekerOf(video, seekTimeoutMs);
      const rate = frameRate !== undefined ? frameRate : await measuredFrameRate(seeker, duration);
      const instants = sampleInstants(duration, rate);
      if (instants.length > maxFrames) {
        throw new Error(
          "This video has " + instants.length + " frames to hash, more than the limit of " + maxFrames,
        );
      }
      const stored = drawingContext(width, height, await storedTurn(file));
      const frames = [];
      let hashed = null;
      for (let i = 0; i < instants.length; i++) {
        checkAborted(signal);
        const { seconds, millis } = instants[i];
        const target = Math.min(seconds + SEEK_NUDGE_SECONDS, Math.max(0, duration - SEEK_NUDGE_SECONDS));
        const shown = await seeker.seek(i === 0 ? 0 : target, SAMPLE_GRACE_MS);
        if (shown !== null && shown === hashed) continue; // the same frame: past the last one
        hashed = shown;
        stored.context.drawImage(video, 0, 0, width, height);
        const pixels = stored.context.getImageData(0, 0, stored.width, stored.height);
        const { hash, quality } = root.hashhubPDQ.fromImageData(pixels);
        frames.push({ millis, pdq: hash, quality });
        if (onProgress) onProgress(i + 1, instants.length);
      }
      return { frames, duration, width, height, frameRate: rate === undefined ? null : rate };
    } finally {
      if (video !== null) {
        video.removeAttribute("src");
        video.load();
      }
      URL.revokeObjectURL(url);
    }
  }

  function frameBytes(frame, index, previousMillis) {
    const where = "hashhubVPDQ.encode: frame " + index;
    if (frame === null || typeof frame !== "object") throw new TypeError(where + " is not a frame");
    const { millis, pdq, quality } = frame;
    if (typeof pdq !== "string" || !/^[0-9a-f]{64}$/.test(pdq)) {
      throw new TypeError(where + ": pdq is 64 lowercase hex digits");
    }
    if (!Number.isInteger(quality) || quality < 0 || quality > 100) {
      throw new TypeError(where + ": quality is an integer 0 to 100");
    }
    if (!Number.isInteger(millis) || millis < 0 || millis > MAX_MILLIS) {
      throw new TypeError(where + ": millis is an integer 0 to " + MAX_MILLIS);
    }
    if (millis <= previousMillis) {
      throw new TypeError(where + " at " + millis + " ms is not after the one before (" + previousMillis + " ms)");
    }
    return frame;
  }

  /**
   * The frames' one encoding (PROTOCOL.md §6.3) and its SHA-256: what a vpdq
   * record's hash is. Refuses frames that encoding cannot hold, as the node does.
   * @param {{millis: number, pdq: string, quality: number}[]} frames
   * @returns {Promise<{bytes: Uint8Array, sha256: string}>}
   */
  async function encode(frames) {
    if (!Array.isArray(frames) || frames.length < 1) {
      throw new TypeError("hashhubVPDQ.encode needs an array of at least one frame");
    }
    if (frames.length > MAX_FRAMES) {
      throw new RangeError("hashhubVPDQ.encode: " + frames.length + " frames, above the cap of " + MAX_FRAMES);
    }
    const bytes = new Uint8Array(frames.length * FRAME_BYTES);
    const view = new DataView(bytes.buffer);
    let previous = -1;
    frames.forEach((frame, index) => {
      const { millis, pdq, quality } = frameBytes(frame, index, previous);
      const at = index * FRAME_BYTES;
      for (let b = 0; b < PDQ_BYTES; b++) bytes[at + b] = parseInt(pdq.slice(2 * b, 2 * b + 2), 16);
      bytes[at + PDQ_BYTES] = quality;
      view.setUint32(at + PDQ_BYTES + 1, millis, false);
      previous = millis;
    });
    const digest = new Uint8Array(await root.crypto.subtle.digest("SHA-256", bytes));
    const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return { bytes, sha256 };
  }

  root.hashhubVPDQ = Object.freeze({
    fromFile,
    encode,
    SECONDS_PER_FRAME,
    MAX_SECONDS,
    MAX_FRAMES,
    MAX_PIXELS,
  });
})(globalThis);
