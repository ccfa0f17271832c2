"""The chain: the only package that imports web3 (client, contracts, outbox, wallets)."""
