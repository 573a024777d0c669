"""The search page and follow mode in a real browser: Debian's headless
Chromium driven by Playwright (its executable path; `make browser` installs
it). The page answers a query, shows a document published while it follows,
removes it when it is deleted, and shows a document's status on click; a plain
`new EventSource` on a one-shot query stops after its answer instead of
re-running the query forever."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TEST_API_KEY, Pipeline

pytestmark = pytest.mark.integration
CHROMIUM = Path(os.environ.get("DOCSTREAM_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AUTH = {"X-API-Key": TEST_API_KEY}
RETRY_MS = 300  # a browser that would reconnect does so quickly
PIPELINE_ENV = {"DOCSTREAM_SSE_RETRY_MS": str(RETRY_MS), "DOCSTREAM_SSE_HEARTBEAT_S": "1"}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (or set DOCSTREAM_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
        )
        yield context
        context.close()


def test_the_page_answers_then_follows_a_new_document_and_its_deletion(
    browser: Any, pipeline: Pipeline, run_id: str
) -> None:
    page = browser.new_page()
    page.goto(f"{pipeline.base_url}/")
    page.fill("input[name=q]", "velvetorchid")
    page.select_option("select[name=mode]", "lexical")
    page.check("input[name=follow]")
    page.click("button[type=submit]")
    page.wait_for_selector("#state[data-state=following]", timeout=60_000)
    assert "total_ms" in page.inner_text("#timings")  # the answer's `done` timings
    doc_id = f"{run_id}-orchid"
    published = httpx.post(
        f"{pipeline.base_url}/documents",
        json={"doc_id": doc_id, "title": "Orchids", "text": "The velvetorchid blooms at night."},
        headers=AUTH,
        timeout=30,
    )
    assert published.status_code == 202
    shown = f'#hits li[data-doc-id="{doc_id}"]'
    page.wait_for_selector(shown, timeout=120_000)
    assert "velvetorchid" in page.inner_text(shown)
    page.click(shown)
    page.wait_for_function(
        "id => document.getElementById('status').textContent.includes(id)", arg=doc_id
    )
    deleted = httpx.delete(f"{pipeline.base_url}/documents/{doc_id}", headers=AUTH, timeout=30)
    assert deleted.status_code == 202
    page.wait_for_selector(shown, state="detached", timeout=120_000)
    page.close()


PLAIN = """
<!doctype html><script>
window.metas = 0;
const source = new EventSource("/query?q=anything&k=3");
source.addEventListener("meta", () => { window.metas += 1; });
</script>
"""


def test_a_plain_event_source_on_a_one_shot_query_does_not_loop(
    browser: Any, pipeline: Pipeline
) -> None:
    page = browser.new_page()
    # Same origin as the API, so the page's EventSource needs no CORS.
    page.route(
        f"{pipeline.base_url}/plain",
        lambda route: route.fulfill(body=PLAIN, content_type="text/html"),
    )
    page.goto(f"{pipeline.base_url}/plain")
    page.wait_for_function("window.metas >= 1", timeout=60_000)
    # After `done` the browser reconnects (RETRY_MS later) with the answer's
    # Last-Event-ID, gets 204, and closes the source for good.
    page.wait_for_function("source.readyState === EventSource.CLOSED", timeout=30_000)
    page.wait_for_timeout(10 * RETRY_MS)  # room for reconnects that should not happen
    assert page.evaluate("window.metas") == 1
    assert page.evaluate("source.readyState") == 2
    page.close()
