"""The page as a service: confined uploads, per-session limits, the access token of an exposed
server, idle sessions freed, and checks that run off the session's thread."""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import ipyvuetify as v
import pytest
import solara

import villagesim.app.page as page_module
from villagesim.app.auth import COOKIE, TokenGate
from villagesim.app.page import Page, ScenarioFileInput
from villagesim.app.session import PageLimits, PageRun, check_page_limits, load_uploaded_files, shipped_scenarios
from villagesim.cli.app import is_loopback, page_url, server_settings
from villagesim.cli.main import main
from villagesim.config.schema import Scenario
from villagesim.errors import ScenarioError

SECRET = "root:x:0:0"  # what /etc/passwd starts with: must never reach an error


def _refused(files, match: str) -> str:
    with pytest.raises(ScenarioError, match=match) as info:
        load_uploaded_files(files)
    text = str(info.value)
    assert "\n" not in text and SECRET not in text and "villagesim-upload-" not in text
    given = "".join(str(content) for _name, content in files)
    assert tempfile.gettempdir() not in text.replace(given, "") or tempfile.gettempdir() in given  # only what the user wrote
    return text


# ---------------------------------------------------------------------------- uploads are confined
@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/hostname", "/dev/zero", "scenarios/baseline.toml"])
def test_an_upload_cannot_extend_a_path(target):
    text = _refused([("mine.toml", f'extends = "{target}"\n')], "not a path")
    assert text.startswith("mine.toml:1: extends: ")


def test_an_upload_cannot_extend_a_fifo_or_a_symlink(tmp_path, monkeypatch):
    """A named pipe is never opened (nothing blocks) and a symbolic link is never followed,
    whether named by path or found by bare name in a scenario folder."""
    folder = tmp_path / "scenarios"  # scenario_folders() includes the working folder's scenarios/
    folder.mkdir()
    os.mkfifo(folder / "fifo.toml")
    (folder / "link.toml").symlink_to("/etc/passwd")
    monkeypatch.chdir(tmp_path)
    _refused([("mine.toml", f'extends = "{folder / "fifo.toml"}"\n')], "not a path")
    _refused([("mine.toml", 'extends = "fifo.toml"\n')], "is not a shipped scenario or a file uploaded")
    _refused([("mine.toml", 'extends = "link.toml"\n')], "is not a shipped scenario or a file uploaded")
    _refused([("mine.toml", f'extends = "{folder / "link.toml"}"\n')], "not a path")


def test_an_upload_extends_a_shipped_scenario_or_a_file_uploaded_with_it():
    name, scenario = load_uploaded_files([("mine.toml", 'extends = "county"\nname = "mine"\n')])
    assert (name, scenario.name, scenario.population.villages) == ("mine.toml", "mine", 200)
    files = [
        ("base.toml", 'extends = "baseline.toml"\n[policy]\npublicity = 0.7\n'),
        ("mine.toml", 'extends = "base.toml"\nname = "mine"\n[run]\nsteps = 30\n'),
    ]
    name, scenario = load_uploaded_files(files)
    assert name == "mine.toml" and scenario.policy.publicity == 0.7 and scenario.run.steps == 30
    assert load_uploaded_files(files[::-1])[0] == "mine.toml"  # the order of the files does not matter
    with pytest.raises(ScenarioError, match="upload one scenario with the files it extends"):
        load_uploaded_files([("a.toml", 'name = "a"\n'), ("b.toml", 'name = "b"\n')])


def test_an_upload_cannot_extend_another_planners_upload():
    before = set(Path(tempfile.gettempdir()).glob("villagesim-upload-*"))
    assert load_uploaded_files([("theirs.toml", 'name = "theirs"\n')])[0] == "theirs.toml"
    _refused([("mine.toml", 'extends = "theirs.toml"\n')], "is not a shipped scenario or a file uploaded")
    assert set(Path(tempfile.gettempdir()).glob("villagesim-upload-*")) == before  # nothing is left behind


def test_uploads_are_bounded_in_size_count_and_names():
    limits = PageLimits()
    _refused([("big.toml", "#" * (limits.file_bytes + 1))], "big.toml: file too large")
    _refused([(f"f{i}.toml", "#" * (limits.file_bytes - 1)) for i in range(5)], "larger than the 1,000,000 bytes")
    _refused([(f"f{i}.toml", "") for i in range(limits.files + 1)], "at most 16 are read")
    _refused([("a.toml", ""), ("a.toml", "")], "a.toml: two uploaded files have this name")
    _refused([("notes.txt", "")], "ending in .toml")
    _refused([(".hidden.toml", "")], "ending in .toml")
    # a name with folders is reduced to its bare name: nothing is written outside the upload's folder
    assert load_uploaded_files([("../../tmp/x.toml", 'name = "x"\n')])[0] == "x.toml"


# ---------------------------------------------------------------------------- per-session limits
def test_a_scenario_too_big_for_the_page_is_refused_before_anything_is_allocated():
    huge = "[population]\nvillages = 5000\nresidents_per_village = 100000\n"
    text = _refused([("huge.toml", huge)], "500,000,000 persons, more than the 2,000,000 the page runs")
    assert text.startswith("huge.toml: population: ") and "villagesim run" in text
    scenario = Scenario.model_validate({"population": {"villages": 5000, "residents_per_village": 100000}})
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="the page runs"):
        PageRun(scenario)  # a Reset or a typed seed builds through here too
    assert time.perf_counter() - started < 5  # refused, not allocated (3.7 GiB) and then failed
    # the memory bound counts the run and its baseline
    small_limit = PageLimits(memory_bytes=400 * 2**20)
    with pytest.raises(ScenarioError, match=r"about .* of memory .* more than the 400 MiB allowed"):
        check_page_limits(
            Scenario.model_validate({"population": {"villages": 200, "residents_per_village": 900}}), limits=small_limit
        )
    assert check_page_limits(shipped_scenarios()["prefecture"].scenario).persons <= PageLimits().persons


def test_too_many_interventions_are_refused_before_they_are_checked(monkeypatch):
    many = "".join(f'[[intervention]]\nstep = {i}\nset = {{ "policy.publicity" = 0.5 }}\n' for i in range(2000))

    def no_check(*args, **kwargs):
        raise AssertionError("the interventions were checked")

    monkeypatch.setattr("villagesim.app.session.load_scenario", no_check)
    text = _refused([("many.toml", many)], "2,000 interventions, more than the 500 the page runs")
    assert text.startswith("many.toml: intervention: ")


# ---------------------------------------------------------------------------- checks off the session's thread
@pytest.mark.usefixtures("compiled_kernels")
def test_a_slow_check_runs_in_a_worker_while_other_sessions_are_served(monkeypatch):
    started, release = threading.Event(), threading.Event()
    seen: dict[str, str] = {}
    real = page_module.load_uploaded_files

    def slow_check(files):
        seen["thread"] = threading.current_thread().name
        started.set()
        assert release.wait(60)
        return real(files)

    monkeypatch.setattr(page_module, "load_uploaded_files", slow_check)
    _box, rc_a = solara.render(Page(), handle_error=False)
    rc_a.find(ScenarioFileInput).widget.vue_upload(
        {"files": [{"name": "mine.toml", "text": 'extends = "baseline"\nname = "mine"\n'}]}
    )
    try:
        assert started.wait(60)
        assert seen["thread"].startswith("villagesim-page-work") and seen["thread"] != threading.current_thread().name
        assert "Checking mine.toml" in str(rc_a.find(v.Alert, class_="busy-note").widget.children)
        # the session that uploaded still steps, and another session is served meanwhile
        rc_a.find(v.Btn, children=["Step"]).widget.click()
        rc_a.find(v.Html, children=["Week 1 of 520 (year 0.0)"]).assert_single()
        _box, rc_b = solara.render(Page(), handle_error=False)
        rc_b.find(v.Btn, children=["Step"]).widget.click()
        rc_b.find(v.Html, children=["Week 1 of 520 (year 0.0)"]).assert_single()
        assert not release.is_set()  # all of that while the check was still waiting
        rc_b.close()
    finally:
        release.set()
    deadline = time.monotonic() + 60
    while rc_a.find(v.Alert, class_="busy-note").widgets:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert "Loaded mine.toml: mine." in str(rc_a.find(v.Alert, class_="upload-note").widget.children)
    rc_a.find(v.Html, children=["Week 0 of 520 (year 0.0)"]).assert_single()
    rc_a.close()


# ---------------------------------------------------------------------------- the access token
class _App:
    def __init__(self):
        self.calls = []

    async def __call__(self, scope, receive, send):
        self.calls.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"the page"})


def _call(gate, kind: str, path: str = "/", query: str = "", cookie: str | None = None):
    scope = {"type": kind, "path": path, "root_path": "", "query_string": query.encode(), "headers": []}
    if cookie is not None:
        scope["headers"].append((b"cookie", cookie.encode()))
    sent = []

    async def receive():
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    return sent


def test_the_token_gate_refuses_http_and_websockets_without_the_token():
    app = _App()
    gate = TokenGate(app, "s3cret")
    assert _call(gate, "http")[0]["status"] == 401
    assert _call(gate, "http", query="token=wrong")[0]["status"] == 401
    assert _call(gate, "http", cookie=f"{COOKIE}=wrong")[0]["status"] == 401
    assert _call(gate, "websocket") == [{"type": "websocket.close", "code": 1008}]  # closed before accept: 403
    assert app.calls == []
    start = _call(gate, "http", path="//evil.example/x", query="a=1&token=s3cret")[0]
    headers = dict(start["headers"])
    assert start["status"] == 303 and headers[b"location"] == b"/evil.example/x?a=1"  # the token leaves the address
    assert headers[b"set-cookie"].startswith(f"{COOKIE}=s3cret; Path=/; HttpOnly; SameSite=Strict".encode())
    assert _call(gate, "http", cookie=f"other=1; {COOKIE}=s3cret")[1]["body"] == b"the page"
    _call(gate, "websocket", cookie=f"{COOKIE}=s3cret")
    assert app.calls == ["http", "websocket"]


def test_an_address_others_can_reach_needs_expose(capsys):
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.org"))
    for host in ("0.0.0.0", "192.168.1.5"):
        assert main(["app", "--host", host]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--host {host} lets others on the network open the page" in err and "--expose" in err
    assert page_url("127.0.0.1", 8765, "t0k") == "http://127.0.0.1:8765/?token=t0k"
    assert page_url("::1", 8765, None) == "http://[::1]:8765/"
    assert page_url("0.0.0.0", 8765, "t").startswith("http://") and "0.0.0.0" not in page_url("0.0.0.0", 8765, "t")


def test_idle_sessions_are_freed_after_the_idle_minutes():
    """`--idle-minutes` sets Solara's kernel cull timeout (24 h by default in Solara)."""
    code = (
        "from villagesim.cli.app import offline_environment, server_settings\n"
        "offline_environment(); server_settings(2.5)\n"
        "import solara.server.settings as s, solara.util as u\n"
        "print(u.parse_timedelta(s.kernel.cull_timeout))\n"
    )
    env = {k: val for k, val in os.environ.items() if not k.startswith("SOLARA_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert float(out) == 150.0
    import solara.server.settings as settings

    before = settings.kernel.cull_timeout
    try:
        server_settings(10, env={})  # applied also where Solara's settings were already read
        assert settings.kernel.cull_timeout == "600s"
    finally:
        settings.kernel.cull_timeout = before
    assert main(["app", "--idle-minutes", "0"]) == 2


def test_an_exposed_server_answers_only_with_the_token(tmp_path):
    """A real `villagesim app --expose --token` (on 127.0.0.1): 401 without the token, the page with it."""
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env.pop("VILLAGESIM_APP_TOKEN", None)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "villagesim", "app", "--port", str(port), "--expose", "--token", "letmein"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                raise AssertionError("the page was served without the token")
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.25)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(url + "?token=letmein", timeout=30) as response:
            assert response.status == 200 and response.url == url and b"solara" in response.read().lower()
        with opener.open(url, timeout=30) as response:  # the cookie carries on
            assert response.status == 200
        assert f"villagesim page: {url}?token=letmein" in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.usefixtures("compiled_kernels")
def test_big_villages_are_built_in_a_worker_while_the_page_says_so():
    _box, rc = solara.render(Page(), handle_error=False)
    rc.find(v.Select, label="Scenario").widget.v_model = "county"  # 180,000 persons: built off the page's thread
    notes = rc.find(v.Alert, class_="busy-note").widgets
    assert not notes or "Building 180,000 persons' villages" in str(notes[0].children)
    deadline = time.monotonic() + 120
    while rc.find(v.Alert, class_="busy-note").widgets:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rc.find(v.Select, class_="village-select").assert_single()  # the county's villages are on the page
    rc.close()
