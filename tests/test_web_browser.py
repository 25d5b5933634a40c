"""The page in headless Chromium: type a caption, start a run, see the object in 3D.

Needs Debian's chromium and chromium-driver (.ci/run installs them). Set
DREAMFUSION_SCREENSHOT=FILE to also save a screenshot of the finished run's page (how
docs/web-page.png was made).
"""
import io
import os
import shutil

import pytest

pytest.importorskip("fastapi")
selenium = pytest.importorskip("selenium")

from web_server import Server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1100,1400", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def pixels(png: bytes):
    import imageio.v3 as iio
    return iio.imread(io.BytesIO(png))[..., :3].astype(float)


def test_type_a_caption_start_a_run_and_turn_the_object(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    srv = Server(tmp_path / "runs").start()
    try:
        browser.get(f"http://127.0.0.1:{srv.port}/")
        wait = WebDriverWait(browser, 300, poll_frequency=0.5)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#words option"))
        browser.find_element(By.ID, "caption").send_keys("a yellow cone")
        browser.find_element(By.CSS_SELECTOR, "details summary").click()
        browser.find_element(By.NAME, "steps").send_keys("60")
        browser.find_element(By.ID, "start").click()
        wait.until(lambda d: "/runs/" in d.current_url)
        wait.until(lambda d: d.find_element(By.ID, "run-status").text.lower() in
                   ("finished", "failed"))
        assert browser.find_element(By.ID, "run-status").text.lower() == "finished"
        viewer = browser.find_element(By.ID, "viewer")
        wait.until(lambda d: d.execute_script("return document.getElementById('viewer').loaded"))
        browser.execute_script("document.getElementById('viewer').autoRotate = false")
        image = pixels(viewer.screenshot_as_png)
        differs = (abs(image - 255.0).sum(axis=-1) > 60).mean()  # off the white background
        spread = image.std(axis=(0, 1)).mean()
        yellow = ((image[..., 0] > 120) & (image[..., 1] > 100) & (image[..., 2] < 90)).mean()
        print(f"viewer: {differs:.3f} of pixels off the background, spread {spread:.1f}, "
              f"yellow {yellow:.3f}")
        # Measured on the finished 60-step yellow cone (Chromium 156, SwiftShader WebGL):
        # 0.405 of the pixels off white, spread 39.7, 0.303 yellow. The floors are ~40%
        # of that; a blank (white) viewer scores 0 on all three, a black one fails the
        # spread and the yellow.
        assert differs > 0.15 and spread > 15 and yellow > 0.1, (differs, spread, yellow)
        assert browser.find_element(By.ID, "dl-glb").get_attribute("href").endswith("mesh.glb")
        if os.environ.get("DREAMFUSION_SCREENSHOT"):
            browser.save_screenshot(os.environ["DREAMFUSION_SCREENSHOT"])
    finally:
        srv.stop()
