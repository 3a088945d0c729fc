"""The web demo as a user meets it: `examples/app.py` started on a free localhost port with tiny pipelines, opened
in headless Chromium (Debian's `chromium` + `chromium-driver`, driven by selenium; nothing is downloaded), Sample
clicked, then one completion run; a screenshot is saved (under the test's tmp folder, and copied into
`$HF_VQGEN_TEST_ARTEFACTS` when set).

Skipped where Chromium is not installed, unless `HF_VQGEN_REQUIRE_BROWSER=1` (CI sets it: `.ci/run` installs the
browser), where that is a failure. `HF_VQGEN_APP_SCREENSHOTS=docs/app` instead runs `test_readme_screenshots`: one
screenshot per tab of the app over the shipped Fashion-MNIST pipelines, for the README (with
`HF_VQGEN_APP_SCREENSHOTS_DATASET=emoji`: the emoji pipelines, into `docs/app/emoji`)."""

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import PIL.Image
import pytest

from hf_vqgen.demo.functions import DISPLAY_SIZE, grid_shape

from .test_app import save_tiny_pipelines


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
]  # fmt: skip
SERVER_START_TIMEOUT = 120  # seconds: importing torch and gradio on a busy 2-core machine
UI_TIMEOUT = 60


def require_browser():
    """selenium and a Chromium with its driver, else skip (or fail when `HF_VQGEN_REQUIRE_BROWSER=1`)."""
    missing = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not found]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver; pip: the test extra)"
        if os.environ.get("HF_VQGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(pipelines: list[str], log_path: Path):
    """`examples/app.py` serving `pipelines` on a free port (retried if another process takes it first): its URL;
    stopped afterwards whatever happens."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for _ in range(3):
        port = free_port()
        command = [sys.executable, str(ROOT / "examples" / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
        command += [arg for pipeline in pipelines for arg in ("--pipeline", pipeline)]
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}/"
            if wait_until_serving(url, process):
                yield url
                return
            if process.poll() is None:  # still starting after the timeout: no point in retrying
                break
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    pytest.fail(f"The app did not start; its log:\n{log_path.read_text()[-3000:]}")


def wait_until_serving(url: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


@contextlib.contextmanager
def chromium(user_data_dir: Path):
    """Headless Chromium through Debian's chromedriver (no Selenium Manager, no downloads); always quit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(UI_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


# what a user does


def wait_for(driver, script: str, timeout: float = UI_TIMEOUT):
    """Poll a JavaScript expression until it returns something truthy; that value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: d.execute_script(f"return {script}"))


def click(driver, css: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element = WebDriverWait(driver, UI_TIMEOUT).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    tabs = driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")
    next(tab for tab in tabs if tab.text.strip() == name).click()


def loaded_images(css: str) -> str:
    """JS: the (naturalWidth, naturalHeight, src) of the decoded images under `css` (null until there are some)."""
    return (
        f"(() => {{ const images = [...document.querySelectorAll({css!r})];"
        " return images.length && images.every(i => i.complete && i.naturalWidth > 0)"
        " ? images.map(i => [i.naturalWidth, i.naturalHeight, i.src]) : null; })()"
    )


def error_toasts(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=toast-body]')].map(e => e.innerText)"
    )  # fmt: skip


def save_screenshot(driver, path: Path, colours: int | None = None) -> None:
    """The page from its top into `path` (reduced to `colours` colours if given: smaller files for the README)."""
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    if colours:
        PIL.Image.open(path).convert("RGB").quantize(colours).save(path, optimize=True)
    artefacts = os.environ.get("HF_VQGEN_TEST_ARTEFACTS")
    if artefacts:
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(artefacts) / path.name)


@contextlib.contextmanager
def screenshot_on_failure(driver, path: Path):
    """A failing step leaves the page as it was (and any error message on it) in `path`."""
    try:
        yield
    except Exception as error:
        save_screenshot(driver, path)
        raise AssertionError(f"{error!r}; the page: {path}; its error messages: {error_toasts(driver)}") from error


def test_sample_then_complete_in_a_real_browser(tmp_path):
    require_browser()
    pipelines = [str(path) for path in save_tiny_pipelines(tmp_path / "pipelines")]
    with running_app(pipelines, tmp_path / "app.log") as url, chromium(tmp_path / "chromium") as driver:
        try:
            driver.get(url)
            # 1. Sample with the defaults (batch 8): one row of eight 8x8 samples, enlarged
            click(driver, "#sample-button")
            ((width, height, src),) = wait_for(driver, loaded_images("#sample-output img"))
            rows, columns = grid_shape(8)
            assert (width, height) == (columns * DISPLAY_SIZE, rows * DISPLAY_SIZE)
            with urllib.request.urlopen(src, timeout=10) as response:
                served = PIL.Image.open(io.BytesIO(response.read()))
                assert served.size == (width, height) and served.format == "PNG"
            # 2. Complete: pick the first test image, keep the default rows, four completions per prior
            open_tab(driver, "Complete")
            click(driver, "#complete-gallery button.thumbnail-item")
            wait_for(driver, loaded_images("#complete-input img"))
            click(driver, "#complete-button")
            shown = wait_for(driver, loaded_images("#complete-output img"))
            assert len(shown) == 2 + 4 + 4 and {tuple(s[:2]) for s in shown} == {(DISPLAY_SIZE, DISPLAY_SIZE)}
            captions = driver.execute_script(
                "return [...document.querySelectorAll('#complete-output .caption-label')].map(e => e.textContent)"
            )
            assert captions[1:4] == ["reconstruction", "AR 1", "AR 2"] and captions[-1] == "diffusion 4"
            assert not error_toasts(driver)
        finally:
            save_screenshot(driver, tmp_path / "app_complete.png")
    assert "Traceback" not in (tmp_path / "app.log").read_text()


# the README's screenshots


def paint_stroke(driver, css: str) -> None:
    """Drag the brush across the middle of the image editor's canvas."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_elements(By.CSS_SELECTOR, f"{css} canvas")[-1]
    actions = ActionChains(driver).move_to_element_with_offset(canvas, -50, -10).click_and_hold()
    for dx in range(-50, 51, 10):
        actions.move_to_element_with_offset(canvas, dx, -10)
    actions.release().perform()


@pytest.mark.skipif(not os.environ.get("HF_VQGEN_APP_SCREENSHOTS"), reason="set HF_VQGEN_APP_SCREENSHOTS=docs/app")
def test_readme_screenshots(tmp_path):
    require_browser()
    folder = Path(os.environ["HF_VQGEN_APP_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    dataset = os.environ.get("HF_VQGEN_APP_SCREENSHOTS_DATASET", "fashion-mnist")  # or emoji
    pipelines = [str(ROOT / "pretrained" / f"{dataset}-{kind}") for kind in ("ar", "diffusion")]
    with (
        running_app(pipelines, tmp_path / "app.log") as url,
        chromium(tmp_path / "chromium") as driver,
        screenshot_on_failure(driver, folder / "failure.png"),
    ):
        driver.set_window_size(1280, 820)
        driver.get(url)
        click(driver, "#sample-button")
        wait_for(driver, loaded_images("#sample-output img"))
        save_screenshot(driver, folder / "sample.png", colours=64)
        open_tab(driver, "Complete")
        click(driver, "#complete-gallery button.thumbnail-item")
        wait_for(driver, loaded_images("#complete-input img"))
        click(driver, "#complete-button")
        wait_for(driver, loaded_images("#complete-output img"))
        save_screenshot(driver, folder / "complete.png", colours=64)
        open_tab(driver, "Inpaint")
        click(driver, "#inpaint-gallery .gallery-item:nth-child(3) button.thumbnail-item")
        time.sleep(2)  # the editor draws its canvas
        paint_stroke(driver, "#inpaint-editor")
        click(driver, "#inpaint-button")
        wait_for(driver, loaded_images("#inpaint-output img"))
        save_screenshot(driver, folder / "inpaint.png", colours=64)
        open_tab(driver, "Reverse diffusion")
        click(driver, "#reverse-button")
        wait_for(driver, loaded_images("#reverse-gif img"))
        save_screenshot(driver, folder / "reverse.png", colours=64)
        assert not error_toasts(driver)
