"""sapien-sdk: launch labeling campaigns on Sapien and download verified, structured data."""

from sapien_sdk.client import AsyncClient, Campaign, Client, Progress, Results, SapienError
from sapien_sdk.webhooks import SignatureError, sign, verify_signature

__all__ = ["AsyncClient", "Campaign", "Client", "Progress", "Results", "SapienError", "SignatureError", "sign", "verify_signature"]
__version__ = "0.1.0"
