"""Capture real SDP offers for tests/fixtures/sdp/: headless Chromium's and aiortc's.

    uv run --no-sync python -m tests.support.capture_offer > tests/fixtures/sdp/chromium_offer.sdp
    uv run --no-sync python -m tests.support.capture_offer --aiortc \
        > tests/fixtures/sdp/aiortc_offer.sdp

The page builds its peer connection the way pipecat's small-webrtc browser client (and
pipeline/server/web/app.js) does: microphone transceiver first, the camera's second, both sendrecv,
then the data channel. The offer is taken before ICE gathering, as a trickle-ICE client POSTs
it, so it carries no candidate and no address of this machine. Nothing is loaded from the
network: the page is about:blank, with no ICE servers. aiortc's offer (what the LoopbackCaller
sends) has its candidates gathered, on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

_OFFER_JS = """
async () => {
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
  pc.addTransceiver('audio', { direction: 'sendrecv' });
  pc.addTransceiver('video', { direction: 'sendrecv' });
  pc.createDataChannel('chat', { ordered: true });
  const offer = await pc.createOffer();
  pc.close();
  return offer.sdp;
}
"""


def capture() -> str:
    """Chromium's offer SDP, CRLF line endings as sent."""
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--no-pings",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args, timeout=60_000
        )
        try:
            page = browser.new_page()
            sdp: str = page.evaluate(_OFFER_JS)
            version = browser.version
        finally:
            browser.close()
    print(f"captured from Chromium {version}", file=sys.stderr)
    return sdp


async def capture_aiortc() -> str:
    """aiortc's offer with the LoopbackCaller's transceivers, host candidates on 127.0.0.1."""
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

    from pipeline.webrtc.ice_policy import loopback_only_ice

    with loopback_only_ice():
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        pc.createDataChannel("chat", ordered=True)
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        await pc.close()
    return sdp


if __name__ == "__main__":
    offer = asyncio.run(capture_aiortc()) if "--aiortc" in sys.argv[1:] else capture()
    sys.stdout.buffer.write(offer.encode("utf-8"))
