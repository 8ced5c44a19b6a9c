/* The sign-in dialog's last page: hands the one-time code to the task pane through Office, which
 * delivers it only to the add-in that opened the dialog. Outside an Office dialog it does
 * nothing but say so: the code is useless without the pane's verifier anyway. */
(function () {
  function send() {
    const code = document.getElementById("signed-in").dataset.code;
    const status = document.getElementById("dialog-status");
    const ui = typeof Office !== "undefined" && Office.context && Office.context.ui;
    if (!ui || !ui.messageParent) {
      status.textContent = "Open this page from the ScoreBridge task pane in Excel (Sign in).";
      return;
    }
    ui.messageParent(JSON.stringify({ kind: "scorebridge-signin", code: code }));
    status.textContent = "Signed in: you can close this window if Excel has not.";
  }
  if (typeof Office !== "undefined" && Office.onReady) Office.onReady(send);
  else document.addEventListener("DOMContentLoaded", send);
})();
