"""The farm dashboard in headless Chromium (Debian's chromium driven by Playwright): a running batch is shown and
the page updates from the coordinator's event stream when a job finishes; the token and loopback rules."""
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest
import zmq

from farm_procs import Farm, free_ports
from synthfarm.farm import auth
from synthfarm.farm.coordinator import Coordinator
from synthfarm.farm.dashboard import Dashboard, batch_view

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture()
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs it)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def test_page_shows_a_running_batch_and_follows_its_events(browser, slow_recipe, tmp_path):
    page_port = free_ports(1)
    farm = Farm(tmp_path, workers=1, coordinator_args=("--dashboard", page_port))
    try:
        farm.submit(slow_recipe, 4, tmp_path / "out")
        page = browser.new_page(bypass_csp=True)  # the page keeps its policy; the checks below use eval
        deadline = time.monotonic() + 60
        while True:  # the coordinator process may still be starting
            try:
                page.goto(f"http://127.0.0.1:{page_port}/")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=30_000)
        row = page.locator('#batches tr[data-batch="batch"]')
        row.wait_for(timeout=30_000)
        assert row.locator("td").nth(2).text_content() == "active"
        assert row.locator(".progress").text_content().strip() == "0 / 4"
        page.wait_for_selector('#workers tr[data-worker="w0"] td.health-busy', timeout=120_000)
        # a job finishes: the page hears it on the event stream and refreshes itself (no reload)
        page.evaluate("window.__same_page = true")
        page.wait_for_function("document.getElementById('last-event').textContent.includes('done')",
                               timeout=120_000)
        page.wait_for_function("document.querySelector('#batches tr[data-batch=\"batch\"] .progress')"
                               ".textContent.trim() !== '0 / 4'", timeout=30_000)
        assert page.evaluate("window.__same_page") is True
        done = int(row.locator(".progress").text_content().split("/")[0])
        assert 1 <= done <= 4
        job0 = page.locator('#jobs tr[data-job="0"] td')
        assert job0.nth(1).text_content() in ("done", "running")
        assert job0.nth(2).text_content() == "1" and job0.nth(3).text_content() == "w0"  # attempts, worker
        worker = page.locator('#workers tr[data-worker="w0"] td')
        assert worker.nth(2).text_content() == "CPU"  # its capabilities: device (no GPU here)
        assert row.locator("td").nth(5).text_content().endswith("jobs/min")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        farm.wait(lambda s: s["jobs"]["done"] == 4, timeout=240)
        page.wait_for_function("document.querySelector('#batches tr[data-batch=\"batch\"] td:nth-child(3)')"
                               ".textContent === 'finished'", timeout=30_000)
    finally:
        farm.stop()


def get(url, **headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_farm_with_keys_needs_the_token(tmp_path):
    keys = tmp_path / "keys"
    auth.init_keys(keys)
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, keys=keys, context=context)
    serving = threading.Thread(target=coord.serve, daemon=True)
    serving.start()
    dashboard = Dashboard(coord.clients_endpoint, coord.events_endpoint, keys=keys, context=context).start()
    try:
        base = dashboard.url.split("?")[0]
        assert dashboard.token and f"token={dashboard.token}" in dashboard.url
        assert get(base)[0] == 401
        assert get(base + "api/state?token=wrong")[0] == 401
        assert get(base + "api/events")[0] == 401
        assert get(dashboard.url)[0] == 200
        code, body = get(base + "api/state", Authorization=f"Bearer {dashboard.token}")
        assert code == 200 and b'"batches": []' in body  # it reached the coordinator through CURVE
    finally:
        dashboard.stop()
        coord.stop_event.set()
        serving.join(timeout=10)
        context.term()


def test_without_keys_the_page_listens_on_loopback_only(tmp_path):
    port, page_port = free_ports(4), free_ports(1)
    proc = subprocess.Popen([sys.executable, "-m", "synthfarm.cli", "coordinator", "--bind", "0.0.0.0", "--insecure",
                             "--port", str(port), "--data", str(tmp_path / "state"), "--dashboard", str(page_port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        printed = ""
        while "dashboard:" not in printed:
            printed += proc.stdout.readline()
        assert f"dashboard: http://127.0.0.1:{page_port}/\n" in printed  # no token without keys
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections() if c.status == "LISTEN"
                     and c.laddr.port == page_port]
        assert [addr.ip for addr in listening] == ["127.0.0.1"]
        assert get(f"http://127.0.0.1:{page_port}/api/state")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_throughput_and_eta():
    batch = {"id": "b", "count": 100, "created": 1000.0, "status": "active",
             "jobs": {"queued": 50, "running": 10, "done": 40, "failed": 0, "cancelled": 0}}
    view = batch_view(batch, 2.0, 1100.0)  # measured: 2 jobs/s
    assert view["progress"] == 0.4 and view["eta_seconds"] == 30.0
    view = batch_view(batch, None, 1100.0)  # no events seen yet: the average since creation
    assert view["jobs_per_second"] == 0.4 and view["eta_seconds"] == 150.0
    assert batch_view({**batch, "jobs": {**batch["jobs"], "done": 0}}, None, 1100.0)["eta_seconds"] is None
