"""The web head in a real browser: Debian's headless chromium driven by Selenium through its chromedriver.

Set WEB_SCREENSHOTS=DIR to keep a screenshot of each page visited.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.web_support import build_world

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and REQUIRE_SERVICES is set")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def visit(browser, live_server, path, screenshot=None):
    browser.get(live_server.url + path)
    folder = os.environ.get("WEB_SCREENSHOTS")
    if folder and screenshot:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1280, min(max(height + 40, 600), 4000))
        browser.save_screenshot(str(Path(folder) / f"{screenshot}.png"))
        browser.set_window_size(1280, 900)


def cells(browser, selector):
    from selenium.webdriver.common.by import By

    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, selector)]


@pytest.fixture
def world(transactional_db, settings):
    settings.BACKFILL_INTERVAL = 900
    return build_world(locales=6, runs=8, pushes=9)


def test_the_overview_loads(browser, live_server, world):
    visit(browser, live_server, "/", "overview")
    assert browser.title.startswith("Trees")
    assert cells(browser, "#trees tr.tree td:first-child a") == sorted(world["trees"])
    # The style sheet came through whitenoise and applied: the table has its background.
    from selenium.webdriver.common.by import By

    table = browser.find_element(By.ID, "trees")
    assert table.value_of_css_property("background-color") in ("rgba(255, 255, 255, 1)", "rgb(255, 255, 255)")


def test_sorting_a_tree_by_missing_reorders_the_rows(browser, live_server, world):
    from selenium.webdriver.common.by import By

    visit(browser, live_server, "/trees/fx-main/", "tree")
    assert [row.get_attribute("data-locale") for row in browser.find_elements(By.CSS_SELECTOR, "tr.locale")] == \
        world["locales"]
    browser.find_element(By.CSS_SELECTOR, "a.sort-missing").click()
    missing = [int(text) for text in cells(browser, "tr.locale td.missing")]
    assert missing == sorted(missing, reverse=True) and missing != [int(t) for t in missing[::-1]]
    browser.find_element(By.CSS_SELECTOR, "a.sort-missing").click()  # again: the other way round
    again = [int(text) for text in cells(browser, "tr.locale td.missing")]
    assert again == sorted(missing)
    assert "order=asc" in browser.current_url


def test_a_locale_chart_shows_one_point_per_run(browser, live_server, world):
    from selenium.webdriver.common.by import By

    visit(browser, live_server, f"/trees/fx-main/{world['locales'][2]}/", "locale")
    points = browser.find_elements(By.CSS_SELECTOR, "svg.history circle.run")
    assert len(points) == 8
    assert all(point.is_displayed() for point in points)
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.file")) == 2


def test_a_locale_chart_shows_one_point_per_run_of_its_window_and_pages_to_older_runs(browser, live_server, world,
                                                                                      monkeypatch):
    from selenium.webdriver.common.by import By

    from web import queries

    monkeypatch.setattr(queries, "RUNS_PER_PAGE", 5)
    visit(browser, live_server, f"/trees/fx-main/{world['locales'][2]}/", "locale_window")
    points = lambda: browser.find_elements(By.CSS_SELECTOR, "svg.history circle.run")  # noqa: E731
    assert len(points()) == 5 and all(point.is_displayed() for point in points())
    browser.find_element(By.CSS_SELECTOR, "a.older").click()
    browser.implicitly_wait(0)
    assert len(points()) == 3 and not browser.find_elements(By.CSS_SELECTOR, "a.older")  # 8 runs: 5 + 3
    browser.implicitly_wait(5)
    browser.find_element(By.CSS_SELECTOR, "a.newest").click()
    assert len(points()) == 5


def test_the_push_log_pages_and_filters(browser, live_server, world, monkeypatch):
    from selenium.webdriver.common.by import By

    from web import queries

    monkeypatch.setattr(queries, "PUSHES_PER_PAGE", 3)
    visit(browser, live_server, f"/pushes/{world['failing']}/", "pushes")
    ids = lambda: [int(row.get_attribute("data-push-id")) for row in browser.find_elements(By.CSS_SELECTOR, "tr.push")]  # noqa: E731
    assert ids() == [9, 8, 7]
    browser.find_element(By.CSS_SELECTOR, "a.older").click()
    assert ids() == [6, 5, 4]
    browser.find_element(By.CSS_SELECTOR, "a.older").click()
    browser.implicitly_wait(0)
    assert ids() == [3, 2, 1] and not browser.find_elements(By.CSS_SELECTOR, "a.older")
    browser.implicitly_wait(5)
    box = browser.find_element(By.NAME, "user")
    box.clear()
    box.send_keys("pusher0@example.com")
    box.submit()
    assert ids() == [8, 6, 4]
    assert "user=pusher0%40example.com" in browser.current_url


def test_status_flags_a_repository_in_back_off(browser, live_server, world):
    from selenium.webdriver.common.by import By

    visit(browser, live_server, "/status/", "status")
    flagged = browser.find_elements(By.CSS_SELECTOR, "#repositories tr.backoff")
    assert [row.get_attribute("data-repository") for row in flagged] == [world["failing"]]
    assert "backing off until" in flagged[0].text
    assert "3" in browser.find_element(By.ID, "dead-letters").text
