// The claim page: send the prepared claim transaction from the browser's wallet (EIP-1193,
// window.ethereum, eth_sendTransaction). Without a wallet the page shows the call data to send by hand.
(function () {
  "use strict";

  function setUp() {
    var button = document.querySelector("[data-airdrop-claim]");
    if (!button || button.dataset.armed) return;
    button.dataset.armed = "1";
    var message = document.querySelector("[data-airdrop-message]");
    var provider = window.ethereum;
    if (!provider || typeof provider.request !== "function") {
      button.hidden = true;
      if (message) message.hidden = false;
      return;
    }
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        var accounts = await provider.request({ method: "eth_requestAccounts" });
        await provider.request({
          method: "eth_sendTransaction",
          params: [{ from: accounts[0] || button.dataset.from, to: button.dataset.to, data: button.dataset.data }],
        });
        window.location.reload();
      } catch (error) {
        button.disabled = false;
        if (message) { message.textContent = (error && error.message) || String(error); message.hidden = false; }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSwap", setUp);
})();
