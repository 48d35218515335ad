// Forms marked data-confirm ask before they post (deleting a store, a record, revoking a token).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Filters marked data-autosubmit apply as soon as a checkbox or choice changes (their button does it too).
document.addEventListener("change", (event) => {
  const form = event.target.form;
  if (form && form.hasAttribute("data-autosubmit")) form.requestSubmit();
});

// An image preview the browser cannot decode (a record typed image/png that is not one) says so instead of
// leaving an empty box: when it fails, or, if it failed before this script ran, once the page is read.
function unshowable(image) {
  const note = document.createElement("p");
  note.className = "empty";
  note.id = "no-preview";
  note.append("This image cannot be shown (it is not what its type says, or not an image the browser reads): ");
  const link = document.createElement("a");
  link.href = image.getAttribute("src") + "?download=1";
  link.download = "";
  link.textContent = "download it";
  note.append(link, ".");
  image.closest(".image-box").replaceWith(note);
}

document.addEventListener("error", (event) => {  // errors do not bubble: this listens as they go down
  if (event.target instanceof HTMLImageElement && event.target.id === "preview-image") unshowable(event.target);
}, true);

document.addEventListener("DOMContentLoaded", () => {
  const image = document.getElementById("preview-image");
  if (image && image.complete && image.naturalWidth === 0) unshowable(image);
});

// Copy buttons (data-copy: the selector of what to copy) exist only with this script, so they start hidden.
// The clipboard API needs a secure context (https or localhost); elsewhere a selection is copied instead.
function copyBySelection(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) button.hidden = false;
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const copying = navigator.clipboard && window.isSecureContext
    ? navigator.clipboard.writeText(text).catch(() => copyBySelection(text))
    : copyBySelection(text);
  copying.then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Press Ctrl+C"; window.getSelection().selectAllChildren(source); },
  ).finally(() => setTimeout(() => { button.textContent = "Copy"; }, 2000));
});

// A run's log opens at its end, where a crawl says how it went.
document.addEventListener("DOMContentLoaded", () => {
  for (const log of document.querySelectorAll("pre.log")) log.scrollTop = log.scrollHeight;
});

// An error page's way back goes back in the history when the page before is the Console's: a form that
// failed comes back as it was filled in, where its link would open it empty.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-back]");
  if (!link || !document.referrer || new URL(document.referrer).origin !== location.origin) return;
  event.preventDefault();
  history.back();
});
