"Shared pytest fixtures for finr1's tests (what notebooks should not hold: servers, subprocesses, kill-and-resume)."
import os, socket, subprocess, time, urllib.request
import pytest
from finr1.core import find_data_dir
from finr1.llm import embedded_model_dir
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

@pytest.fixture(scope="session")
def transformers_serve():
    "`transformers serve` with the embedded SmolLM2 on 127.0.0.1 (started once for the session): (model id, base URL)."
    model, port = embedded_model_dir(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(serve_command(model, port=port, backend="transformers"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None: pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200: break
        except OSError: time.sleep(0.5)
    else: proc.kill(); pytest.fail("transformers serve did not come up in 180 s")
    yield str(model), f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: proc.kill()
