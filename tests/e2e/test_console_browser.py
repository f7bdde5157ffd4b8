"""The police console in a real browser (Debian's chromium, driven by Selenium), against
real gunicorn, a real RQ worker, Redis and the embedded store.

One browser and one stack for the module; the tests run in order on one sample county.
Screenshots of the inbox, a dispatch, the map and the supervisor's page are written
to var/screenshots/ (docs/console.md says what each shows).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from deploy.processes import Stack, app_env
from gateway.access import mfa
from gateway.records.people import Officer
from gateway.sample import cell_code
from grid.documents import Dispatch
from tests.conftest import TEST_DATA_KEYS, with_database
from tests.helpers import auth, token_of

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
SECRET = "console-e2e-secret"
WF_OFFICER = "+8613800003001"  # 乌峰派出所
NT_OFFICER = "+8613800003002"  # 南台派出所
SUPERVISOR = "+8613800003099"
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1366,768")


class Console:
    """The stack, the browser, and what the tests share (the county, the clues filed)."""

    def __init__(self, base: str, county: Any, browser: webdriver.Chrome) -> None:
        self.base = base
        self.county = county
        self.browser = browser
        self.clues: dict[str, str] = {}  # name → report code
        self.cookies: dict[str, list[dict[str, Any]]] = {}  # who → their session cookies

    def open(self, path: str) -> None:
        self.browser.get(self.base + path)

    def wait(self, condition: Any, timeout: float = 30.0) -> Any:
        # A page being replaced by the next one: its elements go stale; ask again.
        return WebDriverWait(self.browser, timeout, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(condition)

    def text(self) -> str:
        return self.browser.find_element(By.TAG_NAME, "body").text

    def log_in(self, phone: str, otp: str | None = None) -> None:
        self.browser.delete_all_cookies()
        self.open("/console/login")
        find = self.browser.find_element
        find(By.ID, "phone").send_keys(phone)
        find(By.ID, "password").send_keys(self.county.password)
        if otp:
            find(By.ID, "otp").send_keys(otp)
        find(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
        self.wait(lambda b: "/console/login" not in b.current_url)
        self.cookies[phone] = self.browser.get_cookies()

    def become(self, phone: str) -> None:
        """Switch to someone logged in before (their session cookie back in the browser)."""
        self.open("/console/login")
        self.browser.delete_all_cookies()
        for cookie in self.cookies[phone]:
            self.browser.add_cookie(cookie)

    def file(self, name: str, village: int, details: str) -> str:
        """A report filed through the API by a teacher, in a cell of 乌峰派出所."""
        resp = requests.post(f"{self.base}/api/v1/reports", timeout=10,
                             headers=auth(token_of(self.county, "reporter 王丽")), json={
                                 "client_id": f"console-{uuid.uuid4().hex[:12]}",
                                 "category": "CHILD", "details": details,
                                 "grid_code": cell_code(0, village, 1)})
        assert resp.status_code == 201, resp.text
        self.clues[name] = resp.json()["code"]
        return self.clues[name]

    def dispatch_of(self, name: str, station: str = "530627-WF") -> Dispatch:
        def routed() -> Dispatch | None:
            return Dispatch.objects(report_code=self.clues[name], station_code=station).first()
        deadline = time.monotonic() + 30
        while (found := routed()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert found is not None, f"{name} never reached {station}"
        return found

    def shoot(self, name: str, whole_page: bool = False) -> Path:
        """A screenshot at 1366 px wide: the window as it is, or the whole page's height."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        if whole_page:
            height = self.browser.execute_script("return document.documentElement.scrollHeight;")
            self.browser.set_window_size(1366, min(int(height) + 140, 4000))
        try:
            assert self.browser.save_screenshot(str(path))
        finally:
            self.browser.set_window_size(1366, 768)
        return path

    def csp_violations(self) -> list[str]:
        return [e["message"] for e in self.browser.get_log("browser")
                if "Content Security Policy" in e["message"]]


@pytest.fixture(scope="module")
def console(stores, tmp_path_factory) -> Iterator[Console]:
    from mongoengine.connection import get_db

    from gateway import gridcache
    from gateway.app import create_app
    from gateway.extensions import redis_store
    from gateway.settings import Settings
    from gateway.startup import ensure_indexes
    from tests.county_template import load_county
    from tests.fakes import recording_server

    mongo_uri, redis_url = stores
    settings = Settings(mongodb_uri=with_database(mongo_uri, f"sg_console_{uuid.uuid4().hex[:10]}"),
                        redis_url=redis_url, testing=True, token_cache_s=0,
                        data_keys=TEST_DATA_KEYS, case_window_s=0)
    create_app(settings)
    redis_store.conn.flushdb()
    ensure_indexes()
    county = load_county(get_db(), settings)
    gridcache.bump_version()
    tmp = tmp_path_factory.mktemp("console")
    stack = Stack(tmp / "logs")
    with recording_server() as carrier:
        env = app_env(settings.mongodb_uri, redis_url, settings.data_keys,
                      SAFEGRID_CASE_WINDOW_S="0", SAFEGRID_SWEEP_AFTER_S="1",
                      SAFEGRID_SMS_ENABLED="1", SAFEGRID_SMS_WEBHOOK_SECRET=SECRET,
                      SAFEGRID_KANNEL_SENDSMS_URL=f"{carrier.url}/cgi-bin/sendsms")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium'}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        browser = None
        try:
            web = stack.gunicorn(env, workers=2, threads=2)
            stack.worker(env)
            browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            browser.set_page_load_timeout(30)
            yield Console(f"http://127.0.0.1:{web.port}", county, browser)
        finally:
            if browser is not None:
                browser.quit()
            stack.stop()
            get_db().client.drop_database(get_db().name)
            redis_store.conn.flushdb()


def test_an_officer_logs_in_and_a_new_clue_appears_without_a_reload(console):
    totp = pyotp.TOTP(mfa.enroll(Officer.by_phone(WF_OFFICER).first()))
    console.log_in(WF_OFFICER, totp.now())
    assert console.browser.current_url.endswith("/console/inbox")
    cookie = next(c for c in console.browser.get_cookies() if c["name"] == "sg_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    console.browser.execute_script("window.__sameLoad = 'yes';")

    code = console.file("first", 0, "校门口有陌生男子" + HOSTILE)
    row = (By.CSS_SELECTOR, "tr[data-dispatch] a[href*='/console/dispatches/']")
    console.wait(lambda b: any(e.text == code for e in b.find_elements(*row)))
    assert console.browser.execute_script("return window.__sameLoad;") == "yes"  # no reload
    console.file("second", 1, "车站有人带着两名哭闹的儿童")
    console.wait(lambda b: console.clues["second"] in b.find_element(By.ID, "inbox").text)
    countdowns = console.browser.find_elements(By.CSS_SELECTOR, "#inbox .sla.running")
    assert len(countdowns) == 2
    assert all(c.text for c in countdowns)
    console.shoot("inbox")
    assert console.csp_violations() == []


def test_the_officer_acknowledges_and_the_countdown_stops(console):
    dispatch = console.dispatch_of("first")
    console.open(f"/console/dispatches/{dispatch.id}")
    page = console.text()
    assert "教师" in page  # the reporter, by role only
    assert "王丽" not in page
    assert HOSTILE in page  # the report's details shown as text
    assert console.browser.execute_script("return window.__xss === undefined;")
    assert console.browser.find_elements(By.CSS_SELECTOR, ".sla.running")

    console.browser.find_element(By.ID, "note-text").send_keys("嫌疑人穿黑衣" + HOSTILE)
    console.browser.find_element(By.ID, "add-note").click()
    console.wait(lambda b: "done=note" in b.current_url)
    assert "嫌疑人穿黑衣" + HOSTILE in console.browser.find_element(By.ID, "notes").text
    assert console.browser.execute_script("return window.__xss === undefined;")

    form = console.browser.find_element(By.CSS_SELECTOR, "form[action$='/acknowledge']")
    sent = {name: form.find_element(By.NAME, name).get_attribute("value")
            for name in ("csrf", "once")}
    # Clicked twice: the page sends the form once.
    ActionChains(console.browser).double_click(
        console.browser.find_element(By.ID, "acknowledge")).perform()
    console.wait(lambda b: "done=acknowledge" in b.current_url)
    assert console.browser.find_elements(By.CSS_SELECTOR, ".sla.running") == []
    stopped = console.browser.find_element(By.CSS_SELECTOR, ".sla.stopped")
    assert "已签收" in stopped.text
    console.shoot("dispatch", whole_page=True)
    assert Dispatch.objects(id=dispatch.id).first().status == "acknowledged"

    # The same form sent again all the same (a script, a proxy's retry): refused, said why.
    status, body = console.browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", body: new URLSearchParams(arguments[1])})
          .then(r => r.text().then(t => done([r.status, t])));
    """, f"/console/dispatches/{dispatch.id}/acknowledge", sent)
    assert status == 409
    assert "已经提交过" in body
    history = Dispatch.objects(id=dispatch.id).first().history
    assert [h["action"] for h in history].count("acknowledge") == 1

    # The inbox: no countdown for it any more.
    console.open("/console/inbox")
    row = console.browser.find_element(By.CSS_SELECTOR, f"tr[data-dispatch='{dispatch.id}']")
    assert row.find_elements(By.CSS_SELECTOR, ".sla.stopped")
    assert not row.find_elements(By.CSS_SELECTOR, ".sla.running")


def test_a_form_without_the_csrf_token_is_refused(console):
    dispatch = console.dispatch_of("first")
    console.open(f"/console/dispatches/{dispatch.id}")
    status = console.browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", body: new URLSearchParams({text: "forged"})})
          .then(r => done(r.status));
    """, f"/console/dispatches/{dispatch.id}/note")
    assert status == 403
    # A form planted in the page without the token: the page says why it was refused.
    console.browser.execute_script("""
        const f = document.createElement("form");
        f.method = "post"; f.action = arguments[0];
        const t = document.createElement("input"); t.name = "text"; t.value = "forged";
        f.appendChild(t); document.body.appendChild(f); f.submit();
    """, f"/console/dispatches/{dispatch.id}/note")
    console.wait(lambda b: b.find_elements(By.ID, "error-message"))
    assert "安全令牌" in console.text()
    assert [n for n in Dispatch.objects(id=dispatch.id).first().notes
            if "forged" in str(n)] == []


def test_a_transfer_is_accepted_by_the_receiving_station(console):
    dispatch = console.dispatch_of("second")
    console.open(f"/console/dispatches/{dispatch.id}")
    Select(console.browser.find_element(By.ID, "to-station")).select_by_value("530627-NT")
    console.browser.find_element(By.ID, "transfer-reason").send_keys("发生地在南台辖区" + HOSTILE)
    console.browser.find_element(By.ID, "transfer").click()
    console.wait(lambda b: "done=transfer" in b.current_url)
    assert "南台派出所" in console.text()

    console.log_in(NT_OFFICER)
    assert console.browser.current_url.endswith("/console/inbox")
    transfers = console.browser.find_element(By.ID, "transfers")
    assert console.clues["second"] in transfers.text
    transfers.find_element(By.LINK_TEXT, console.clues["second"]).click()
    console.wait(lambda b: b.find_elements(By.ID, "accept-transfer"))
    assert "发生地在南台辖区" + HOSTILE in console.text()
    assert console.browser.execute_script("return window.__xss === undefined;")
    console.browser.find_element(By.ID, "accept-transfer").click()
    console.wait(lambda b: "done=accept_transfer" in b.current_url)
    assert Dispatch.objects(id=dispatch.id).first().station_code == "530627-NT"

    # The first clue is still 乌峰's: its address opens a refusal, not the clue.
    first = console.dispatch_of("first")
    console.open(f"/console/dispatches/{first.id}")
    assert "其他派出所" in console.browser.find_element(By.ID, "error-message").text
    assert console.clues["first"] not in console.text()
    console.open("/console/dispatches/not-an-object-id")
    assert "没有找到这条线索" in console.text()


def test_the_map_shows_the_stations_cells_and_clues(console):
    console.become(WF_OFFICER)
    console.file("third", 2, "医院发现疑似被拐卖妇女")
    console.dispatch_of("third")
    console.open("/console/map")
    summary = console.wait(lambda b: b.find_element(By.ID, "map-summary")
                           if b.find_element(By.ID, "map-summary").get_attribute("data-cells")
                           else None)
    assert summary.get_attribute("data-cells") == "16"
    assert int(summary.get_attribute("data-dispatches")) >= 2
    shapes = console.browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive")
    assert len(shapes) >= 18  # 16 cells and the markers, drawn
    console.shoot("map")
    assert console.csp_violations() == []


def test_the_supervisor_sees_an_overdue_clue_and_an_alerts_coverage(console):
    import datetime as dt

    third = console.dispatch_of("third")
    Dispatch.objects(id=third.id).update(set__ack_deadline=dt.datetime(2026, 1, 1))
    seed_figures()
    console.log_in(SUPERVISOR)
    assert console.browser.current_url.endswith("/console/county")
    overdue = console.browser.find_element(By.ID, "overdue-table")
    assert console.clues["third"] in overdue.text

    find = console.browser.find_element
    Select(find(By.ID, "sex")).select_by_value("female")
    find(By.ID, "age").send_keys("6")
    find(By.ID, "clothing").send_keys("红上衣<b>蓝裤子</b>")
    find(By.ID, "grid-code").send_keys(cell_code(0, 0, 0))
    find(By.ID, "place").send_keys("城关车站")
    find(By.CSS_SELECTOR, "#issue-alert button[type=submit]").click()
    console.wait(lambda b: "done=issued" in b.current_url)
    alerts = find(By.ID, "alerts")
    code = alerts.find_element(By.CSS_SELECTOR, "tbody tr td").text
    assert "红上衣<b>蓝裤子</b>" in alerts.text
    # The insight figures: this month against last, never an exact small count.
    months = find(By.ID, "insight-months")
    child = months.find_element(By.CSS_SELECTOR, 'tr[data-category="CHILD"]')
    assert child.find_element(By.CSS_SELECTOR, "td.previous").text == "10"  # 12 reports
    assert months.find_element(By.CSS_SELECTOR, 'tr[data-category="LABOUR"] td.this'
                               ).text == "<5"  # 3 reports
    response = find(By.ID, "insight-response").find_element(
        By.CSS_SELECTOR, 'tr[data-station="530627-WF"]')
    assert response.find_element(By.CSS_SELECTOR, "td.p50").get_attribute("data-seconds")
    assert find(By.ID, "insight-townships").is_displayed()
    console.shoot("supervisor", whole_page=True)

    # 张秀英, grid worker of cell (0, 0, 0), texts back that her cell is swept (as Kannel
    # hands SafeGrid a message).
    def reached() -> bool:
        from gateway.alerts.records import Alert
        alert = Alert.objects(code=code).first()
        return bool(alert and alert.rings and alert.rings[0].sent_at)
    console.wait(lambda _: reached())
    text = f"OK{code}"
    resp = requests.get(f"{console.base}/sms/inbound/kannel", timeout=10, params={
        "secret": SECRET, "id": f"k-{uuid.uuid4().hex[:8]}", "from": "+8613800001001",
        "to": "10690110", "coding": "0", "charset": "UTF-8",
        "hex": text.encode().hex().upper(), "ts": "1795440000", "smsc": "fake"})
    assert resp.status_code == 200, resp.text

    console.open(f"/console/map?alert={code}")
    summary = console.browser.find_element(By.ID, "map-summary")
    try:  # the map redraws the coverage by itself: no reload
        console.wait(lambda _: summary.get_attribute("data-swept") not in (None, "0"), timeout=40)
    except TimeoutException:
        pytest.fail("the swept cell never showed on the map: " + console.text())
    assert summary.get_attribute("data-swept") == "1"
    assert int(summary.get_attribute("data-not-swept")) >= 1
    assert summary.get_attribute("data-cells") == "48"  # the whole county
    console.shoot("map-alert")
    assert console.csp_violations() == []
    console.open("/console/county")
    assert "已排查1个" in console.browser.find_element(By.ID, f"alert-{code}").text


def seed_figures() -> None:
    """Reports and acknowledged clues for the supervisor's figures, as the route job leaves
    them: 12 child reports last month, 3 labour reports this month, and eight clues of
    乌峰派出所 acknowledged over the last days."""
    import datetime as dt

    from tests.gateway.insight.seeding import (
        BEIJING,
        dispatch,
        insert_dispatches,
        insert_reports,
        report,
    )

    this = dt.datetime.now(BEIJING).date().replace(day=1)
    previous = dt.datetime.combine((this - dt.timedelta(days=1)).replace(day=1),
                                   dt.time()) - dt.timedelta(hours=8)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = dt.datetime.combine(this, dt.time()) - dt.timedelta(hours=8)
    insert_reports(
        [{**report(cell_code(1, i % 4, 0), "CHILD", previous + dt.timedelta(days=1, hours=i)),
          "code": f"E{i:06d}", "client_id": f"e2e-figures-{i}"} for i in range(12)]
        + [{**report(cell_code(2, 0, i), "LABOUR", start + dt.timedelta(minutes=i)),
            "code": f"E{100 + i:06d}", "client_id": f"e2e-figures-{100 + i}"}
           for i in range(3)])
    insert_dispatches([dispatch("530627-WF", now - dt.timedelta(days=3, hours=i),
                                ack_after_s=90 + 240 * i, sla_s=900) for i in range(8)])


UNLABELLED = """
    return Array.from(document.querySelectorAll(
        "input:not([type=hidden]), select, textarea, button"))
      .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                   && !(e.tagName === "BUTTON" && e.textContent.trim()))
      .map(e => e.outerHTML);
"""
FITS = "return document.documentElement.scrollWidth <= window.innerWidth + 1;"


def test_keyboard_labels_a_phones_width_and_english(console):
    from selenium.webdriver.common.keys import Keys

    console.become(WF_OFFICER)
    console.open("/console/inbox")
    assert console.browser.execute_script(UNLABELLED) == []
    # By keyboard alone: Tab from the top of the page to the first clue, Enter opens it.
    body = console.browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(30):
        active = console.browser.switch_to.active_element
        if "/console/dispatches/" in (active.get_attribute("href") or ""):
            break
        active.send_keys(Keys.TAB)
    else:
        pytest.fail("no clue reachable with Tab")
    active.send_keys(Keys.ENTER)
    console.wait(lambda b: "/console/dispatches/" in b.current_url)
    assert console.browser.execute_script(UNLABELLED) == []

    console.browser.set_window_size(390, 844)
    try:
        for path in ("/console/inbox", console.browser.current_url[len(console.base):]):
            console.open(path)
            assert console.browser.execute_script(FITS), path
        console.open("/console/inbox")
        SHOTS.mkdir(parents=True, exist_ok=True)
        assert console.browser.save_screenshot(str(SHOTS / "inbox-phone.png"))
    finally:
        console.browser.set_window_size(1366, 768)

    console.open("/console/inbox")
    Select(console.browser.find_element(By.ID, "language")).select_by_value("en")
    console.browser.find_element(By.CSS_SELECTOR, "form.lang button").click()
    console.wait(lambda b: "Station inbox" in b.find_element(By.TAG_NAME, "h1").text)
    assert console.browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    console.open("/console/inbox")  # remembered
    assert "Station inbox" in console.browser.find_element(By.TAG_NAME, "h1").text
    console.shoot("inbox-english")
    Select(console.browser.find_element(By.ID, "language")).select_by_value("zh")
    console.browser.find_element(By.CSS_SELECTOR, "form.lang button").click()
    console.wait(lambda b: "本所线索" in b.find_element(By.TAG_NAME, "h1").text)


def test_html_in_every_free_text_field_stays_text_and_big_notes_are_refused(console):
    console.become(WF_OFFICER)
    first = console.dispatch_of("first")
    console.open(f"/console/dispatches/{first.id}")
    # A 100,000-character note (past the form's maxlength, as a script would send it).
    console.browser.execute_script(
        "document.getElementById('note-text').value = 'x'.repeat(100000);")
    console.browser.find_element(By.ID, "add-note").click()
    console.wait(lambda b: b.find_elements(By.ID, "error-message"))
    assert "太长" in console.text()
    assert len(Dispatch.objects(id=first.id).first().notes) == 1  # the one from before

    console.open(f"/console/dispatches/{first.id}")
    Select(console.browser.find_element(By.ID, "outcome")).select_by_value("other")
    console.browser.find_element(By.ID, "close-reason").send_keys("核实后另案处理" + HOSTILE)
    console.browser.find_element(By.ID, "close").click()
    console.wait(lambda b: "done=close" in b.current_url)
    assert "核实后另案处理" + HOSTILE in console.text()
    assert console.browser.execute_script("return window.__xss === undefined;")

    # The login form shows back what was typed, as text.
    console.browser.delete_all_cookies()
    console.open("/console/login")
    console.browser.find_element(By.ID, "phone").send_keys('"><b id="bold">' + HOSTILE[:30])
    console.browser.find_element(By.ID, "password").send_keys("wrong password")
    console.browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    console.wait(lambda b: b.find_elements(By.CSS_SELECTOR, "p.problem"))
    assert console.browser.find_elements(By.ID, "bold") == []
    assert console.browser.find_element(By.ID, "phone").get_attribute("value").startswith('"><b')
    assert console.browser.execute_script("return window.__xss === undefined;")
    assert console.csp_violations() == []


def test_the_county_desk_issues_an_alert_from_its_own_page(console):
    desk = "+8613800003098"  # 刑侦大队值班民警
    totp = pyotp.TOTP(mfa.enroll(Officer.by_phone(desk).first()))
    console.log_in(desk, totp.now())
    console.browser.find_element(By.CSS_SELECTOR, 'nav a[href="/console/alerts"]').click()
    console.wait(lambda b: b.current_url.endswith("/console/alerts"))
    assert console.browser.execute_script(UNLABELLED) == []
    find = console.browser.find_element
    Select(find(By.ID, "sex")).select_by_value("male")
    find(By.ID, "age").send_keys("9")
    find(By.ID, "grid-code").send_keys(cell_code(1, 0, 0))
    find(By.CSS_SELECTOR, "#issue-alert button[type=submit]").click()
    console.wait(lambda b: "/console/alerts?done=issued" in b.current_url)
    assert "男孩约9岁" in find(By.ID, "alerts").text
    assert console.csp_violations() == []
