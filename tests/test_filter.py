"""filter: the LLM judge against a real local OpenAI-compatible server (re-asks, unparsed replies, agreement with the
rule rubric, cache reuse), the rule rubric on real FinQA rows, and the offline stage."""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from openai_stub_server import StubOpenAI
from finr1.run import init_run, read_jsonl, write_jsonl, read_json
from finr1.settings import load_profile
from finr1.programs import context_table
from finr1.synthetic import synthetic_records
from finr1.llm import ProgramTeacher
from finr1.distill import teacher_messages, distilled_row, run_stage as distill_stage
from finr1.filter import CRITERIA, rules_rubric, round1_rules, run_stage

def program_rows(records):
    "Records distilled by the program teacher."
    out = ProgramTeacher()([teacher_messages(r) for r in records], records=records)
    return [distilled_row(r, dict(teacher="program:v1", **o)) for r, o in zip(records, out)]

def text_row(i, teacher_answer):
    "A distilled row with an open text answer (rules cannot decide it)."
    return dict(id=f"manual/text/{i}", source="manual", answer_type="text", program=None, history=[], meta={},
                question="The Federal Reserve lowered its policy rate by 50 basis points to support employment.\n"
                         f"Question: why did the Federal Reserve lower its policy rate? (case {i})",
                answer="to support employment", teacher="openai:r1", teacher_answer=teacher_answer, teacher_raw="",
                reasoning="The text says the Federal Reserve lowered its policy rate by 50 basis points.\n"
                          "It states the purpose: to support employment.\nSo the reason is to support employment.",
                usage=None, latency=0.0, attempts=1, error=None)

def rubric_json(**fails): return json.dumps({k: 0 if k in fails else 1 for k in CRITERIA})

def test_llm_judge_both_rounds_reasks_unparsed_and_agreement(tmp_path):
    rows = program_rows(synthetic_records(6, seed=21))
    lines = rows[1]["reasoning"].split("\n")                                                 # line 0 copies the table rows
    rows[1] = {**rows[1], "reasoning": "\n".join([lines[0], lines[1].replace(" = ", " = 1", 1), *lines[2:]])}   # a wrong calculation
    rows[2] = {**rows[2], "reasoning": "", "teacher_answer": None, "error": dict(kind="timeout", message="Request timed out.")}
    rows += [text_row(0, "in order to support employment"), text_row(1, "because inflation was high")]
    by_reasoning = {r["reasoning"]: i for i, r in enumerate(rows) if r["reasoning"]}
    def judge(messages):
        first = messages[0]["content"]
        if "Reply with a single digit" in first:                                           # round 1
            return "1" if "Candidate answer: in order to support employment" in first else "Let me think about it."
        i = next(i for r, i in by_reasoning.items() if f"Reasoning to review:\n{r}\n" in first)  # round 2
        if i == 1: return rubric_json(logical_consistency=1)
        if i == 3: return "Looks fine overall." if len(messages) == 1 else "```json\n" + rubric_json() + "\n```"
        if i == 4: return "I cannot decide."
        if i == 5: return rubric_json(steps=1)
        return rubric_json()
    with StubOpenAI(responder=judge) as srv:
        cfg = load_profile("smoke", judge="both", judge_model="judge", judge_base_url=srv.url, judge_unparsed="reject")
        run = init_run(tmp_path/"run", cfg)
        write_jsonl(run/"data"/"distilled.jsonl", rows)
        counts = run_stage(run, cfg, progress=False)
        # round 1: of the two open answers, `covers` passes "in order to support employment" by rule; the other is
        # asked (1 + 2 re-asks); round 2: six rows, re-asks included
        assert srv.count() == 3 + (1 + 1 + 2 + 3 + 1 + 1)
        sft, rl = read_jsonl(run/"data"/"sft.jsonl"), read_jsonl(run/"data"/"rl.jsonl")
        assert run_stage(run, cfg, progress=False) == counts       # rerun: every judge reply comes from the cache
        assert srv.count() == 12
    ids = lambda rs: [r["id"] for r in rs]
    assert ids(sft) == [rows[0]["id"], rows[3]["id"], "manual/text/0"]
    reasons = {r["id"]: (r["reject_stage"], r["reject_reason"]) for r in rl}
    assert reasons[rows[1]["id"]] == ("round2", "reasoning fails logical_consistency (llm)")
    assert reasons[rows[2]["id"]][0] == "distill" and "timeout" in reasons[rows[2]["id"]][1]
    assert reasons[rows[4]["id"]] == ("round2", "round 2 judge reply unparsed after 3 asks")
    assert reasons[rows[5]["id"]] == ("round2", "reasoning fails steps (llm)")
    assert reasons["manual/text/1"] == ("round1", "round 1 judge reply unparsed after 3 asks")
    assert sft[1]["judge_scores"]["round2"]["asks"] == 2 and sft[2]["judge_scores"]["round1"]["method"] == "covers"
    report = read_json(run/"data"/"filter_report.json")
    assert report["judge_unparsed"] == {"round1": 1, "round2": 1}
    assert counts == dict(records=8, passed_round1=6, passed_round2=3, sft=3, rl=5, rl_reserved=0, unparsed=2, judge_fallbacks=0, distill_errors=1)
    agree = report["agreement"]                                     # LLM decided; the rule rubric scored alongside
    assert agree["n"] == 5 and agree["matrix"]["llm_0"]["rules_1"] >= 1 and agree["matrix"]["llm_0"]["rules_0"] == 1
    assert set(agree["per_criterion"]) == set(CRITERIA)
    assert len(read_jsonl(run/"data"/"judge_cache.jsonl")) == 12
    assert report["round1_methods"] == {"rules": 5, "covers": 1, "llm": 1, "distill_error": 1}   # the rows each policy decided

def test_rule_rubric_on_real_finqa_program_traces(data_dir):
    "Every FinQA test row rendered by the program teacher: answers match, and the rubric keeps ≥ 95 %."
    recs = [dict(id=f"finqa/{r['id']}", source="finqa", question=f"{r['context']}\nQuestion: {r['question']}", answer=str(r["exe_ans"]),
                 answer_type="bool" if r["exe_ans"] in ("yes", "no") else "number", program=r["program"], history=[],
                 meta=dict(table=context_table(r["context"])))
            for r in read_jsonl(data_dir/"finqa"/"finqa_test_assembled.jsonl")]
    rows = program_rows(recs)
    assert sum(bool(r["error"]) for r in rows) == 0
    assert sum(round1_rules(r) == 1 for r in rows) >= 0.99 * len(rows)
    assert sum(rules_rubric(r)["overall"] for r in rows) >= 0.95 * len(rows)

def test_offline_stage_writes_the_split_report_and_plot(tmp_path):
    cfg = load_profile("smoke")
    run = init_run(tmp_path/"run", cfg)
    write_jsonl(run/"data"/"train.jsonl", synthetic_records(12, seed=22))
    distill_stage(run, load_profile("smoke"), progress=False)      # each stage its own profile, as in a run
    counts = run_stage(run, cfg, progress=False)
    assert "undeclared_fields" not in read_json(run/"manifest.json")["filter"]
    sft, rl = read_jsonl(run/"data"/"sft.jsonl"), read_jsonl(run/"data"/"rl.jsonl")
    assert counts["records"] == len(sft) + len(rl) == 12 and counts["sft"] >= 11
    assert all(r["reasoning"] and r["judge_scores"]["round2"]["method"] == "rules" for r in sft)
    assert (run/"plots"/"filter_trace_lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_json(run/"data"/"filter_report.json")["per_source"]["synthetic"]["in"] == 12
