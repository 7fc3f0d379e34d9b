"""A local teacher that answers the way DeepSeek's API does, for the `paper` rehearsal.

DeepSeek-R1 (`deepseek-reasoner`) returns its chain of thought in `message.reasoning_content` and only the final
answer in `message.content`. This responder plays that role for finr1's distill stage on 127.0.0.1, over the real
HTTP server of `openai_stub_server.py`. It looks each prompt up in the run's `data/train.jsonl` (written by the
`data` stage before any teacher request) and answers in one of four ways, in turn over the records (good, wrong,
repetitive, good, short, …), so that the filter has every kind of sample to sort as soon as there are five:

| kind | reasoning | answer | the filter should |
|---|---|---|---|
| `good` | the gold program as steps (or ≥ 3 steps quoting the question) | gold | keep it for SFT |
| `wrong` | good steps | a wrong value / label | reject it in round 1 |
| `repetitive` | one sentence repeated | gold | reject it in round 2 (repetition) |
| `short` | one line | gold | reject it in round 2 (too few steps) |

Run standalone next to a run directory: `python tests/deepseek_like.py runs/paper-rehearsal --port 8001`.
"""
from __future__ import annotations
import argparse, re, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI, last_user
from finr1.run import read_jsonl
from finr1.programs import render_trace

KINDS = ("good", "wrong", "repetitive", "good", "short")

def wrong_answer(record:dict) -> str:
    "An answer the rules reject: another option, label or value."
    gold, kind = str(record["answer"]), record.get("answer_type")
    if kind == "choice": return "D" if gold.strip().upper()[:1] != "D" else "A"
    if kind == "label": return {"positive": "negative", "negative": "positive"}.get(gold.lower(), "neutral" if gold.lower() != "neutral" else "positive")
    if kind == "bool": return "no" if gold.lower().startswith("y") else "yes"
    nums = re.findall(r"-?\d+(?:\.\d+)?", gold.replace(",", ""))
    return str(round(float(nums[0]) * 3 + 17, 2)) if nums else "not determinable"

def good_reasoning(record:dict) -> str:
    "Step-by-step reasoning: the gold program rendered, else three steps that quote the question."
    if record.get("program"):
        try: return render_trace(record)[0]
        except Exception: pass
    words = " ".join(record["question"].split()[-40:])
    return (f"The question asks: {words}\nFirst, I identify the relevant financial information in the text.\n"
            f"Next, I compare it with what is asked and rule out the other readings.\n"
            f"Therefore the answer is {record['answer']}.")

def reply(record:dict, kind:str) -> dict:
    "DeepSeek-style message fields for `record` answered as `kind`: reasoning_content + content."
    gold = str(record["answer"])
    if kind == "wrong": return dict(reasoning_content=good_reasoning(record), content=f"The answer is \\boxed{{{wrong_answer(record)}}}.")
    if kind == "repetitive": reasoning = " ".join([f"The answer is {gold}."] * 12)
    elif kind == "short": reasoning = f"It is {gold}."
    else: reasoning = good_reasoning(record)
    return dict(reasoning_content=reasoning, content=f"The answer is \\boxed{{{gold}}}.")

class DeepSeekLikeTeacher:
    "responder(messages) for `StubOpenAI`: finds the record behind the prompt in `run_dir/data/train.jsonl`."
    def __init__(self, run_dir:str|Path): self.run_dir, self.by_question = Path(run_dir), None
    def lookup(self, prompt:str) -> tuple[dict, str]|None:
        "(record, kind) of the training question that `prompt` starts with, or None."
        if self.by_question is None:
            recs = read_jsonl(self.run_dir/"data"/"train.jsonl")
            self.by_question = {r["question"].strip(): (r, KINDS[i % len(KINDS)]) for i, r in enumerate(recs)}
        return next((v for q, v in self.by_question.items() if prompt.startswith(q)), None)
    def __call__(self, messages:list[dict]) -> dict:
        found = self.lookup(last_user(messages))
        if found is None: return dict(reasoning_content="", content="I cannot find this question.")
        return reply(*found)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir"); ap.add_argument("--port", type=int, default=8001)
    a = ap.parse_args()
    srv = StubOpenAI(responder=DeepSeekLikeTeacher(a.run_dir), model="deepseek-reasoner", port=a.port)
    print(srv.url, flush=True)
    try: srv.httpd.serve_forever()
    except KeyboardInterrupt: srv.stop()
