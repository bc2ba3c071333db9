"""Real-browser test of the widgets: serve tests/browser_explorer.ipynb with voila on 127.0.0.1, drive it with headless
Debian chromium through playwright: the explorer shown before its maps, the threshold slider during a method switch,
a 30 s SPOL training watched and stopped, Start on a finished run.
Screenshots go to test-artifacts/ (gitignored)."""
import os, re, secrets, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'tests'/'browser_explorer.ipynb'
ART = ROOT/'test-artifacts'
CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

def _chromium():
    "Path of chromium, installing it with scripts/setup-system.sh when absent; None when that is impossible."
    if os.path.exists(CHROMIUM): return CHROMIUM
    can = os.geteuid() == 0 or (shutil.which('sudo') and subprocess.run(['sudo', '-n', 'true'], capture_output=True).returncode == 0)
    if can:
        r = subprocess.run(['bash', str(ROOT/'scripts'/'setup-system.sh')], capture_output=True, text=True, timeout=600)
        if r.returncode != 0: print(r.stdout[-2000:], r.stderr[-2000:])
    return CHROMIUM if os.path.exists(CHROMIUM) else None

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def chromium():
    path = _chromium()
    if path is None:
        if os.environ.get('CI'): pytest.fail(f"{CHROMIUM} missing and scripts/setup-system.sh could not install it (CI must run this test)")
        pytest.skip(f"{CHROMIUM} is absent and cannot be installed here (no root/sudo or apt failed)")
    pytest.importorskip('playwright.sync_api', reason='the playwright Python package is not installed (pip install -e .[dev])')
    return path

@pytest.fixture
def voila(tmp_path):
    "Start voila on the test notebook (own process group), yield (url, log path), stop it and its kernel."
    token, home = secrets.token_hex(16), tmp_path/'home'
    for d in ('home', 'ipython', 'mpl', 'runtime', 'data'): (tmp_path/d).mkdir()
    env = dict(os.environ, HOME=str(home), IPYTHONDIR=str(tmp_path/'ipython'), MPLCONFIGDIR=str(tmp_path/'mpl'),
               JUPYTER_RUNTIME_DIR=str(tmp_path/'runtime'), WSOL_BROWSER_DIR=str(tmp_path/'data'), PYTHONUNBUFFERED='1')
    log = tmp_path/'voila.log'
    cmd = [sys.executable, '-m', 'voila', str(NB), '--no-browser', f'--port={_free_port()}', '--Voila.ip=127.0.0.1',
           f'--Voila.token={token}', '--show_tracebacks=True']
    with open(log, 'w') as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        t0, url = time.time(), None
        while url is None:  # voila silently moves to the next port when ours is taken: read the real one from its log
            m = re.search(r'http://127\.0\.0\.1:(\d+)/', log.read_text())
            if m: url = f"http://127.0.0.1:{m.group(1)}/?token={token}"
            elif proc.poll() is not None: pytest.fail(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            elif time.time() - t0 > 60: pytest.fail(f"voila did not start in 60 s:\n{log.read_text()[-3000:]}")
            else: time.sleep(0.2)
        yield url, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # voila shuts its kernels down on SIGTERM
            try: proc.wait(15)
            except subprocess.TimeoutExpired: pass
        try: os.killpg(proc.pid, signal.SIGKILL)  # the session voila leads: anything it left behind (its kernel)
        except ProcessLookupError: pass
        proc.wait(5)

def _text(page, sel): return page.locator(sel).first.inner_text()
def _src(page, sel): return page.locator(sel).first.get_attribute('src')

def _wait_change(page, sel, attr, old, timeout=30_000):
    "Wait until the first element matching `sel` has `attr` (or innerText when attr is None) different from `old`."
    page.wait_for_function(
        """([sel, attr, old]) => { const e = document.querySelector(sel);
             if (!e) return false; const v = attr ? e.getAttribute(attr) : e.innerText; return v && v !== old; }""",
        arg=[sel, attr, old], timeout=timeout)

def _shot(page, name): page.screenshot(path=str(ART/name), full_page=True)

def test_explorer_and_monitor_in_browser(chromium, voila, tmp_path):
    from playwright.sync_api import sync_playwright
    url, log = voila
    data = tmp_path/'data'
    ART.mkdir(exist_ok=True)
    t0 = time.time()
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path/'chrome-profile'), executable_path=chromium, headless=True,
                                                   args=FLAGS, viewport={'width': 1400, 'height': 1100})
        try:
            page = ctx.new_page()
            errors = []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.goto(url, timeout=120_000)
            # the explorer is on screen before its maps are ready: a progress line, no IoU yet
            try: page.wait_for_selector('.wsol-explorer .wsol-progress-text', timeout=90_000)
            except Exception: pytest.fail(f"explorer never rendered; voila log:\n{log.read_text()[-3000:]}")
            page.wait_for_function("() => document.querySelector('.wsol-progress-text').innerText.includes('computing CAM (slow)')",
                                   timeout=30_000)
            assert page.locator('.wsol-readout .wsol-iou').count() == 0
            _shot(page, 'explorer_loading.png')
            page.wait_for_selector('.wsol-readout .wsol-iou', timeout=90_000)
            page.wait_for_selector('img.wsol-image[src]', timeout=10_000)
            _shot(page, 'explorer_before.png')
            before, img0 = _text(page, '.wsol-readout'), _src(page, 'img.wsol-image')
            curve0 = _src(page, 'img.wsol-curve')
            assert 'IoU' in before and 'max_frac 0.2' in before, before

            # move the threshold slider: click its handle, then ArrowRight (one step = 0.01 each)
            page.click('.wsol-threshold .noUi-handle')
            for _ in range(40): page.keyboard.press('ArrowRight')
            _wait_change(page, '.wsol-readout', None, before)
            page.wait_for_function("() => document.querySelector('.wsol-readout').innerText.includes('max_frac 0.6')",
                                   timeout=30_000)
            after = _text(page, '.wsol-readout')
            assert _src(page, 'img.wsol-image') != img0 and _src(page, 'img.wsol-curve') != curve0
            iou0, iou1 = (re.search(r'IoU (\d\.\d+)', s).group(1) for s in (before, after))
            box0, box1 = (re.search(r'box\(es\): (.*)', s).group(1) for s in (before, after))
            assert (iou0, box0) != (iou1, box1), (before, after)   # the readout follows the threshold
            _shot(page, 'explorer_after.png')

            # a method switch: the progress bar is shown, and meanwhile the threshold slider still changes the readout
            page.select_option('.wsol-method select', label='Grad-CAM++ (slow)')
            page.wait_for_function("() => document.querySelector('.wsol-progress-text').innerText.includes('computing Grad-CAM++ (slow) maps')",
                                   timeout=10_000)
            assert page.locator('.wsol-progress').first.is_visible()
            r0 = _text(page, '.wsol-readout')
            page.click('.wsol-threshold .noUi-handle')
            for _ in range(10): page.keyboard.press('ArrowLeft')
            page.wait_for_function("() => document.querySelector('.wsol-readout').innerText.includes('max_frac 0.5')", timeout=10_000)
            assert 'computing Grad-CAM++' in _text(page, '.wsol-progress-text')        # still computing: the slider was not blocked
            assert _text(page, '.wsol-readout') != r0 and 'until Grad-CAM++ (slow)' in _text(page, '.wsol-readout')
            _shot(page, 'explorer_switching.png')
            page.wait_for_function("() => !document.querySelector('.wsol-readout').innerText.includes('until')", timeout=90_000)
            assert 'Grad-CAM++ (slow), max_frac 0.5' in _text(page, '.wsol-readout')
            _shot(page, 'explorer_switched.png')

            # the live monitor (SPOL's MFF-Net1 via train_spol_cam): a 30 s run redraws at least three times, then Stop
            mon = page.locator('.wsol-monitor').nth(0)
            page.evaluate("""() => { window.__redraws = 0;
                const img = document.querySelectorAll('.wsol-monitor')[0].querySelector('img.wsol-monitor-plot');
                new MutationObserver(() => window.__redraws++).observe(img, {attributes: true, attributeFilter: ['src']}); }""")
            grid0 = mon.locator('img.wsol-monitor-grid').get_attribute('src')
            mon.locator('button.wsol-start').click()
            page.wait_for_function("() => /running: step \\d+/.test(document.querySelectorAll('.wsol-monitor')[0].querySelector('.wsol-status').innerText)",
                                   timeout=90_000)
            t_run = time.time()
            time.sleep(30)
            status = mon.locator('.wsol-status').inner_text()
            assert re.search(r'step \d+/\d+, epoch \d+, loss [\d.e+-]+, [\d.]+ img/s, elapsed .*, ETA ', status), status
            redraws = page.evaluate('() => window.__redraws')
            assert redraws >= 3, redraws
            assert mon.locator('img.wsol-monitor-grid').get_attribute('src') != grid0   # the samples' CAMs and boxes were redrawn
            _shot(page, 'monitor_running.png')
            mon.locator('button.wsol-stop').click()
            page.wait_for_function("() => /stopped at step \\d+/.test(document.querySelectorAll('.wsol-monitor')[0].querySelector('.wsol-status').innerText)",
                                   timeout=90_000)
            status = mon.locator('.wsol-status').inner_text()
            assert 'checkpoint' in status and 'ckpt.pt' in status and 'resuming the stopped run' in status, status
            print(f"monitor: {redraws} plot redraws in {time.time() - t_run:.0f} s of run")
            _shot(page, 'monitor_stopped.png')

            # Start on a finished run: a new run folder, the trained checkpoint byte for byte as it was
            done = page.locator('.wsol-monitor').nth(1)
            ck = (data/'done'/'ckpt.pt').read_bytes()
            assert 'holds a done run' in done.locator('.wsol-status').inner_text()
            done.locator('button.wsol-start').click()
            page.wait_for_function("() => /finished at step \\d+/.test(document.querySelectorAll('.wsol-monitor')[1].querySelector('.wsol-status').innerText)",
                                   timeout=120_000)
            assert (data/'done'/'ckpt.pt').read_bytes() == ck and (data/'done-2'/'ckpt.pt').exists()
            done.scroll_into_view_if_needed(); _shot(page, 'monitor_finished_restart.png')
            assert not [e for e in errors if 'widget' in e.lower()], errors
        finally: ctx.close()
    print(f"browser part: {time.time()-t0:.1f} s")
