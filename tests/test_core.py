"The executor reproduces FinQA's gold answers on every real FinQA file that carries programs."
import json
from finr1.programs import check_executor, execute_program
from finr1.run import read_jsonl

def test_executor_reproduces_finqa_test(data_dir):
    report = check_executor(data_dir/"finqa/finqa_test_assembled.jsonl")
    assert report["n"] == 947
    assert report["rate"] >= 0.99, report["exceptions"][:5]

def test_executor_on_original_format_tables(data_dir):
    "The original-format files carry real table rows; table_* programs must run on them."
    n = ok = 0
    for f in ["test_subset158_original_Augment_tableQA.json", "test_subset100_original_Dolphin2333.json",
              "dev_subset200_original_sukritganesh.json", "train_subset100_original_sukritganesh.json"]:
        for r in json.loads((data_dir/"finqa"/f).read_text()):
            n += 1
            got, want = execute_program(r["qa"]["program"], r["table"]), r["qa"]["exe_ans"]
            ok += got == want if isinstance(want, str) else abs(got - want) <= 1e-4 * max(1, abs(want))
    assert n == 141 + 84 + 126 + 100
    assert ok / n >= 0.99, (ok, n)
