"""The app's one HTML page and, when a Web Vitals receiver is configured, the browser snippet.

The snippet is the committed bundle `webvitals-js/dist/saasmon-vitals.js` (the `web-vitals`
package and `webvitals-js/src`, built by esbuild; tests/integration/test_webvitals_snippet.py
fails when it is stale). With `webvitals_url` set the page loads it and reports its Web
Vitals there; its one button runs a synchronous recalculation of `interaction_ms`
milliseconds, the interaction whose delay INP measures.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

SNIPPET = Path(__file__).resolve().parent.parent / "webvitals-js" / "dist" / "saasmon-vitals.js"
SNIPPET_PATH = "/static/saasmon-vitals.js"

HEAD = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Reference CRM</title>")
BODY = "<body><h1>Reference CRM</h1><p>The API is under /api.</p>"
# The button's work blocks the main thread like a heavy client-side render: the click's
# next paint waits for it, which is what INP measures.
BUTTON = ('<button id="recalculate" type="button">Recalculate forecast</button>'
          '<output id="forecast"></output>'
          "<script>document.getElementById('recalculate').addEventListener('click', () => {"
          "const end = performance.now() + {ms}; let n = 0; while (performance.now() < end) n++;"
          "document.getElementById('forecast').textContent = 'recalculated (' + n + ')';"
          "document.body.dataset.recalculated = 'yes';});</script>")


def page(webvitals_url: str | None, interaction_ms: int) -> str:
    if webvitals_url is None:
        return f"{HEAD}</head>{BODY}</body></html>"
    script = (f'<script src="{SNIPPET_PATH}" data-beacon-url="{html.escape(webvitals_url)}">'
              "</script>")
    return f"{HEAD}{script}</head>{BODY}{BUTTON.replace('{ms}', str(interaction_ms))}</body></html>"


def add_routes(app: web.Application, webvitals_url: str | None, interaction_ms: int) -> None:
    text = page(webvitals_url, interaction_ms)

    async def frontend_page(_: web.Request) -> web.Response:
        """The app's page: what a frontend smoke test (nova-crm § 5.1) and its probe fetch."""
        return web.Response(text=text, content_type="text/html")

    app.router.add_get("/", frontend_page)
    if webvitals_url is not None:
        if not SNIPPET.is_file():
            raise FileNotFoundError(f"{SNIPPET}: the Web Vitals snippet is not built")
        bundle = SNIPPET.read_bytes()

        async def snippet(_: web.Request) -> web.Response:
            return web.Response(body=bundle, content_type="text/javascript",
                                headers={"Cache-Control": "no-cache"})

        app.router.add_get(SNIPPET_PATH, snippet)
