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
