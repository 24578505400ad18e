"""The page in a real headless Chromium: pick, submit, read, answer, switch language, and see
the model server go down and come back; describe symptoms in English and Korean sentences with a
negation. Saves test-artifacts/ui.png (and ui-server-down.png, ui-free-text.png).
"""

from __future__ import annotations

import shutil
import time

import pytest
from testkit import CHROMIUM, REPO, chromium_page

from pipelines.local_stack.services import free_port
from pipelines.local_stack.ui_server import start_ui

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def stack(trained_model_dir, data_dir, tmp_path_factory, model_server_starter):
    """Its own model server (the test stops and restarts it) and the UI in front of it."""
    logs = tmp_path_factory.mktemp("browser-logs")
    server = model_server_starter(trained_model_dir, logs)
    ui = start_ui(server.url, free_port(), data_dir, logs)
    state = {"server": server, "ui": ui, "logs": logs, "start": model_server_starter}
    yield state
    ui.stop()
    state["server"].stop()


@pytest.fixture
def page(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    with chromium_page(tmp_path / "chromium-profile", 1280, 15_000) as page:
        yield page


def pick(page, text: str) -> None:
    """Type into the picker, take the first match with Enter, close the list with Escape."""
    field = page.locator("#sdx-picker input")
    field.click()
    field.fill(text)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def chips(page) -> list[str]:
    return [t.strip() for t in page.locator("#sdx-picker .token").all_inner_texts()]


def test_symptom_form_in_a_browser(stack, page, trained_model_dir):
    started = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(stack["ui"].url)
    page.get_by_text("This is not a diagnosis").wait_for()
    page.get_by_text("Model server: ready.").wait_for()

    # Pick three symptoms by typing their display names.
    for name in ("Itching", "Skin rash", "Nodal skin eruptions"):
        pick(page, name)
    assert chips(page) == ["Itching", "Skin rash", "Nodal skin eruptions"]

    # Submit; read the ranked list and the symptom comparison.
    page.locator("#sdx-submit").click()
    cards = page.locator("#sdx-details .sdx-card")
    cards.first.wait_for()
    assert cards.count() == 5
    names = page.locator("#sdx-ranking li .sdx-name").all_inner_texts()
    assert len(names) == 5 and names[0] == "Fungal infection"
    percents = page.locator("#sdx-ranking li .sdx-pct").all_inner_texts()
    assert all(p.endswith("%") for p in percents)
    first = cards.first
    assert first.locator("h3").inner_text().startswith("1. Fungal infection")
    supporting = first.locator(".sdx-supporting").inner_text()
    assert "Itching" in supporting or "Skin rash" in supporting
    assert "Precautions" in first.inner_text()
    assert "Bath twice" in first.inner_text()

    # Answer the suggested question with yes: it becomes a chip and the result is asked again.
    question = page.locator("#sdx-question").inner_text()
    assert "Do you have" in question
    asked = question.split("Do you have", 1)[1].strip(" ?\n")
    page.locator("#sdx-yes").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#sdx-picker .token').length === n", arg=4
    )
    assert chips(page)[-1] == asked
    page.locator("#sdx-question").filter(has_not_text=asked).wait_for()

    # Switch to Korean: interface, symptom chips and disease names.
    page.locator("#sdx-language").get_by_text("한국어").click()
    page.get_by_text("증상 확인 도우미").wait_for()
    page.locator("#sdx-ranking").get_by_text("진균 감염").wait_for()
    assert chips(page)[:3] == ["가려움증", "피부 발진", "결절성 피부 발진"]
    assert "나의 증상과 이 질환 비교" in cards.first.inner_text()
    assert "영어로 표시합니다" in page.locator("#sdx-details").inner_text()
    page.locator("#sdx-details").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "ui.png"), full_page=True)

    # Stop the model server: the page says so plainly and keeps the chosen symptoms.
    stack["server"].stop()
    page.locator("#sdx-submit").click()
    page.locator("#sdx-status").get_by_text("모델 서버에 연결할 수 없습니다").wait_for()
    assert page.locator("#sdx-details .sdx-card").count() == 0
    assert len(chips(page)) == 4
    page.locator("#sdx-server").get_by_text("응답 없음").wait_for()
    page.screenshot(path=str(ARTIFACTS / "ui-server-down.png"), full_page=True)

    # Bring it back on the same address: the next submission works again.
    port = int(stack["server"].url.rsplit(":", 1)[1])
    stack["server"] = stack["start"](trained_model_dir, stack["logs"], http_port=port)
    page.locator("#sdx-submit").click()
    page.locator("#sdx-ranking").get_by_text("진균 감염").wait_for()
    assert page.locator("#sdx-status").inner_text().strip() == ""
    page.locator("#sdx-server").get_by_text("모델 서버: 정상.").wait_for()
    assert time.monotonic() - started < 90


def describe(page, text: str) -> str:
    """Type ``text`` into the free-text box, add it, and return what the page says it read."""
    box = page.locator("#sdx-free-text textarea")
    box.fill(text)
    page.locator("#sdx-add-text").click()
    said = page.locator("#sdx-understood")
    page.wait_for_function(
        "() => document.querySelector('#sdx-free-text textarea').value === ''"
        " && document.querySelector('#sdx-understood').innerText.trim() !== ''"
    )
    return said.inner_text()


def test_sentences_with_a_negation_in_english_and_korean(stack, page):
    """Free text read by ``parse_symptoms``: symptoms said are picked, the one denied is shown
    and sent as ``absent``, and the page ranks; then the same in Korean."""
    started = time.monotonic()
    page.goto(stack["ui"].url)
    page.get_by_text("Model server: ready.").wait_for()

    said = describe(page, "I've been throwing up and have a bad headache but no fever")
    assert "Understood: Vomiting, Headache." in said
    assert "You said you do not have: High fever." in said
    assert "Not understood" not in said
    assert chips(page) == ["Vomiting", "Headache"]
    page.locator("#sdx-submit").click()
    page.locator("#sdx-ranking li").first.wait_for()
    assert page.locator("#sdx-ranking li").count() == 5
    # the denial went with the request: the result says it was taken into account
    page.locator("#sdx-notes").get_by_text("You said you do not have: High fever.").wait_for()

    page.locator("#sdx-clear").click()
    page.wait_for_function("() => !document.querySelector('#sdx-picker .token')")
    page.locator("#sdx-language").get_by_text("한국어").click()
    page.get_by_text("증상 확인 도우미").wait_for()
    said = describe(page, "머리가 아프고 토했어요, 열은 없어요")
    assert "인식한 증상: 두통, 구토." in said
    assert "없다고 한 증상: 고열." in said
    assert "인식하지 못한" not in said
    assert chips(page) == ["두통", "구토"]
    page.locator("#sdx-submit").click()
    page.locator("#sdx-ranking li").first.wait_for()
    assert page.locator("#sdx-ranking li").count() == 5
    assert "가능성 높은 질환" in page.locator("#sdx-ranking").inner_text()
    page.locator("#sdx-notes").get_by_text("없다고 답한 증상: 고열.").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-free-text.png"), full_page=True)
    assert time.monotonic() - started < 45
