import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.tasks.rationalyst import choose_shots, context, mmlu_pro


def row(qid, category, answer, cot=""):
    options = [f"option {i}" for i in range(10)]
    return {
        "question_id": qid,
        "question": f"Question {qid} about {category}?",
        "options": options,
        "answer": answer,
        "answer_index": "ABCDEFGHIJ".index(answer),
        "cot_content": cot,
        "category": category,
        "src": "ori_mmlu",
    }


COT = "A: Let's think step by step. Water boils at 100 C at sea level. So the answer is (C)."
VALIDATION = [row(i, "physics" if i % 2 else "law", "C", COT.replace("Water", f"Fact {i}")) for i in range(12)]
TEST = [row(100, "physics", "J"), row(101, "law", "A")]


def write_hub_snapshot(root):
    """The Hub snapshot's layout: data/{test,validation}-00000-of-00001.parquet."""
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(TEST), root / "data" / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(VALIDATION), root / "data" / "validation-00000-of-00001.parquet")
    return root


def test_load_parquet_snapshot_and_jsonl(tmp_path):
    root = write_hub_snapshot(tmp_path / "MMLU-Pro")
    qs = mmlu_pro.load("test", root)
    assert [(q["answer"], q["category"], len(q["choices"])) for q in qs] == [("J", "physics", 10), ("A", "law", 10)]
    f = tmp_path / "test.jsonl"
    f.write_text(json.dumps(dict(TEST[0], answer="K")) + "\n")
    with pytest.raises(ValueError, match="record 0: answer 'K'"):
        mmlu_pro.load("test", f)


def test_five_shots_of_the_same_category(tmp_path):
    root = write_hub_snapshot(tmp_path / "MMLU-Pro")
    shots = choose_shots(mmlu_pro, mmlu_pro.shot_pool(root), 5, seed=14)
    assert sorted(shots) == ["law", "physics"] and all(len(v) == 5 for v in shots.values())
    q = mmlu_pro.load("test", root)[0]
    msgs = context(mmlu_pro, q, shots)
    assert msgs[0] == {"role": "system", "content": mmlu_pro.SYSTEM.format(category="physics")}
    users = [m["content"] for m in msgs if m["role"] == "user"]
    assert len(users) == 6 and all("about physics" in u for u in users)
    first = msgs.index({"role": "user", "content": users[0]})
    # 6.2: cot_content minus "A: ", split on ". "
    n = int(users[0].split()[2])
    assert [m["content"] for m in msgs[first + 1 : first + 4]] == [
        "Let's think step by step.",
        f"Fact {n} boils at 100 C at sea level.",
        "So the answer is (C).",
    ]


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("The correct choice is the last one. The answer is (J).", "J", "J"),
        ("the answer is J", "J", "J"),
        ("Answer: J", None, "J"),
        ("Answer: j", None, "J"),
        ("J", None, "J"),
        ("The answer is (J) or (I).", None, None),
        ("Heat flows from hot to cold at 100 °C.", None, None),
        ("(J) option 9", None, "J"),
        ("I am not sure.", None, None),  # the reference returned a random letter here
        ("The answer is (K).", None, None),
    ],
)
def test_extraction_never_guesses(output, strict, flexible):
    q = mmlu_pro.example(TEST[0], "x", "t")
    for _ in range(3):
        assert mmlu_pro.predict(output, q, "strict") == strict
        assert mmlu_pro.predict(output, q, "flexible") == flexible
    assert mmlu_pro.is_correct(flexible, "J") is (flexible == "J")
