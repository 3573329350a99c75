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

let drawn = false;  // has the canvas any ink?
let lastPoint = null;

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
  lastPoint = point(event);
  strokeTo(lastPoint);
});
pad.addEventListener("pointermove", (event) => {
  if (lastPoint) strokeTo(point(event));
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { lastPoint = null; });
}

function showError(message) {
  result.hidden = true;
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

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  predictButton.disabled = true;
  statusLine.textContent = "Asking the model…";
  const started = performance.now();
  try {
    const response = await fetch("/v1/predict", { method: "POST", body: form });
    const milliseconds = performance.now() - started;
    if (!response.ok) {
      showError(await describeFailure(response));
      return;
    }
    showPrediction(await response.json(), milliseconds);
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
  pad.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
});

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  fileInput.value = "";
  result.hidden = true;
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
  image.onload = () => {
    const scale = Math.min(pad.width / image.width, pad.height / image.height);
    const w = image.width * scale;
    const h = image.height * scale;
    ctx.drawImage(image, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    drawn = true;
    URL.revokeObjectURL(url);
  };
  image.onerror = () => URL.revokeObjectURL(url);
  image.src = url;
  predict(file, file.name);
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
