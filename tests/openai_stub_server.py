"""A scriptable OpenAI-compatible chat server on 127.0.0.1 for tests (a real HTTP server, not a mock).

It answers `POST /v1/chat/completions` like the OpenAI chat API, with injected latency and faults:

- `"ok"`: a normal `chat.completion` (content from `responder`, optional `reasoning_content`)
- `"429"`, `"500"`, `"503"`, `"400"`: that HTTP status with an OpenAI-style error body
- `"malformed"`: status 200 and a truncated JSON body
- `"drop"`: the connection is closed without any response
- `"sleep:<s>"`: wait `s` seconds before answering normally (to trigger client timeouts)

Which action a request gets: `script(request, n)` if given (n = how many earlier requests carried the same
last user message), else the next item of `schedule` (consumed in arrival order), else `"ok"`.

    with StubOpenAI(latency=0.2, schedule=["429", "drop"]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="dummy")

Run standalone: `python tests/openai_stub_server.py --port 8001 --latency 0.2` (serves until Ctrl-C).
"""
from __future__ import annotations
import argparse, json, threading, time, uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

def default_responder(messages:list[dict]) -> dict:
    "A fixed, well-formed Fin-R1 style reply: reasoning in `<think>`, answer in `<answer>`."
    return dict(content="<think>\nStep 1: read the table.\nStep 2: compute 40 + 2 = 42.\nStep 3: report it.\n</think>\n"
                        "<answer>\n42\n</answer>")

def last_user(messages:list[dict]) -> str:
    "Text of the last user turn of a chat request."
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass

    def _send(self, status:int, body:bytes, headers:dict|None=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items(): self.send_header(k, v)
        self.end_headers(); self.wfile.write(body); self.wfile.flush()

    def _error(self, status:int, kind:str, headers:dict|None=None):
        self._send(status, json.dumps({"error": {"message": f"injected {status}", "type": kind, "code": status}}).encode(), headers)

    def do_GET(self):
        srv: StubOpenAI = self.server.stub
        if self.path.rstrip("/").endswith("/models"):
            return self._send(200, json.dumps({"object": "list", "data": [{"id": srv.model, "object": "model"}]}).encode())
        if self.path.rstrip("/").endswith("/health"): return self._send(200, b'{"status":"ok"}')
        self._error(404, "not_found")

    def do_POST(self):
        srv: StubOpenAI = self.server.stub
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try: req = json.loads(body)
        except json.JSONDecodeError: return self._error(400, "invalid_request_error")
        if not self.path.rstrip("/").endswith("/chat/completions"): return self._error(404, "not_found")
        action = srv.next_action(req, self.headers.get("Authorization"))
        with srv.lock: srv.inflight += 1; srv.max_inflight = max(srv.max_inflight, srv.inflight)
        try:
            time.sleep(srv.latency)
            if action.startswith("sleep:"): time.sleep(float(action.split(":", 1)[1])); action = "ok"
        finally:
            with srv.lock: srv.inflight -= 1
        if action == "drop":
            self.close_connection = True
            return                                  # the server closes the socket: no status line at all
        if action == "malformed":
            return self._send(200, b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"index": 0, "mess')
        if action in ("429", "500", "503", "400"):
            return self._error(int(action), {"429": "rate_limit_exceeded", "400": "invalid_request_error"}.get(action, "server_error"),
                               {"Retry-After": "0"} if action == "429" else None)
        reply = srv.responder(req.get("messages", []))
        reply = {"content": reply} if isinstance(reply, str) else reply
        msg = {"role": "assistant", "content": reply.get("content")}
        if reply.get("reasoning_content") is not None: msg["reasoning_content"] = reply["reasoning_content"]
        n_in = sum(len(str(m.get("content", "")).split()) for m in req.get("messages", []))
        n_out = len(str(reply.get("content") or "").split()) + len(str(reply.get("reasoning_content") or "").split())
        out = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
               "model": req.get("model", srv.model),
               "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}
        self._send(200, json.dumps(out).encode())

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        "Clients that hang up (timeouts, killed processes) are part of the tests: no traceback for them."
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)): super().handle_error(request, client_address)

class StubOpenAI:
    "A threaded OpenAI-compatible chat server on 127.0.0.1 with scriptable latency and faults."
    def __init__(self,
                 latency:float=0.0,          # seconds added to every request
                 schedule:list[str]=(),      # actions consumed in arrival order (then "ok")
                 script:Callable|None=None,  # script(request, n) -> action or None; n = earlier requests with this prompt
                 responder:Callable=default_responder, # messages -> content str or {content, reasoning_content}
                 model:str="stub-model",     # model id reported by /v1/models
                 port:int=0):                # 0 = a free port
        self.latency, self.schedule, self.script, self.responder, self.model = latency, list(schedule), script, responder, model
        self.lock, self.seen, self.log, self.auth = threading.Lock(), Counter(), [], set()
        self.inflight = self.max_inflight = 0       # requests being answered now / at most at once
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.stub = self
        self.thread = None

    @property
    def port(self) -> int: return self.httpd.server_address[1]
    @property
    def url(self) -> str: return f"http://127.0.0.1:{self.port}/v1"

    def next_action(self, req:dict, auth:str|None=None) -> str:
        "The action for this request, recorded in `log` as (time, last user message, action); `auth` headers kept in `auth`."
        prompt = last_user(req.get("messages", []))
        with self.lock:
            self.auth.add(auth)
            n = self.seen[prompt]; self.seen[prompt] += 1
            action = self.script(req, n) if self.script else None
            if action is None: action = self.schedule.pop(0) if self.schedule else "ok"
            self.log.append((time.time(), prompt, action))
        return action

    def count(self, action:str|None=None) -> int:
        "Requests received (with `action`, if given)."
        with self.lock: return sum(1 for _, _, a in self.log if action is None or a == action)

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True); self.thread.start(); return self
    def stop(self):
        self.httpd.shutdown(); self.httpd.server_close()
    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--schedule", default="", help="comma-separated actions, e.g. 429,drop,500")
    a = ap.parse_args()
    srv = StubOpenAI(latency=a.latency, schedule=[s for s in a.schedule.split(",") if s], port=a.port)
    print(srv.url, flush=True)
    try: srv.httpd.serve_forever()
    except KeyboardInterrupt: srv.stop()
