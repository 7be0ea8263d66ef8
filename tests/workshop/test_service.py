"""The class dashboard's doors: who may do what with which credential, and a clear 4xx for bad input."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from kvlab.workshop import records

from classroom import serve
from runners import assert_one_line_error, free_port, kvlab


def join(service, name: str, code: str | None = None) -> httpx.Response:
    return httpx.post(f"{service.base}/api/join", json={"code": code or service.join_url.rsplit("/", 1)[1],
                                                          "name": name})


def result(**fields) -> dict:
    return {"id": "r1", "lesson": "02", "exercise": "ex1", "title": "A vault per environment", "status": "incorrect",
            "message": "kv-sales-prod is missing.", "time": "2026-12-03T10:00:00+00:00", **fields}


def post(service, token: str, *results: dict, **options) -> httpx.Response:
    return httpx.post(f"{service.base}/api/results", headers={"Authorization": f"Bearer {token}"},
                      json={"results": list(results)}, **options)


def error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]["message"]
    assert "\n" not in message and "Traceback" not in answer.text
    return message


def test_the_class_code_only_joins_and_a_learner_token_only_sends(service):
    learner = join(service, "Ada").json()["token"]
    assert post(service, learner, result()).json() == {"accepted": 1, "new": 1}
    code = service.join_url.rsplit("/", 1)[1]
    # the class code is no token: it cannot send results, open the page, its events or the exports
    for credential in (code, "x", service.key[:-1], service.key):
        assert "join the class" in error(post(service, credential, result(id="r2")), 401)
    for credential in (code, learner, "x", service.key[:-1]):
        headers = {"Authorization": f"Bearer {credential}"}
        for path in ("/instructor", "/instructor/events", "/instructor/export.csv", "/instructor/export.json"):
            answer = httpx.get(service.base + path, headers=headers, cookies={"kvlab-instructor": credential})
            assert answer.status_code == 401, (credential == learner, path)
    assert len(service.export()) == 1  # only what the learner sent with their own token


def test_the_instructor_link_trades_the_key_for_a_cookie(service):
    with httpx.Client(base_url=service.base) as browser:
        opened = browser.get(service.instructor_url.replace(service.base, ""))
        assert opened.status_code == 303 and opened.headers["location"].endswith("/instructor")  # key out of the URL
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/instructor" in cookie
        page = browser.get("/instructor")
        assert page.status_code == 200 and "EventSource" in page.text
        assert browser.get("/instructor/export.csv").text.startswith("learner,lesson,exercise")
    wrong = httpx.get(f"{service.base}/instructor?key=not-the-key")
    assert wrong.status_code == 403 and "set-cookie" not in wrong.headers


def test_a_result_counts_once_and_is_the_senders_own(service):
    ada, bob = (join(service, name).json()["token"] for name in ("Ada", "Bob"))
    assert post(service, ada, result(), result()).json() == {"accepted": 2, "new": 1}  # a retried send: once
    assert post(service, ada, result(id="r2", status="correct", message="")).json()["new"] == 1
    assert post(service, bob, result(learner=1, name="Ada")).json()["new"] == 1  # fields naming another: ignored
    rows = {(r["learner"], r["exercise"]): r for r in service.export()}
    assert (rows["Ada", "ex1"]["latest"], rows["Ada", "ex1"]["best"], rows["Ada", "ex1"]["attempts"]) == (
        "correct", "correct", 2)
    assert (rows["Bob", "ex1"]["latest"], rows["Bob", "ex1"]["attempts"]) == ("incorrect", 1)


@pytest.mark.parametrize("change, status, words", [
    ({"status": "passed"}, 400, "'status' must be one of"),
    ({"lesson": "2"}, 400, "'lesson' must be a lesson number"),
    ({"exercise": "ex1; drop"}, 400, "'exercise' must be an exercise id"),
    ({"id": ""}, 400, "'id' must be a client id"),
    ({"time": "yesterday"}, 400, "'time' must be an ISO 8601 time"),
    ({"message": ["a", "list"]}, 400, "'message' must be a string"),
])
def test_a_bad_record_is_a_400_that_says_which_field(service, change, status, words):
    token = join(service, "Ada").json()["token"]
    assert words in error(post(service, token, result(**change)), status)
    assert service.export() == []  # nothing of a refused request was kept


def test_bad_requests_get_a_clear_4xx(service):
    token = join(service, "Ada").json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{service.base}/api/results"
    assert "at most" in error(httpx.post(url, headers=headers, content=b"{" + b" " * records.MAX_BODY + b"}"), 413)
    assert "at most" in error(post(service, token, *[result(id=f"r{i}") for i in range(records.MAX_BATCH + 1)]), 413)
    assert "not valid JSON" in error(httpx.post(url, headers=headers, content=b"{results"), 400)
    assert "send JSON" in error(httpx.post(url, headers={**headers, "Content-Type": "text/plain"}, content=b"{}"), 415)
    assert "send {\"results\"" in error(httpx.post(url, headers=headers, content=json.dumps([1])), 400)
    assert "already joined" in error(join(service, "  ada  "), 409)  # names are told apart as people read them
    assert "at most 40" in error(join(service, "x" * 41), 400)
    assert "a name is required" in error(join(service, " "), 400)
    assert "not this class's code" in error(join(service, "Bob", code="guess"), 403)


def test_the_class_survives_a_restart_with_the_same_urls(tmp_path):
    first = serve(tmp_path / "class")
    token = join(first, "Ada").json()["token"]
    post(first, token, result())
    first.stop()
    again = serve(tmp_path / "class")
    try:
        assert (again.join_url.rsplit("/", 1)[1], again.key) == (first.join_url.rsplit("/", 1)[1], first.key)
        assert post(again, token, result(id="r2", status="correct")).status_code == 200
        assert [r["attempts"] for r in again.export()] == [2]
        assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "class").iterdir()
                if p.name in ("workshop.json", "workshop.db")} == {"workshop.json": 0o600, "workshop.db": 0o600}
    finally:
        again.stop()


def test_a_taken_port_or_a_bad_join_url_is_one_line(tmp_path):
    taken = serve(tmp_path / "class")
    try:
        assert_one_line_error(kvlab("workshop", "serve", "--port", str(taken.port), "--dir", str(tmp_path / "b"),
                                    check=False), "in use")
    finally:
        taken.stop()
    assert_one_line_error(kvlab("workshop", "join", "http://127.0.0.1/", "--name", "A", state=tmp_path / "s",
                                check=False), "not a workshop join URL")
    assert_one_line_error(kvlab("workshop", "join", f"http://127.0.0.1:{free_port()}/join/abc", "--name", "A",
                                state=tmp_path / "s", check=False), "did not answer")

    outside_a_hub = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    assert_one_line_error(kvlab("workshop", "serve", "--hub-auth", "--port", str(free_port()), "--dir",
                                str(tmp_path / "c"), env=outside_a_hub, check=False), "JUPYTERHUB_API_TOKEN")
    # a learner's server given the service's URL without a code, outside a hub, cannot say who the learner is
    status = kvlab("workshop", "status", state=tmp_path / "s", check=False,
                   env={**outside_a_hub, "KVLAB_WORKSHOP": "http://127.0.0.1:9/services/kvlab-workshop/"})
    assert_one_line_error(status, "works only in a JupyterHub server")


def test_behind_a_proxy_under_a_prefix_with_the_deployments_class_code(tmp_path):
    """As a JupyterHub service: served under /services/NAME, with the class code its configuration gives learners."""
    prefixed = serve(tmp_path / "class", None, "--prefix", "/services/kvlab-workshop", "--code", "autumn-class-2026")
    try:
        assert prefixed.join_url == f"{prefixed.base}/services/kvlab-workshop/join/autumn-class-2026"
        assert prefixed.instructor_url.startswith(f"{prefixed.base}/services/kvlab-workshop/instructor?key=")
        joined = kvlab("workshop", "join", prefixed.join_url, "--name", "Ada", state=tmp_path / "ada")
        assert '"service": "%s/services/kvlab-workshop"' % prefixed.base in joined.stdout
        opened = httpx.get(prefixed.instructor_url)
        assert "Path=/services/kvlab-workshop/instructor" in opened.headers["set-cookie"]
        assert httpx.get(f"{prefixed.base}/api/health").status_code == 404  # nothing outside the prefix
    finally:
        prefixed.stop()
    assert_one_line_error(kvlab("workshop", "serve", "--dir", str(tmp_path / "b"), "--port", str(free_port()),
                                "--code", "short", check=False), "a class code is 8-64")
