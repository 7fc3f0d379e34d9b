"Shared pytest fixtures for finr1's tests (what notebooks should not hold: servers, subprocesses, kill-and-resume)."
import os, socket, subprocess, time, urllib.request
import pytest
from finr1.run import find_data_dir
from finr1.models import embedded_model_dir
from finr1.pipeline import serve_command

@pytest.fixture(scope="session")
def data_dir():
    "The real datasets (`../shared/data`), or skip with the reason."
    d = find_data_dir()
    if d is None: pytest.skip("real datasets not found: set FINR1_DATA_DIR or place them in ../shared/data")
    return d

def free_port() -> int:
    "A free TCP port on 127.0.0.1."
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _serve(model=None):
    "Start `transformers serve` on a free port of 127.0.0.1 — pinned to `model`, or loading whichever model a request names."
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    cmd = serve_command(model or "_", port=port, backend="transformers")
    if model is None: cmd.remove("_")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None: pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200: break
        except OSError: time.sleep(0.5)
    else: proc.kill(); pytest.fail("transformers serve did not come up in 180 s")
    return proc, f"http://127.0.0.1:{port}/v1"

def _stop(proc):
    proc.terminate()
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: proc.kill()

@pytest.fixture(scope="session")
def transformers_serve():
    "`transformers serve` pinned to the embedded SmolLM2 on 127.0.0.1 (started once for the session): (model id, base URL)."
    model = embedded_model_dir()
    proc, url = _serve(model)
    yield str(model), url
    _stop(proc)

@pytest.fixture(scope="session")
def transformers_serve_any():
    "`transformers serve` on 127.0.0.1 that loads the model each request names (a path): its base URL."
    proc, url = _serve()
    yield url
    _stop(proc)
