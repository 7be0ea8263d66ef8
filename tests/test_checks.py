"""The check framework (outcomes, stubs, rendering, hints) and lesson 00's checks against the emulator.

The lesson tests run "cells" in a plain dict namespace with an ``In`` list, as
an IPython kernel would: ``In`` grows before a cell runs, ``start_lesson`` and
``check`` read the namespace of the code that calls them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import kvlab
from kvlab.checks import (
    Context,
    Exercise,
    Incorrect,
    LessonSpec,
    NotAttempted,
    Unavailable,
    all_lessons,
    lesson_spec,
    make_hint,
    run_check,
)
from kvlab.feedback import MIME, Hint, Result
from kvlab.lesson import Lesson

import notebook_kernel
from runners import officer_vault

ROOT = Path(__file__).resolve().parents[1]
AZURE_URL = "https://example.vault.azure.net/"


# -- a tiny lesson for the framework -------------------------------------------------------


def _not_attempted(ctx):
    raise NotAttempted("`thing` does not exist yet")


def _incorrect(ctx):
    raise Incorrect("`thing` is 2, it should be 3")


def _unavailable(ctx):
    raise Unavailable("needs the emulator")


def _passes(ctx):
    return ["first fact", "second fact"]


def _passes_with_none(ctx):
    return None


def _crashes(ctx):
    raise RuntimeError("boom happened\n  File 'x.py', line 1\nsecond line")


def _crashes_silently(ctx):
    raise KeyError()


def _audits(ctx):
    ctx.audit(operationName="SecretGet")
    return ["never reached on a real vault"]


def _requires(ctx):
    number = ctx.require("number", int)
    ctx.require("pair", (list, tuple))
    return [f"number is {number}"]


SPEC = LessonSpec(
    number="98",
    title="A lesson for tests",
    exercises=(
        Exercise("ex1", "Not attempted", _not_attempted),
        Exercise("ex2", "Wrong", _incorrect, ("first hint", "second hint")),
        Exercise("ex3", "Elsewhere", _unavailable),
        Exercise("ex4", "Right", _passes),
        Exercise("ex5", "Right, nothing listed", _passes_with_none),
        Exercise("ex6", "Crashing", _crashes, ("a hint",)),
        Exercise("ex7", "Crashing quietly", _crashes_silently),
        Exercise("ex8", "Audit", _audits),
        Exercise("ex9", "Variables", _requires),
    ),
)


@dataclass
class FakeLesson:
    """What run_check and Context use of a Lesson, without an emulator (a real-vault lesson has lab None)."""

    spec: LessonSpec = SPEC
    lab: object = None
    history_position: int = 0
    audit_position: int = 0
    watch: object = None


def check(exercise: str, namespace: dict | None = None, **lesson) -> Result:
    return run_check(FakeLesson(**lesson), exercise, namespace if namespace is not None else {})


def test_a_not_attempted_check():
    result = check("ex1")
    assert (result.lesson, result.exercise, result.title) == ("98", "ex1", "Not attempted")
    assert result.status == "not-attempted"
    assert result.message == "`thing` does not exist yet"
    assert result.passed == []
    assert not result


def test_an_incorrect_check_says_why_and_offers_a_hint():
    result = check("ex2")
    assert result.status == "incorrect"
    assert result.message == "`thing` is 2, it should be 3"
    assert result.hint_count == 2
    assert not result


def test_an_unavailable_check():
    result = check("ex3")
    assert result.status == "unavailable"
    assert result.message == "needs the emulator"


def test_a_passing_check_lists_what_it_verified():
    result = check("ex4")
    assert result.status == "correct"
    assert result.message == ""
    assert result.passed == ["first fact", "second fact"]
    assert result
    none = check("ex5")
    assert none.status == "correct"
    assert none.passed == []


def test_an_unexpected_exception_is_incorrect_in_one_line_without_a_traceback():
    result = check("ex6")
    assert result.status == "incorrect"
    assert result.message == "The check could not finish: RuntimeError: boom happened"
    assert "\n" not in result.message
    assert "Traceback" not in result.plain()
    quiet = check("ex7")
    assert quiet.status == "incorrect"
    assert quiet.message == "The check could not finish: KeyError"


def test_require_says_not_attempted_for_a_missing_name_and_incorrect_for_a_wrong_type():
    missing = check("ex9", {})
    assert missing.status == "not-attempted"
    assert missing.message == "`number` does not exist yet: run your code for this exercise first."
    wrong = check("ex9", {"number": "3"})
    assert wrong.status == "incorrect"
    assert wrong.message == "`number` should be a int, but it is a str."
    wrong_pair = check("ex9", {"number": 3, "pair": {1, 2}})
    assert wrong_pair.message == "`pair` should be a list or tuple, but it is a set."
    right = check("ex9", {"number": 3, "pair": (1, 2)})
    assert right.status == "correct"
    assert right.passed == ["number is 3"]


def test_an_unknown_exercise_is_a_key_error_listing_the_exercises():
    with pytest.raises(KeyError) as raised:
        check("ex10")
    assert raised.value.args[0] == (
        "lesson 98 has no exercise 'ex10'; its exercises are "
        "'ex1', 'ex2', 'ex3', 'ex4', 'ex5', 'ex6', 'ex7', 'ex8', 'ex9'"
    )
    with pytest.raises(KeyError, match="its exercises are 'ex1', 'ex2', 'ex3'"):
        lesson_spec("00").exercise("ex4")


def test_lessons_are_found_by_number():
    assert "00" in all_lessons()
    assert lesson_spec("0") is lesson_spec("00")
    assert [e.id for e in lesson_spec(0).exercises] == ["ex1", "ex2", "ex3"]
    with pytest.raises(KeyError, match="there is no lesson 97; lessons: 00"):
        lesson_spec("97")


# -- real-vault mode: the emulator's records are unavailable ---------------------------------------


def test_context_emulator_is_unavailable_on_a_real_vault():
    with pytest.raises(Unavailable, match="on a real vault, look at the vault's logs instead .they exist only once a diagnostic setting"):
        _ = Context(FakeLesson(lab=None), {}).emulator
    lab = object()
    assert Context(FakeLesson(lab=lab), {}).emulator is lab


def test_an_audit_based_check_is_unavailable_on_a_real_vault():
    result = check("ex8", lab=None)
    assert result.status == "unavailable"
    assert "emulator's own records" in result.message


def test_a_real_vault_lesson_neither_connects_nor_creates_anything(tmp_path, monkeypatch):
    def no_connect(*args, **kwargs):
        raise AssertionError("a real-vault lesson must not start or reach the emulator")

    import kvlab.connection

    monkeypatch.setattr(kvlab.connection, "connect", no_connect)
    lesson = kvlab.start_lesson("00", vault_url="https://example.vault.azure.net", state_dir=tmp_path)
    assert lesson.mode == "azure"
    assert lesson.lab is None
    assert lesson.vault_url() == AZURE_URL
    assert lesson.vault_url("kv-start") == AZURE_URL
    assert repr(lesson) == f"Lesson 00 - Start here: your first secret (against {AZURE_URL})"
    assert list(tmp_path.iterdir()) == []

    audited = run_check(Lesson(SPEC, vault_url=AZURE_URL, state_dir=tmp_path), "ex8", {})
    assert audited.status == "unavailable"
    assert list(tmp_path.iterdir()) == []


def test_a_real_vault_lesson_checks_through_the_sdk_and_records_progress_in_its_state_dir(tmp_path, emulator):
    """Pointed at a vault URL (here an emulator vault standing in for Azure), checks read what the SDK shows."""
    real = officer_vault(emulator, "real")
    kernel = Kernel()
    kernel.run(f"import kvlab\nlesson = kvlab.start_lesson('00', vault_url={real!r}, state_dir={str(tmp_path)!r})\n"
               "check, hint = lesson.check, lesson.hint")
    assert kernel.ns["lesson"].history_position == 2
    kernel.run("from datetime import datetime, timedelta, timezone\nimport secrets\n"
               "from azure.identity import DefaultAzureCredential\nfrom azure.keyvault.secrets import SecretClient\n"
               "_c = SecretClient(lesson.vault_url(), DefaultAzureCredential())\n"
               "_c.set_secret('old-one', secrets.token_urlsafe(), expires_on=datetime.now(timezone.utc) - timedelta(days=3))\n"
               "_c.set_secret('new-one', secrets.token_urlsafe(), expires_on=datetime.now(timezone.utc) + timedelta(days=3))")
    kernel.run(EX1)
    result = kernel.check("ex1")
    assert result.status == "correct", result.message
    assert result.passed == [f"`client` is a SecretClient for {real}",
                             "`stale` names exactly the 1 secrets whose expiry date has passed (old-one)"]
    kernel.run("stale = ['old-one', 'new-one']")
    assert kernel.check("ex1").message.startswith("`stale` names new-one, which does not expire for another 3 days")
    kernel.run(EX1)
    assert kernel.check("ex1").status == "correct"
    from kvlab import tracker

    assert tracker.load(tmp_path)["00"]["ex1"]["status"] == "correct"
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]
    kernel.close()


# -- stubs -------------------------------------------------------------------------------


STUB2 = "# Exercise 2 - store it\n# YOUR CODE HERE\nraise NotImplementedError('Exercise 2 - store it')"
DONE2 = "# Exercise 2 - store it\nthing = 3"


def test_a_stub_that_still_raises_is_not_attempted_and_a_replaced_one_is_checked():
    history = ["", "lesson = kvlab.start_lesson('98')", STUB2, "check('ex2')"]
    result = check("ex2", {"In": history}, history_position=2)
    assert result.status == "not-attempted"
    assert result.message == (
        "Exercise 2 still has its stub: replace `raise NotImplementedError(...)` with your code and run the cell."
    )
    history += [DONE2, "check('ex2')"]
    assert check("ex2", {"In": history}, history_position=2).status == "incorrect"  # the check itself ran
    assert check("ex4", {"In": ["", "# Exercise 4 - x\nraise NotImplementedError('Exercise 4 - x')", "# Exercise 4 - x\nx = 1"]}).status == "correct"


def test_the_newest_run_of_the_exercise_cell_counts():
    history = ["", DONE2, STUB2]
    assert check("ex2", {"In": history}).status == "not-attempted"


def test_stubs_before_the_lessons_set_up_cell_are_ignored():
    history = ["", STUB2, "lesson = kvlab.start_lesson('98')"]
    assert check("ex2", {"In": history}, history_position=3).status == "incorrect"


def test_another_exercises_stub_does_not_block_this_one():
    history = ["", "# Exercise 14 - later\nraise NotImplementedError('Exercise 14 - later')"]
    assert check("ex1", {"In": history}).message == "`thing` does not exist yet"
    assert check("ex4", {"In": history}).status == "correct"


def test_sources_are_the_non_empty_cells_since_the_set_up_cell():
    history = ["", "a = 1", "lesson = ...", "", "b = 2", None]
    assert Context(FakeLesson(history_position=3), {"In": history}).sources() == ["b = 2"]
    assert Context(FakeLesson(), {}).sources() == []


# -- rendering ---------------------------------------------------------------------------


def make(status: str = "incorrect", message: str = "Use <b>content_type</b> & retry", **kwargs) -> Result:
    values = dict(lesson="00", exercise="ex2", title="Store <your> secret", status=status, message=message,
                  passed=["the vault holds `first-secret`"], hint_count=2)
    values.update(kwargs)
    return Result(**values)


def test_plain_text_is_deterministic_and_exact():
    assert make().plain() == make().plain()
    assert make() == make()
    assert make().plain() == (
        "[FAIL] 00.ex2 Store <your> secret: Not yet\n"
        "    - the vault holds `first-secret`\n"
        "    Use <b>content_type</b> & retry\n"
        "    A hint: hint('ex2')"
    )
    assert repr(make()) == make().plain()
    assert make("correct", "", passed=["a", "b"]).plain() == "[PASS] 00.ex2 Store <your> secret: Correct\n    - a\n    - b"
    assert make("not-attempted", "line one\nline two", passed=[]).plain() == (
        "[TODO] 00.ex2 Store <your> secret: Not attempted yet\n    line one\n    line two"
    )
    assert make("unavailable", "no audit", passed=[]).plain() == "[SKIP] 00.ex2 Store <your> secret: Can't be checked here\n    no audit"


def test_html_escapes_what_it_shows():
    page = make(passed=["a <script> item"]).html()
    assert "Use &lt;b&gt;content_type&lt;/b&gt; &amp; retry" in page
    assert "Store &lt;your&gt; secret" in page
    assert "a &lt;script&gt; item" in page
    assert "<script>" not in page and "<your>" not in page and "<b>content_type" not in page
    assert "data-status='incorrect'" in page
    assert "hint('ex2')" in page
    assert "hint(" not in make("correct", "").html()


def test_the_mime_bundle_carries_the_machine_readable_outcome():
    bundle = make()._repr_mimebundle_()
    assert MIME == "application/vnd.kvlab.check+json"
    assert set(bundle) == {"text/plain", "text/html", MIME}
    assert bundle[MIME] == {"lesson": "00", "exercise": "ex2", "status": "incorrect",
                            "message": "Use <b>content_type</b> & retry"}
    assert bundle["text/plain"] == make().plain()
    assert make().id == "00.ex2"


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status 'passed'"):
        make("passed")


# -- hints -------------------------------------------------------------------------------


def test_each_hint_call_shows_one_more_up_to_the_last():
    shown: dict[str, int] = {}
    first = make_hint(SPEC, "ex2", shown)
    assert (first.number, first.total, first.text) == (1, 2, "first hint")
    assert first.plain() == "Hint 1/2 for ex2: first hint"
    assert "again for the next one" in first._repr_mimebundle_()["text/html"]
    second = make_hint(SPEC, "ex2", shown)
    assert second.plain() == "Hint 2/2 for ex2: second hint"
    assert "again for the next one" not in second._repr_mimebundle_()["text/html"]
    assert make_hint(SPEC, "ex2", shown).plain() == "Hint 2/2 for ex2: second hint"
    assert shown == {"ex2": 2}
    assert make_hint(SPEC, "ex6", shown).plain() == "Hint 1/1 for ex6: a hint"


def test_an_exercise_without_hints_says_so_and_unknown_ones_raise():
    assert make_hint(SPEC, "ex1", {}).plain() == "Hint 0/0 for ex1: there is no hint for this exercise."
    with pytest.raises(KeyError, match="no exercise 'ex0'"):
        make_hint(SPEC, "ex0", {})


def test_hint_escapes_html():
    hint = Hint("ex1", 1, 1, "use <SecretClient> & co")
    assert "use &lt;SecretClient&gt; &amp; co" in hint._repr_mimebundle_()["text/html"]
    assert repr(hint) == "Hint 1/1 for ex1: use <SecretClient> & co"


def test_lesson_hints_are_per_lesson_run():
    lesson = Lesson(lesson_spec("00"), vault_url=AZURE_URL)
    assert lesson.hint("ex1").number == 1
    assert lesson.hint("ex1").text.startswith("client.list_properties_of_secrets() yields one SecretProperties")
    assert lesson.hint("ex1").number == 3
    assert lesson.hint("ex1").number == 3  # the last one again
    assert lesson.hint("ex3").number == 1
    assert Lesson(lesson_spec("00"), vault_url=AZURE_URL).hint("ex1").number == 1


# -- lesson 00 against the emulator ----------------------------------------------------------


class Kernel(notebook_kernel.Kernel):
    def run_failing(self, source: str, error: type[BaseException]) -> None:
        with pytest.raises(error):
            self.run(source)

    def start(self) -> None:
        self.run(SETUP)


SETUP = "import kvlab\nlesson = kvlab.start_lesson('00')\ncheck, hint = lesson.check, lesson.hint"
EX1 = (
    "# Exercise 1 - create `client`, a SecretClient for lesson.vault_url() with DefaultAzureCredential()\n"
    "from datetime import datetime, timezone\n"
    "from azure.identity import DefaultAzureCredential\n"
    "from azure.keyvault.secrets import SecretClient\n\n"
    "client = SecretClient(vault_url=lesson.vault_url(), credential=DefaultAzureCredential())\n"
    "stale = [p.name for p in client.list_properties_of_secrets() if p.expires_on and p.expires_on < datetime.now(timezone.utc)]"
)
EX2 = (
    "# Exercise 2 - store a generated value as `first-secret`, content type text/plain\n"
    "import secrets\nfrom datetime import datetime, timedelta, timezone\n\n"
    "client.set_secret('first-secret', secrets.token_urlsafe(24), content_type='text/plain',\n"
    "                  expires_on=datetime.now(timezone.utc) + timedelta(days=90))"
)
EX3 = (
    "# Exercise 3 - read the value of `first-secret` from the vault into `value`\n"
    "value = client.get_secret('first-secret').value"
)


@pytest.fixture
def kernel(emulator):
    with notebook_kernel.running(kernel=Kernel()) as k:
        k.start()
        yield k


def test_the_correct_answers_are_correct(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run(EX3)
    url = emulator.vault_url("kv-start")
    one, two, three = kernel.check("ex1"), kernel.check("ex2"), kernel.check("ex3")
    assert one.status == "correct", one.message
    expired = sorted(n for n, exp in emulator_expiries(emulator).items() if exp is not None and exp < time.time())
    assert 2 <= len(expired) <= 4
    assert one.passed == [f"`client` is a SecretClient for {url}", "it signs in as you (the audit log names the caller)",
                          f"`stale` names exactly the {len(expired)} secrets whose expiry date has passed "
                          f"({', '.join(expired)})", "no value was read to find them (the audit log shows no SecretGet)"]
    assert two.status == "correct", two.message
    assert two.passed[:3] == ["the vault holds `first-secret`", "this run set it (audit: 1 SecretSet by learner)",
                              "its content type is text/plain"]
    assert two.passed[3].startswith("the value of `first-secret` is as unguessable as a generated one")
    assert two.passed[4:] == ["it expires in 90 days"]
    assert three.status == "correct", three.message
    assert three.passed == ["`value` holds the current value of `first-secret`",
                            "the audit log shows your read (as learner)", "the value appears nowhere in your code"]
    assert [one.lesson, one.exercise] == ["00", "ex1"]


def emulator_expiries(emulator) -> dict:
    """Each secret of kv-start and its expiry (epoch seconds or None), read behind the vault's back."""
    return {name: emulator.inspect_secret("kv-start", name)["exp"] for name in emulator.secret_values("kv-start")}


def test_the_labs_stubs_are_not_attempted(kernel):
    notebook_kernel.assert_stubs_not_attempted(kernel, notebook_kernel.code_cells("00-start-here.ipynb", "labs"), 3)


def test_the_lab_starts_with_a_colleagues_secrets_drawn_anew_at_each_set_up(kernel, emulator):
    """Some expired, one not yet, one never: what exercise 1 takes stock of, different in every run."""
    now = time.time()
    draws = []
    for _ in range(4):
        kernel.start()
        found = emulator_expiries(emulator)
        assert 4 <= len(found) <= 6 and "first-secret" not in found
        assert sum(1 for exp in found.values() if exp is not None and exp < now) >= 2
        assert any(exp is not None and exp > now for exp in found.values())
        assert any(exp is None for exp in found.values())
        draws.append(frozenset(found))
    assert len(set(draws)) > 1  # the same 4-6 of 10 names four times in a row: odds below 1 in 10**5


def test_the_guided_notebook_shows_a_new_vault_empty(emulator):
    lesson = kvlab.start_lesson("00", demo=True)
    assert lesson.lab.secret_values("kv-start") == {}


def test_ex1_a_client_without_stock_taking_is_not_attempted_yet_and_says_what_is_missing(kernel):
    kernel.run(EX1.split("\nstale =")[0])
    result = kernel.check("ex1")
    assert result.status == "not-attempted"
    assert result.message == "`stale` does not exist yet: run your code for this exercise first."


def test_ex1_a_secret_that_has_not_expired_or_never_expires_is_named(kernel, emulator):
    found = emulator_expiries(emulator)
    never = next(name for name, exp in found.items() if exp is None)
    later = sorted(name for name, exp in found.items() if exp is not None and exp > time.time())[0]
    kernel.run(EX1 + f"\nstale.append({never!r})")
    assert kernel.check("ex1").message == (
        f"`stale` names {never}, which has no expiry date: it never expires. Compare each secret's expires_on with "
        "datetime.now(timezone.utc), and keep only those in the past.")
    kernel.run(EX1 + "\nstale = [p.name for p in client.list_properties_of_secrets() if p.expires_on]")
    message = kernel.check("ex1").message
    assert message.startswith(f"`stale` names {later}, which does not expire for another "), message


def test_ex1_a_missed_secret_and_an_unknown_name_are_incorrect(kernel):
    kernel.run(EX1 + "\nstale = stale[1:]")
    result = kernel.check("ex1")
    assert result.status == "incorrect"
    assert result.message.startswith("`stale` misses 1 of the ")
    kernel.run(EX1 + "\nstale = stale + ['sql-db-password']")
    assert kernel.check("ex1").message.startswith("`stale` names sql-db-password, but the vault holds no secret")


def test_ex1_names_copied_from_another_run_fail_once_the_set_up_draws_again(kernel):
    kernel.run(EX1)
    assert kernel.check("ex1").status == "correct"
    copied = kernel.ns["stale"]
    for _ in range(5):  # a new draw keeps the same expired names now and then; five in a row almost never
        kernel.start()
        kernel.run(EX1.split("\nstale =")[0] + f"\nstale = {copied!r}")
        if kernel.check("ex1").status == "incorrect":
            return
    pytest.fail("five new set-ups in a row drew the same expired secrets")


def test_ex1_reading_values_to_find_the_expired_ones_is_incorrect(kernel):
    kernel.run(EX1.split("\nstale =")[0] + "\nstale = [p.name for p in client.list_properties_of_secrets()\n"
               "         if client.get_secret(p.name).properties.expires_on and "
               "client.get_secret(p.name).properties.expires_on < datetime.now(timezone.utc)]")
    result = kernel.check("ex1")
    assert result.status == "incorrect"
    assert "(SecretGet), which taking stock does not need: list_properties_of_secrets() gives every property but " \
           "the value" in result.message


def test_ex2_without_an_expiry_or_with_another_one_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX2.replace(",\n                  expires_on=datetime.now(timezone.utc) + timedelta(days=90)", ""))
    assert kernel.check("ex2").message == (
        "`first-secret` has no expiry date: give set_secret expires_on, 90 days from now, so the next person who "
        "takes stock knows when it is due for rotation.")
    kernel.run(EX2.replace("days=90", "days=365"))
    assert kernel.check("ex2").message == (
        "`first-secret` expires in 365 days, not 90 days from now: "
        "expires_on=datetime.now(timezone.utc) + timedelta(days=90).")


def test_a_stub_run_again_after_the_answer_is_not_attempted(kernel):
    kernel.run(EX1)
    assert kernel.check("ex1").status == "correct"
    stub = "# Exercise 1 - create `client`\n# YOUR CODE HERE\nraise NotImplementedError('Exercise 1 - create `client`')"
    kernel.run_failing(stub, NotImplementedError)
    assert kernel.check("ex1").status == "not-attempted"


def test_ex1_before_any_code_is_not_attempted(kernel):
    result = kernel.check("ex1")
    assert result.status == "not-attempted"
    assert result.message == "`client` does not exist yet: run your code for this exercise first."


def test_ex1_a_client_for_another_vault_is_incorrect(kernel, emulator):
    other = emulator.vault_url("kv-other")
    kernel.run(EX1.split("\nstale =")[0].replace("vault_url=lesson.vault_url()", f"vault_url={other!r}"))
    result = kernel.check("ex1")
    assert result.status == "incorrect"
    assert result.message == (
        f"`client` talks to {other.rstrip('/')}, but this lesson's vault is {emulator.vault_url('kv-start')}. "
        "Pass vault_url=lesson.vault_url() when you create it."
    )
    assert result.hint_count == 3
    assert "A hint: hint('ex1')" in result.plain()


def test_ex1_the_credential_instead_of_a_client_is_incorrect(kernel):
    kernel.run("from azure.identity import DefaultAzureCredential\nclient = DefaultAzureCredential()")
    result = kernel.check("ex1")
    assert result.status == "incorrect"
    assert result.message == "`client` should be a SecretClient, but it is a DefaultAzureCredential."
    kernel.ns["client"].close()


def test_ex1_a_client_secret_in_the_code_is_incorrect(kernel):
    kernel.run(
        "# Exercise 1 - create `client`\n"
        "from azure.identity import ClientSecretCredential\n"
        "from azure.keyvault.secrets import SecretClient\n"
        "credential = ClientSecretCredential('00000000-0000-0000-0000-000000000000',\n"
        "                                    '11111111-1111-1111-1111-111111111111',\n"
        "                                    'fake-client-secret-for-tests')  # pragma: allowlist secret\n"
        "client = SecretClient(vault_url=lesson.vault_url(), credential=credential)"
    )
    result = kernel.check("ex1")
    assert result.status == "incorrect"
    assert result.message.startswith("`client` could not sign in (ClientAuthenticationError)")
    assert "no password or client secret goes into your code" in result.message


def test_ex2_a_secret_under_another_name_is_incorrect(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2.replace("'first-secret'", "'my-first-secret'"))
    assert emulator.inspect_secret("kv-start", "my-first-secret") is not None
    result = kernel.check("ex2")
    assert result.status == "incorrect"
    assert result.message == "The vault has no secret named `first-secret` yet. Check the name: it must be exactly first-secret."


def test_ex2_a_secret_without_its_content_type_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX2.replace(", content_type='text/plain'", ""))
    result = kernel.check("ex2")
    assert result.status == "incorrect"
    assert result.message == "Give the secret content_type='text/plain', so whoever reads it knows what it holds."
    assert result.passed == []


def test_ex2_a_secret_set_before_start_lesson_does_not_count(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2)
    assert kernel.check("ex2").status == "correct"
    kernel.start()  # run the set-up cell again: a fresh run
    assert emulator.inspect_secret("kv-start", "first-secret") is None
    result = kernel.check("ex2")
    assert result.status == "incorrect"
    assert result.message.startswith("The vault has no secret named `first-secret` yet.")


def test_ex2_a_secret_the_audit_log_does_not_show_in_this_run_does_not_count(kernel, emulator):
    """Even if the secret survived, only a SecretSet after the set-up cell counts."""
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.ns["lesson"].audit_position = emulator.audit_position()  # as if it had been set before this run
    result = kernel.check("ex2")
    assert result.status == "incorrect"
    assert result.message == (
        "`first-secret` exists, but it was not set during this run of the lesson. Run your set_secret cell."
    )


def test_ex2_a_name_in_other_letter_case_is_the_same_secret(kernel):
    """Key Vault secret names are case-insensitive: First-Secret is first-secret."""
    kernel.run(EX1)
    kernel.run(EX2.replace("'first-secret'", "'First-Secret'"))
    result = kernel.check("ex2")
    assert result.status == "correct", result.message
    kernel.run(EX3.replace("'first-secret'", "'FIRST-SECRET'"))
    result = kernel.check("ex3")
    assert result.status == "correct", result.message


def test_ex3_a_hard_coded_value_is_incorrect(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run("print(client.get_secret('first-secret').value)")  # looked at it, then pasted it
    stored = emulator.inspect_secret("kv-start", "first-secret")["value"]
    kernel.run(f"# Exercise 3 - read the value\nvalue = {stored!r}")
    assert any(stored in source for source in kernel.ns["In"])
    result = kernel.check("ex3")
    assert result.status == "incorrect"
    assert result.message == "The secret's value appears in your code. Read it from the vault instead of typing it."


def test_ex3_a_value_not_read_from_the_vault_in_this_run_is_incorrect(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2.replace("client.set_secret('first-secret', secrets.token_urlsafe(24),",
                           "generated = secrets.token_urlsafe(24)\nclient.set_secret('first-secret', generated,"))
    kernel.run("# Exercise 3 - read the value\nvalue = generated")
    assert kernel.ns["value"] == emulator.inspect_secret("kv-start", "first-secret")["value"]
    result = kernel.check("ex3")
    assert result.status == "incorrect"
    assert result.message == "`value` was not read from the vault in this run: the audit log shows no SecretGet."


def test_ex3_the_secret_object_instead_of_its_value_is_incorrect(kernel):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run("value = client.get_secret('first-secret')")
    result = kernel.check("ex3")
    assert result.status == "incorrect"
    assert result.message == "`value` should be a str (the secret's value), but it is a KeyVaultSecret."


def test_start_lesson_again_resets_the_vault_and_earlier_answers_stop_counting(kernel, emulator):
    kernel.run(EX1)
    kernel.run(EX2)
    kernel.run(EX3)
    assert [kernel.check(e).status for e in ("ex1", "ex2", "ex3")] == ["correct"] * 3
    assert emulator.inspect_secret("kv-start", "first-secret") is not None

    kernel.start()
    assert emulator.inspect_secret("kv-start", "first-secret") is None
    assert [v["name"] for v in emulator.list_vaults() if v["name"] == "kv-start"] == ["kv-start"]
    assert kernel.check("ex2").status == "incorrect"
    stale = kernel.check("ex3")  # `value` is still in the namespace, from the earlier run
    assert stale.status == "incorrect"
    assert stale.message == "`value` is not the value stored in `first-secret`. Read it with client.get_secret(...).value."

    kernel.run(EX2)  # the old client works against the new vault: the learner's grant was restored
    kernel.run(EX3)
    assert kernel.check("ex2").status == "correct"
    assert kernel.check("ex3").status == "correct"


def test_run_check_directly_with_a_namespace(emulator):
    namespace = {"In": [""]}
    lesson = kvlab.start_lesson("00")
    assert lesson.mode == "emulator" and lesson.lab is not None
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    with DefaultAzureCredential() as credential, SecretClient(lesson.vault_url(), credential) as client:
        namespace["client"] = client
        namespace["stale"] = [p.name for p in client.list_properties_of_secrets()
                              if p.expires_on and p.expires_on.timestamp() < time.time()]
        namespace["In"].append("client = SecretClient(lesson.vault_url(), DefaultAzureCredential())")
        assert run_check(lesson, "ex1", namespace).status == "correct"
        # what the client does is judged, not what the code mentions: a comment cannot fail a right answer
        namespace["In"].append("# not a ClientSecretCredential, no client_secret: DefaultAzureCredential")
        assert run_check(lesson, "ex1", namespace).status == "correct"


# -- solutions, apart from hints ----------------------------------------------------------------


@pytest.mark.parametrize("number", all_lessons())
def test_every_exercise_has_a_solution_and_no_hint_gives_it_away(number):
    from kvlab.checks import make_solution

    spec = lesson_spec(number)
    for exercise in spec.exercises:
        solution = make_solution(spec, exercise.id)
        assert solution.source.startswith(f"solutions/{number}-") and solution.code.strip()
        assert "BEGIN SOLUTION" not in solution.code and "END SOLUTION" not in solution.code
        assert 2 <= len(exercise.hints), exercise.id  # a nudge, then something closer
        lines = [line.strip() for line in solution.code.splitlines() if len(line.strip()) > 30]
        given_away = [line for line in lines for hint in exercise.hints if line in hint]
        assert given_away == [], (exercise.id, given_away)


def test_solution_shows_the_solution_notebooks_code_plain_and_rich(emulator):
    kernel = Kernel()
    kernel.run("import kvlab\nlesson = kvlab.start_lesson('00')\nsolution = lesson.solution")
    kernel.run("_s = solution('ex3')")
    shown = kernel.ns["_s"]
    assert shown.plain().splitlines()[0] == "Solution for ex3 (from solutions/00-start-here.ipynb):"
    assert "client.get_secret(" in shown.code and "value" in shown.code
    assert "<pre" in shown._repr_mimebundle_()["text/html"]
    with pytest.raises(KeyError, match="has no exercise 'ex9'"):
        kernel.run("solution('ex9')")
