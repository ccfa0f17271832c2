// The wallet page: link the browser's wallet (an EIP-1193 provider, window.ethereum) by Sign-In with
// Ethereum. The server writes the message; the wallet signs it with personal_sign; the signed message goes
// back through the same plain form a member pasting a signature would use, so errors show the same way.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function utf8Hex(text) {
    var bytes = new TextEncoder().encode(text);
    var hex = "0x";
    for (var i = 0; i < bytes.length; i++) hex += bytes[i].toString(16).padStart(2, "0");
    return hex;
  }

  function setUp() {
    var panel = document.getElementById("wallet-connect");
    if (!panel || panel.dataset.armed) return;
    panel.dataset.armed = "1";
    var provider = window.ethereum;
    if (!provider || typeof provider.request !== "function") return; // the page already says there is none
    panel.hidden = false;
    document.getElementById("wallet-no-provider").hidden = true;
    var button = document.getElementById("wallet-connect-button");
    var status = document.getElementById("wallet-connect-status");
    var errorBox = document.getElementById("wallet-connect-error");

    function fail(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      status.textContent = "";
      button.disabled = false;
    }

    button.addEventListener("click", async function () {
      button.disabled = true;
      errorBox.hidden = true;
      status.textContent = button.dataset.waiting || "…";
      var address, chainId, message, signature;
      try {
        var accounts = await provider.request({ method: "eth_requestAccounts" });
        address = accounts[0];
        chainId = parseInt(await provider.request({ method: "eth_chainId" }), 16);
      } catch (error) {
        fail(panel.dataset.refused);
        return;
      }
      var body = new URLSearchParams({ address: address, chain_id: String(chainId), csrf_token: csrfToken() });
      var response = await fetch(panel.dataset.messageUrl, {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: body,
        credentials: "same-origin",
      });
      var answer = await response.json().catch(function () { return {}; });
      if (!response.ok || !answer.message) {
        fail(answer.error || panel.dataset.failed);
        return;
      }
      message = answer.message;
      try {
        signature = await provider.request({ method: "personal_sign", params: [utf8Hex(message), address] });
      } catch (error) {
        fail(panel.dataset.refused);
        return;
      }
      var form = document.getElementById("wallet-signed-form");
      form.elements.message.value = message;
      form.elements.signature.value = signature;
      form.submit();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
  document.addEventListener("htmx:afterSettle", setUp);
})();
