// Supervision › Charge: the header box ticks or unticks every task of the list.
document.addEventListener("change", (event) => {
  if (event.target.id !== "check-all") return;
  for (const box of document.querySelectorAll("#task-list tbody input[type=checkbox]")) box.checked = event.target.checked;
});
