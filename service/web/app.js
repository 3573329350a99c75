// The demo page: draw or pick an image, send it to POST /v1/predict, show the answer.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file");
const predictButton = document.getElementById("predict");
const statusLine = document.getElementById("status");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen");
const sample = document.getElementById("sample");
const cropBox = document.getElementById("crop-box");

let drawn = false;  // has the canvas any ink?
let lastPoint = null;
let asked = 0;  // requests sent so far
let outlined = 0;  // the request whose crop box may still be outlined on the canvas (0: none)

function clearPad() {
  ctx.fillStyle = "#ffffff";  // an opaque white page: the service sees dark ink on paper
  ctx.fillRect(0, 0, pad.width, pad.height);
  drawn = false;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: (event.clientX - box.left) * (pad.width / box.width),
    y: (event.clientY - box.top) * (pad.height / box.height),
  };
}

function strokeTo(p) {
  ctx.strokeStyle = "#000000";
  ctx.lineWidth = pad.width / 14;  // about the stroke width of an MNIST digit
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(lastPoint.x, lastPoint.y);
  ctx.lineTo(p.x, p.y);
  ctx.stroke();
  lastPoint = p;
  drawn = true;
}

// Pointer events cover mouse, pen and touch alike.
pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  hideCropBox();  // the outline belongs to the picture as it was sent
  lastPoint = point(event);
  strokeTo(lastPoint);
});
pad.addEventListener("pointermove", (event) => {
  if (lastPoint) strokeTo(point(event));
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { lastPoint = null; });
}

// What the model saw: the 28x28 sample, and where in the upload it was cut from.
function hideModelView() {
  seen.hidden = true;
  sample.removeAttribute("src");
  hideCropBox();
}

function hideCropBox() {
  outlined = 0;
  cropBox.hidden = true;
  delete cropBox.dataset.box;
}

function showSample(explanation) {
  if (!explanation) {
    hideModelView();
    return;
  }
  const { left, top, width, height } = explanation.box;
  sample.src = `data:image/png;base64,${explanation.sample_png}`;
  sample.alt = "The 28 by 28 pixel picture the model was given, white ink on black, cut " +
    `from the ${width} by ${height} pixel box at ${left}, ${top} in your picture`;
  seen.hidden = false;
}

// `placement` is how the picture was drawn on the canvas: canvas = offset + upload * scale.
function outlineCrop(box, placement) {
  if (!placement) {
    hideCropBox();
    return;
  }
  const { scale, x, y } = placement;
  const clamp = (v, size) => Math.min(Math.max(v, 0), size);
  const x0 = clamp(x + box.left * scale, pad.width);
  const y0 = clamp(y + box.top * scale, pad.height);
  const x1 = clamp(x + (box.left + box.width) * scale, pad.width);
  const y1 = clamp(y + (box.top + box.height) * scale, pad.height);
  // As shares of the canvas's content box, which sits inside its 1px border.
  const share = (v, size) => `(100% - 2px) * ${v / size}`;
  cropBox.style.left = `calc(1px + ${share(x0, pad.width)})`;
  cropBox.style.top = `calc(1px + ${share(y0, pad.height)})`;
  cropBox.style.width = `calc(${share(x1 - x0, pad.width)})`;
  cropBox.style.height = `calc(${share(y1 - y0, pad.height)})`;
  cropBox.dataset.box = [box.left, box.top, box.width, box.height].join(",");
  cropBox.hidden = false;
}

function showError(message) {
  result.hidden = true;
  hideModelView();
  errorBox.textContent = message;
  errorBox.hidden = false;
  statusLine.textContent = "";
}

function showPrediction(answer, milliseconds) {
  errorBox.hidden = true;
  document.getElementById("digit").textContent = String(answer.digit);
  document.getElementById("confidence").textContent =
    `${(answer.confidence * 100).toFixed(1)}% sure`;
  bars.replaceChildren(...answer.probabilities.map((p, digit) => {
    const item = document.createElement("li");
    item.dataset.digit = String(digit);
    item.dataset.probability = String(p);
    item.classList.toggle("top", digit === answer.digit);
    item.setAttribute("aria-label", `${digit}: ${(p * 100).toFixed(1)}%`);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.height = `${Math.max(p * 100, 0.5)}%`;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = String(digit);
    item.append(bar, label);
    return item;
  }));
  document.getElementById("model").textContent = `${answer.model}, version ${answer.version}`;
  document.getElementById("latency").textContent = `${milliseconds.toFixed(0)} ms`;
  showSample(answer.explanation);
  result.hidden = false;
  statusLine.textContent = `The model reads a ${answer.digit}.`;
}

// Turn any answer of the API into words: its JSON error body says what went wrong.
async function describeFailure(response) {
  try {
    const body = await response.json();
    if (body && body.detail) return `The service refused the image: ${body.detail}`;
  } catch (_) { /* not JSON: fall through */ }
  return `The service answered ${response.status} ${response.statusText}.`;
}

// `placement` resolves to how the picture sits on the canvas (null when it is not shown).
async function predict(blob, name, placement) {
  const form = new FormData();
  form.append("file", blob, name);
  hideCropBox();
  const request = ++asked;
  outlined = request;  // until the canvas changes
  predictButton.disabled = true;
  statusLine.textContent = "Asking the model…";
  const started = performance.now();
  try {
    const response = await fetch("/v1/predict?explain=true", { method: "POST", body: form });
    const milliseconds = performance.now() - started;
    if (!response.ok) {
      showError(await describeFailure(response));
      return;
    }
    const answer = await response.json();
    showPrediction(answer, milliseconds);
    if (answer.explanation) {
      const where = await placement;
      if (outlined === request) outlineCrop(answer.explanation.box, where);
    }
  } catch (error) {
    showError(`Could not reach the service (${error.message}). Is it running?`);
  } finally {
    predictButton.disabled = false;
  }
}

predictButton.addEventListener("click", () => {
  if (!drawn) {
    showError("The drawing area is empty: draw a digit first, or choose an image.");
    return;
  }
  // The canvas is sent pixel for pixel: its box maps onto it as it is.
  pad.toBlob((blob) => predict(blob, "drawing.png", { scale: 1, x: 0, y: 0 }), "image/png");
});

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  fileInput.value = "";
  result.hidden = true;
  hideModelView();
  errorBox.hidden = true;
  statusLine.textContent = "Draw a digit and press Predict.";
});

// A chosen or dropped file goes to the service as it is; the canvas shows it when the
// browser can decode it, so people see what was classified.
function useFile(file) {
  if (!file) return;
  clearPad();  // a file the browser cannot show must not leave the last digit in view
  const url = URL.createObjectURL(file);
  const image = new Image();
  // The browser shows the image upright (EXIF orientation applied), as the service's box
  // counts it; naturalWidth/Height are its full-size pixels.
  const placement = new Promise((resolve) => {
    image.onload = () => {
      const scale = Math.min(pad.width / image.naturalWidth, pad.height / image.naturalHeight);
      const w = image.naturalWidth * scale;
      const h = image.naturalHeight * scale;
      const x = (pad.width - w) / 2;
      const y = (pad.height - h) / 2;
      ctx.drawImage(image, x, y, w, h);
      drawn = true;
      URL.revokeObjectURL(url);
      resolve({ scale, x, y });
    };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      resolve(null);
    };
  });
  image.src = url;
  predict(file, file.name, placement);
}

fileInput.addEventListener("change", () => {
  useFile(fileInput.files[0]);
  fileInput.value = "";  // so that choosing the same file again is a change too
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  useFile(event.dataTransfer.files[0]);
});

clearPad();
