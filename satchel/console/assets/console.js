// Forms marked data-confirm ask before they post (deleting a store, a record, revoking a token).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
