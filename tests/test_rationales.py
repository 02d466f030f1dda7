import pytest

from common.rationales import BOT, EOT, discounted_score, faithfulness, remove_rationales, scoring_frame, split_triples
from tests.conftest import DOC, REWRITE


def test_remove_rationales_and_faithfulness():
    assert remove_rationales(REWRITE).split() == DOC.split()
    assert faithfulness(DOC, REWRITE) == 1.0
    altered = REWRITE.replace("48", "84").replace("half as many", "twice as many")
    assert 0.9 < faithfulness(DOC, altered) < 1.0
    rewritten = "<BOT>think<EOT> Natalia had some clips and sold them to friends over two months."
    assert faithfulness(DOC, rewritten) < 0.9
    assert faithfulness("", REWRITE) == 0.0


def test_split_triples_following_is_only_the_next_segment():
    parsed = split_triples(REWRITE)
    assert parsed.malformed == parsed.empty == 0
    first, second = parsed.triples
    assert first.preceding == "Natalia sold clips to 48 of her friends in April."
    assert first.rationale == "Next we need May's sales, half of 48."
    assert first.following == "She sold half as many clips in May."  # not the rest of the document
    assert (first.index, first.left_steps) == (1, 1)
    # the preceding text of the second has the first rationale removed
    assert second.preceding == ("Natalia sold clips to 48 of her friends in April. She sold half as many clips in May.")
    assert second.following == "How many clips did she sell altogether?" and second.left_steps == 0


@pytest.mark.parametrize(
    "rewrite,n,malformed,empty",
    [
        ("A. <BOT>r1 B.", 0, 1, 0),  # no <EOT>
        ("A. <BOT>r1<EOT> B. <BOT>r2 C. <BOT>r3<EOT> D.", 2, 1, 0),  # the unclosed one is skipped, the rest kept
        ("<BOT>r0<EOT> A.", 0, 0, 1),  # empty preceding
        ("A. <BOT><EOT> B.", 0, 0, 1),  # empty rationale
        ("A. <BOT>r1<EOT>", 0, 0, 1),  # empty following
        ("A. <EOT> B. <BOT>r<EOT> C.", 1, 0, 0),  # a stray <EOT> is dropped
        ("No rationales at all.", 0, 0, 0),
    ],
)
def test_malformed_rewrites_are_counted_not_crashed_on(rewrite, n, malformed, empty):
    parsed = split_triples(rewrite)
    assert (len(parsed.triples), parsed.malformed, parsed.empty) == (n, malformed, empty)
    for t in parsed.triples:
        assert BOT not in t.preceding + t.following and EOT not in t.preceding + t.following


def test_unclosed_rationale_keeps_the_text_flowing():
    [_, last] = split_triples("A. <BOT>r1<EOT> B. <BOT>r2 C. <BOT>r3<EOT> D.").triples
    assert last.preceding.startswith("A.") and "B." in last.preceding and last.following == "D."


def test_discounted_score():
    assert discounted_score([-1.0, -2.0, -4.0]) == pytest.approx(-1.0 - 0.9 * 2 - 0.81 * 4)
    assert discounted_score([]) == 0.0


def test_scoring_frame_shares_the_preceding_text(tiny_tokenizer):
    render = lambda m: tiny_tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)  # noqa
    f = scoring_frame(render, "The cat sat.", "cats like mats")
    # cut before the last word, where no token can span the cut (see the real-tokenizer test in
    # test_score_rationales)
    assert f.prefix.endswith("The cat") and "<|im_start|>system" in f.prefix
    assert f.with_middle == " sat. <BOT>cats like mats<EOT>" + f.without_middle[len(" sat.") :]
    assert f.without_middle.startswith(" sat.<|im_end|>") and f.without_middle.endswith("<|im_start|>assistant\n")
    full = render(
        [
            {"role": "system", "content": f.prefix.split("system\n")[1].split("<|im_end|>")[0]},
            {"role": "user", "content": "The cat sat. <BOT>cats like mats<EOT>"},
        ]
    )
    assert f.prefix + f.with_middle == full
    plain = scoring_frame(render, "The cat sat.", "cats like mats", "plain")
    assert plain.with_middle.startswith(" sat.. cats like mats<|im_end|>") and "<BOT>" not in plain.prefix
    one_word = scoring_frame(render, "Hello.", "r", "plain")  # no space in the text: the cut is before its line
    assert one_word.prefix.endswith("<|im_start|>user") and one_word.with_middle.startswith("\nHello.. r<|im_end|>")


def test_released_triples_get_stable_content_ids():
    from common.rationales import content_id, triples

    released = [
        {"preceeding": "Q: 2+3?", "rationale": "Add them.", "following": "5"},
        {"preceeding": "Q: 2+3?", "rationale": "Add them.", "following": "5"},
        {"preceeding": "Q: 2+4?", "rationale": "Add them.", "following": "6"},
    ]
    counts = {}
    got = list(triples(released, counts))
    assert [t["preceding"] for t in got] == ["Q: 2+3?", "Q: 2+4?"] and counts["duplicates"] == 1
    assert got[0]["id"] == content_id("Q: 2+3?", "Add them.", "5") == list(triples(released[:1]))[0]["id"]
    assert got[0]["id"] != got[1]["id"] and "preceeding" not in got[0]
    ours = {"id": "doc-r1", "preceding": "a", "rationale": "b", "following": "c"}
    assert list(triples([ours])) == [ours]
    with pytest.raises(ValueError, match="following"):
        list(triples([{"preceeding": "a", "rationale": "b"}]))
