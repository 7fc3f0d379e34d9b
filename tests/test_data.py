"Tests of finr1.data: every real dataset's record counts (as its README gives them), malformed input, the synthetic generator, decontamination, and the data stage."
import json, math, re, statistics
from collections import Counter
from pathlib import Path

import pytest

from finr1.answers import answer_correct
from finr1.programs import execute_program
from finr1.settings import load_profile
from finr1.run import read_json, read_jsonl
from finr1.sources import CONVFINQA_FILES, FINCUGE_TASKS, DataError, finqa_page, load_convfinqa, load_fin_eva, load_finance_instruct, load_financeiq, load_fincuge, load_finqa, load_tfns, SOURCES
from finr1.data import load_all
from finr1.data import decontaminate, page_key, prompt_tokens, load_tokenizer, run_stage, to_dataset
from finr1.answers import make_record
from finr1.synthetic import TEMPLATES, synthetic_records


def _executes_to_answer(r) -> bool:
    return answer_correct(str(execute_program(r["program"], r["meta"]["table"])), r["answer"])

# ---------------------------------------------------------------- real data: counts from shared/data/README.md

def test_finqa_counts(data_dir):
    f = data_dir/"finqa"
    assert len(load_finqa(f, "test")) == 947                                            # 1f, the full test split
    assert len(load_finqa(f/"test_500_simplified_abhisvakil.json")) == 411              # 1c
    assert len(load_finqa(f/"test_subset158_original_Augment_tableQA.json")) == 141     # 1d
    assert len(load_finqa(f/"test_subset100_original_Dolphin2333.json")) == 84          # 1e
    assert len(load_finqa(f, "dev")) == 126                                             # 1g
    assert len(load_finqa(f, "train")) == 100
    # 1d + 1e: 219 distinct original-format test ids after the held-out removal
    ids = {r["id"] for r in load_finqa(f/"test_subset158_original_Augment_tableQA.json")} | \
          {r["id"] for r in load_finqa(f/"test_subset100_original_Dolphin2333.json")}
    assert len(ids) == 219

def test_finqa_records_and_programs(data_dir):
    test = load_finqa(data_dir/"finqa", "test")
    r = next(x for x in test if x["id"] == "finqa/ETR/2016/page_23.pdf-2")
    assert (r["answer"], r["program"], r["answer_type"], r["meta"]["page"]) == ("94", "subtract(5829, 5735)", "number", "ETR/2016/page_23.pdf")
    assert r["question"].rstrip().endswith("Question: what is the net change in net revenue during 2015 for entergy corporation?")
    assert "|---|" in r["question"] and r["meta"]["table"][-1] == ["2015 net revenue", "$ 5829"]
    ok = sum(_executes_to_answer(x) for x in test)
    assert ok >= 0.99 * len(test), ok
    assert Counter(x["answer_type"] for x in test) == {"number": 933, "bool": 14}
    # the simplified file and the assembled file agree on the answer for every shared id
    simple = {x["id"]: x["answer"] for x in load_finqa(data_dir/"finqa"/"test_500_simplified_abhisvakil.json")}
    assert all(answer_correct(simple[x["id"]], x["answer"]) for x in test if x["id"] in simple)

def test_finqa_verl_file_needs_skip(data_dir):
    "The prompt-format copy has empty (lossy) answers: raise names file and line; skip counts them."
    f = data_dir/"finqa"/"test_verl_Zhukewen321.jsonl"
    with pytest.raises(DataError, match=r"test_verl_Zhukewen321.jsonl: line \d+: .*ground_truth"): load_finqa(f)
    recs = load_finqa(f, errors="skip")
    assert len(recs) + len(recs.skipped) == 947 and 0 < len(recs.skipped) <= 14
    assert len(load_finqa(data_dir/"finqa"/"test_verl_Zhukewen321.parquet", errors="skip")) == len(recs)

def test_convfinqa_counts(data_dir):
    c = data_dir/"convfinqa"
    dev = load_convfinqa(c, "dev")
    assert len(dev) == 803 and len({r["meta"]["conv_id"] for r in dev}) == 221
    assert all(_executes_to_answer(r) for r in dev)               # on the raw PoT tables
    assert sum(r["meta"]["table_source"] == "pot" for r in dev) == 803
    pot = load_convfinqa(c/CONVFINQA_FILES["pot"])
    assert len(pot) == 221
    test = load_convfinqa(c, "test")
    assert len({r["meta"]["conv_id"] for r in test}) == 349
    assert all(r["answer"] is None and r["meta"]["labelled"] is False for r in test)

def test_convfinqa_history(data_dir):
    dev = load_convfinqa(data_dir/"convfinqa", "dev")
    t0, t1 = dev[0], dev[1]
    assert t1["history"] == [dict(question=t0["question"].split("Question: ")[-1], answer=t0["answer"])]
    assert "Conversation so far:\nQ: " in t1["question"] and t1["question"].endswith("Question: what is that times 100?")
    assert t1["meta"]["page"] == "IPG/2009/page_85.pdf"

def test_tfns_counts(data_dir):
    valid = load_tfns(data_dir/"tfns", "valid")
    assert len(valid) == 2388
    assert Counter(r["answer"] for r in valid) == {"bearish": 347, "bullish": 475, "neutral": 1566}
    assert len(load_tfns(data_dir/"tfns", "train")) == 9543
    assert valid[0]["answer_type"] == "label"

def test_fin_eva_counts(data_dir):
    root = data_dir/"fin_eva_ant"
    assert len(sorted((root/"Ant").rglob("*.csv"))) == 33
    ant = load_fin_eva(root, "Ant")
    assert len(ant) == 8444 and len({r["id"] for r in ant}) == 8444
    labelled = [r for r in ant if r["answer"] is not None]
    assert 0 < len(labelled) < len(ant)
    assert {r["answer_type"] for r in labelled} == {"choice", "bool"}
    calc = next(r for r in ant if r["id"] == "fin_eva/Ant/金融逻辑/金融数值计算/0")
    assert calc["answer"] == "A" and "\nA. 3000\nB. 23173" in calc["question"]
    ctx = next(r for r in ant if r["meta"]["file"].endswith("金融文档抽取"))   # id,context,question,... layout
    assert ctx["question"].index("Question:") > 20
    assert len(sorted((root/"SUFE").rglob("*.csv"))) == 100
    sufe = load_fin_eva(root, "SUFE")
    assert all(r["answer"] is None for r in sufe if r["meta"]["split"] == "test")
    assert all(r["answer"] is not None for r in sufe if r["meta"]["split"] in ("dev", "val"))

def test_financeiq_counts(data_dir):
    test, dev = load_financeiq(data_dir/"financeiq", "test"), load_financeiq(data_dir/"financeiq", "dev")
    assert (len(test), len(dev)) == (7123, 50)
    assert len({r["meta"]["file"] for r in test}) == 10
    assert {r["answer"] for r in test} <= set("ABCD") and {r["answer_type"] for r in test} == {"choice"}

def test_fincuge_counts(data_dir):
    recs = load_fincuge(data_dir/"fincuge")
    assert Counter(r["meta"]["task"] for r in recs) == dict(finqa=2469, fincqa=2741, finese=1781, finfe=2020, finna=3600,
                                                          finne=500, finnl=884, finnsp=500, finre=1489)
    assert set(FINCUGE_TASKS) == {r["meta"]["task"] for r in recs}
    finfe = [r for r in recs if r["meta"]["task"] == "finfe"]
    assert {r["answer"] for r in finfe} == {"消极", "中性", "积极"}

def test_load_all_is_fast(data_dir):
    sets = load_all(data_dir)
    assert {k: len(v) for k, v in sets.items()} == {
        "finqa/test": 947, "finqa/test_500_simplified": 411, "finqa/test_subset158_original": 141,
        "finqa/test_subset100_original": 84, "finqa/dev_subset200_original": 126, "finqa/train_subset100_original": 100,
        "finqa/test_verl (errors=skip)": 935, "convfinqa/dev": 803, "convfinqa/dev_pot": 221, "convfinqa/test_private": 1229,
        "tfns/valid": 2388, "tfns/train": 9543, "fin_eva/Ant": 8444, "fin_eva/SUFE": 4581, "financeiq/test": 7123,
        "financeiq/dev": 50, "fincuge": 15984}
    assert sum(v.seconds for v in sets.values()) < 30

# ---------------------------------------------------------------- malformed input: errors name file and row

def test_malformed_rows(tmp_path):
    (tmp_path/"sent_valid.csv").write_text("text,label\r\ngood,0\r\nbad,7\r\n,1\r\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"sent_valid.csv: line 3: .*unparsable label '7'"): load_tfns(tmp_path/"sent_valid.csv")
    recs = load_tfns(tmp_path/"sent_valid.csv", errors="skip")
    assert len(recs) == 1 and len(recs.skipped) == 2 and "line 4" in recs.skipped[1]

    good = {"id": "A/1/page_1.pdf-1", "table": [["a", "1"]], "qa": {"question": "q?", "exe_ans": 1.0, "program": "add(1, 0)"}}
    (tmp_path/"test.json").write_text(json.dumps([good, {"id": "A/1/page_1.pdf-2", "table": [["a", "1"]]}]))
    with pytest.raises(DataError, match=r"test.json: item 1: .*missing field\(s\) qa"): load_finqa(tmp_path/"test.json")
    (tmp_path/"other.json").write_text(json.dumps([{"id": "x", "table": []}]))
    with pytest.raises(DataError, match=r"other.json: item 0: not a FinQA record format"): load_finqa(tmp_path/"other.json")
    (tmp_path/"broken.json").write_text('[{"id": "x",\n "qa": }]')
    with pytest.raises(DataError, match=r"broken.json: line 2: malformed JSON"): load_finqa(tmp_path/"broken.json")
    (tmp_path/"a.jsonl").write_text('{"id":"A/1/page_1.pdf-1","question":"q?","context":"t","exe_ans":1.0,"program":"add(1, 0)"}\n{oops\n')
    with pytest.raises(DataError, match=r"a.jsonl: line 2: ValueError: malformed JSON"): load_finqa(tmp_path/"a.jsonl")
    assert len(load_finqa(tmp_path/"a.jsonl", errors="skip").skipped) == 1

    (tmp_path/"Ant").mkdir(); (tmp_path/"Ant"/"x.csv").write_text("id,question,A,B,answer\n0,q?,yes,no,C\n1,,a,b,A\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x.csv: line 2: .*not an option letter"): load_fin_eva(tmp_path/"Ant")
    assert len(load_fin_eva(tmp_path/"Ant", errors="skip").skipped) == 2

    (tmp_path/"finfe").mkdir(); (tmp_path/"finfe"/"eval_list.json").write_text(json.dumps([["好", 2], ["坏"]], ensure_ascii=False))
    with pytest.raises(DataError, match=r"eval_list.json: item 1: .*list of 2 fields"): load_fincuge(tmp_path)
    (tmp_path/"fi.jsonl").write_text(json.dumps({"user": "q", "assistant": ""}) + "\n")
    with pytest.raises(DataError, match=r"fi.jsonl: line 1"): load_finance_instruct(tmp_path/"fi.jsonl")
    with pytest.raises(ValueError, match="errors must be"): load_tfns(tmp_path/"sent_valid.csv", errors="ignore")

# ---------------------------------------------------------------- the synthetic generator

def test_synthetic_programs_execute_to_answers():
    recs = synthetic_records(3000, seed=1) + synthetic_records(500, seed=1, split="test")
    assert all(_executes_to_answer(r) for r in recs)
    assert set(Counter(r["meta"]["template"] for r in recs)) == set(TEMPLATES) and len(TEMPLATES) >= 8
    assert {r["answer_type"] for r in recs} == {"number", "bool"}
    assert all(r["source"] == "synthetic" and r["history"] == [] for r in recs)

def test_synthetic_splits_disjoint_and_seeded():
    train = synthetic_records(3000, seed=0)
    for seed in (0, 1, 7):
        test = synthetic_records(500, seed=seed, split="test")
        assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert len({r["question"] for r in train}) == 3000                      # no duplicates inside a split
    assert synthetic_records(50, seed=0) == train[:50]                      # seeded, prefix-stable
    assert synthetic_records(50, seed=3) != train[:50]
    assert [r["id"] for r in train[:2]] == ["synthetic/train/0", "synthetic/train/1"]
    assert len({r["meta"]["company"] for r in train}) > 100 and len({tuple(r["meta"]["years"]) for r in train}) > 20

def test_synthetic_prompts_are_short():
    lens = prompt_tokens(synthetic_records(200, seed=0), load_tokenizer(), sample=None)
    assert 150 <= statistics.median(lens) <= 260 and max(lens) <= 320, (statistics.median(lens), max(lens))

def test_standard_generator_unchanged():
    # the `difficulty` knob must not move existing seeds: distill caches and earlier runs stay valid
    import hashlib
    digest = hashlib.sha1(json.dumps([synthetic_records(500, seed=s, split=sp) for s in (0, 1, 42) for sp in ("train", "test")]).encode()).hexdigest()
    assert digest == "87845405c65ea995c4e3aa07857701c47fb42b24"
    assert synthetic_records(5, seed=3, difficulty="standard") == synthetic_records(5, seed=3)

# ---------------------------------------------------------------- the easy curriculum (smoke, tiny)

def test_easy_records_execute_to_exact_short_answers():
    recs = synthetic_records(2000, seed=1, difficulty="easy") + synthetic_records(400, seed=1, split="test", difficulty="easy")
    assert all(_executes_to_answer(r) for r in recs)
    assert set(Counter(r["meta"]["template"] for r in recs)) == set(TEMPLATES)
    assert {r["answer_type"] for r in recs} == {"number", "bool"}
    assert all(r["meta"]["difficulty"] == "easy" and r["source"] == "synthetic" for r in recs)
    for r in recs:
        value = execute_program(r["program"], r["meta"]["table"])
        if isinstance(value, str): continue
        assert value != 0 and abs(value * 100 - round(value * 100)) < 1e-6, (r["id"], value)      # ≤ 2 decimals, exact
        assert len(r["answer"]) <= 7 and not re.search(r"\.\d*0%?$", r["answer"]), r["answer"]       # '25%', '1.5', never '25.00%'
    # short tables of round values: header + 3 rows, 2–3 years, whole numbers below 1000 (totals below 2000)
    for r in recs:
        table = r["meta"]["table"]
        assert len(table) == 4 and 3 <= len(table[0]) <= 4, table
        cells = [float(c.replace("$", "").replace(",", "").strip()) for row in table[1:] for c in row[1:]]
        assert all(c == int(c) and 0 < c < 2000 for c in cells), table

def test_easy_splits_disjoint_seeded_and_distinct_from_standard():
    train = synthetic_records(1500, seed=0, difficulty="easy")
    test = synthetic_records(300, seed=0, split="test", difficulty="easy")
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert len({r["question"] for r in train}) == 1500
    assert synthetic_records(40, seed=0, difficulty="easy") == train[:40]
    assert synthetic_records(40, seed=5, difficulty="easy") != train[:40]
    assert not {r["question"] for r in train} & {r["question"] for r in synthetic_records(300, seed=0)}
    with pytest.raises(ValueError, match="difficulty must be one of"): synthetic_records(1, difficulty="hard")

def test_easy_prompts_and_traces_fit_tiny():
    from finr1.answers import format_completion
    from finr1.programs import render_trace
    tok, tiny = load_tokenizer(), load_profile("tiny")
    recs = synthetic_records(200, seed=0, difficulty="easy")
    std = prompt_tokens(synthetic_records(200, seed=0), tok, sample=None)
    lens = prompt_tokens(recs, tok, sample=None)
    assert statistics.median(lens) < statistics.median(std) and max(lens) <= 260, (statistics.median(lens), max(lens))
    # the program teacher's whole completion (think + answer) fits GRPO's completion budget with a margin
    done = [len(tok(format_completion(*render_trace(r)))["input_ids"]) for r in recs]
    assert max(done) + 4 <= tiny["grpo_max_completion_length"], (max(done), tiny["grpo_max_completion_length"])

# ---------------------------------------------------------------- decontamination

def test_decontamination_drops_the_right_pages():
    rec = lambda id, src="finqa": make_record(f"{src}/{id}", src, f"question about {id}", "1", page=finqa_page(id))
    train = [rec("ETR/2016/page_23.pdf-1"), rec("ETR/2016/page_23.pdf-4"), rec("ETR/2016/page_24.pdf-1"),
             rec("Double_ETR/2016/page_23.pdf", "convfinqa"), make_record("tfns/x", "tfns", "Tweet: same text", "bullish", "label")]
    evals = {"finqa": [rec("ETR/2016/page_23.pdf-2")], "tfns": [make_record("tfns/y", "tfns", "tweet:  SAME text", "bullish", "label")]}
    kept, rep = decontaminate(train, evals)
    assert [r["id"] for r in kept] == ["finqa/ETR/2016/page_24.pdf-1"]
    assert rep["dropped"] == 4 and rep["dropped_pages"] == ["page:ETR/2016/page_23.pdf"]
    assert rep["dropped_by_source"] == {"finqa": 2, "convfinqa": 1, "tfns": 1}

def test_decontamination_on_real_pages(data_dir):
    "ConvFinQA dev sits on FinQA dev pages: using it as a benchmark removes exactly those FinQA records."
    finqa, conv = SOURCES["finqa"].train(data_dir/"finqa", None), SOURCES["convfinqa"].eval(data_dir/"convfinqa", None)
    conv_pages = {r["meta"]["page"] for r in conv}
    kept, rep = decontaminate(finqa, {"convfinqa": conv})
    assert rep["dropped"] == sum(r["meta"]["page"] in conv_pages for r in finqa) > 0
    assert not any(r["meta"]["page"] in conv_pages for r in kept)
    assert len(kept) + rep["dropped"] == 226
    assert {p.removeprefix("page:") for p in rep["dropped_pages"]} <= conv_pages
    # the shared README's held-out guard: no FinQA test page is a page of the dev/train subsets
    test_pages = {r["meta"]["page"] for r in load_finqa(data_dir/"finqa", "test")}
    assert not test_pages & {r["meta"]["page"] for r in finqa}

# ---------------------------------------------------------------- the stage

def test_run_stage_without_real_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path); monkeypatch.delenv("FINR1_DATA_DIR", raising=False)
    # the benchmarks are named here, so the test does not follow tiny's tuning of its eval set
    cfg = load_profile("tiny", synthetic_train_n=12, synthetic_test_n=6, eval_benchmarks=["synthetic", "finqa", "convfinqa", "tfns"])
    counts = run_stage(tmp_path/"run", cfg)
    assert counts["train"] == 12 and counts["eval_synthetic"] == 6
    rep = read_json(tmp_path/"run"/"data"/"data_report.json")
    assert set(rep["skipped"]) == {"eval/finqa", "eval/convfinqa", "eval/tfns"}
    assert all("no real data" in why for why in rep["skipped"].values())
    assert sorted(p.name for p in (tmp_path/"run"/"data"/"eval").iterdir()) == ["synthetic.jsonl"]
    man = read_json(tmp_path/"run"/"manifest.json")["data"]
    assert man["counts"]["train"] == 12 and "data/train.jsonl" in man["outputs"]
    # tiny trains and evaluates on the easy curriculum; the paper profile keeps the standard generator
    recs = read_jsonl(tmp_path/"run"/"data"/"train.jsonl") + read_jsonl(tmp_path/"run"/"data"/"eval"/"synthetic.jsonl")
    assert all(r["meta"]["difficulty"] == "easy" for r in recs)
    assert load_profile("paper")["synthetic_difficulty"] == "standard"

def test_run_stage_with_real_data(tmp_path, data_dir):
    cfg = load_profile("smoke", data_dir=str(data_dir), train_sources=["synthetic", "finqa", "convfinqa", "tfns", "finance_instruct"],
                       eval_benchmarks=["synthetic", "finqa", "convfinqa", "tfns", "fin_eva", "finance_instruct"], eval_n=20, max_per_source=10)
    counts = run_stage(tmp_path, cfg)
    rep = read_json(tmp_path/"data"/"data_report.json")
    # whole benchmarks are written (eval_n is applied by the eval stage), and training is decontaminated against all of
    # them: ConvFinQA's only training pool here is the dev split that is also its benchmark, so none of it is kept
    assert rep["eval"] == dict(synthetic=8, finqa=947, convfinqa=803, tfns=2388, fin_eva=2343)
    assert rep["train"] == dict(synthetic=16, finqa=10, convfinqa=0, tfns=10)
    assert "allow_hub_download" in rep["skipped"]["train/finance_instruct"] and "eval/finance_instruct" in rep["skipped"]
    assert rep["decontamination"]["convfinqa"]["dropped"] > 0 and counts["decontamination_dropped"] == rep["decontamination_dropped"]
    train = read_jsonl(tmp_path/"data"/"train.jsonl")
    eval_keys = {page_key(r) for p in (tmp_path/"data"/"eval").glob("*.jsonl") for r in read_jsonl(p)}
    assert len(train) == counts["train"] == 36 and not any(page_key(r) in eval_keys for r in train)
    assert (tmp_path/"data"/"data_summary.md").read_text().startswith("# Data stage summary")
    # seeded: the same config gives the same files
    run_stage(tmp_path/"again", cfg)
    assert (tmp_path/"again"/"data"/"train.jsonl").read_bytes() == (tmp_path/"data"/"train.jsonl").read_bytes()

def test_to_dataset_keeps_every_field(data_dir):
    recs = synthetic_records(3) + load_convfinqa(data_dir/"convfinqa", "dev")[:3] + load_tfns(data_dir/"tfns", "valid")[:2]
    ds = to_dataset(recs)
    assert len(ds) == 8 and json.loads(ds[4]["meta_json"])["table"] == recs[4]["meta"]["table"]
    assert ds[4]["history"] == recs[4]["history"]
