"""The decoded-text round trip of every REFINER task through every tokenizer the recipes use (issue 13.1, 13.2):
gold z -> decoder labels (common.training.target_ids) -> the generation decode (seq2seq.decode,
skip_special_tokens) -> the task's parser and metrics."""

import pytest

from common.tasks.refiner import moral_stories, mwp, snlr
from common.tasks.refiner.format import M_ACT, NO_HINT, canonical, is_no_hint
from common.tasks.refiner.seq2seq import decode
from common.training import target_ids

MWP = {
    "id": "m",
    "x": "he had number0 cards and got number1 more and gave number2 away . how many now ?",
    "z": "#0: add ( number0, number1 ) | #1: subtract ( #0, number2 ) | #2: divide ( #1, 100.5 ) | EOS",
    "numbers": [5.0, 4.0, 2.0],
    "answer": 7.0 / 100.5,
}
SNLR_RECORD = {
    "rules": [
        "If a plant is red, then the plant is old.",
        "If a plant is sad, then the plant is boring.",
        "If a plant is purple, then the plant is big.",
        "If a plant is happy and cold, then the plant is fast.",
        "If a plant is sad and blue, then the plant is strong.",
    ],
    "fact": "The rose is sad and violet.",
    "consequents": "The rose is boring and big",
    "explanations": "#0: rose is plant #1: rose is sad #2: violet is purple #3: rose is purple #4: rose is boring and big ",
    "implicit_knowledge": ["violet is purple", "rose is plant"],
}
NOTHING_RECORD = dict(
    SNLR_RECORD,
    fact="The rose is cold.",
    consequents="Nothing",
    explanations="#0: The argument is invalid!! ",
    implicit_knowledge=["#0: The argument is invalid!! "],
)
STORY = {
    "ID": "s1",
    "norm": "It's rude to ignore your friend's guests.",
    "situation": "Ann has a guest.",
    "intention": "Ann wants to read.",
    "moral_action": "Ann chats with her guest, who's new in town.",
    "immoral_action": "Ann reads her book.",
}
FEEDBACK = [
    NO_HINT,
    "the operator in #0 is incorrect. the second number in #2 is incorrect.",
    "the or operator makes inference rule #4 invalid.",
    "missing link between the fact and the rules.",
    "contradiction",
    "not ignoring your friend's guests.",
]
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'#|()_-"


def t5_like_tokenizer():
    """A SentencePiece Unigram tokenizer (what transformers runs for T5) whose vocabulary lacks `<`, `{` and `}`,
    as T5's does: they encode to <unk>, which skip_special_tokens drops."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Replace("  ", " ")
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    corpus = [MWP["z"], SNLR_RECORD["explanations"], STORY["norm"], STORY["moral_action"], M_ACT, *FEEDBACK, ALPHABET]
    trainer = trainers.UnigramTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        initial_alphabet=list(ALPHABET),
    )
    tk.train_from_iterator([c.replace("<", "").replace("|M_ACT|>", "") for c in corpus] * 3, trainer)
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    assert tok.convert_tokens_to_ids("<") == tok.unk_token_id  # like T5
    return tok


def minilm_tokenizer():
    """MiniLM's uncased WordPiece tokenizer, the offline seq2seq default's (common.models)."""
    from common.models import load_tokenizer

    return load_tokenizer("all-minilm-l6-v2")


TOKENIZERS = {"t5_unigram": t5_like_tokenizer, "minilm_wordpiece": minilm_tokenizer, "byte_bpe": None}


@pytest.fixture(params=sorted(TOKENIZERS), scope="module")
def tok(request, tiny_tokenizer):
    make = TOKENIZERS[request.param]
    return make() if make else tiny_tokenizer


def round_trip(tok, text: str) -> str:
    (decoded,) = decode(tok, [target_ids(tok, text, 256)])
    return decoded


def test_the_old_marker_does_not_survive_these_tokenizers(tok):
    # why format.M_ACT is words: REFINER's `<|M_ACT|>` decodes as `< | m _ act | >` or loses its `<`
    raw = tok.batch_decode([target_ids(tok, f"Be kind. {moral_stories.REFINER_M_ACT} Ann helps.", 64)], True)[0]
    if tok.convert_tokens_to_ids("<") == tok.unk_token_id or "< |" in raw:
        assert moral_stories.REFINER_M_ACT not in raw
    assert moral_stories.action_of(raw).lower() == "ann helps."  # still read, in any decoded spelling


def test_mwp_round_trip(tok):
    decoded = round_trip(tok, MWP["z"])
    assert mwp.parse(decoded) == mwp.parse(MWP["z"])
    assert mwp.metrics([MWP], [decoded]) == {
        "n": 1,
        "equation_em": 100.0,
        "answer_acc": 100.0,
        "answer_n": 1,
        "parsed": 100.0,
    }
    assert mwp.critique(MWP, decoded) == NO_HINT


def test_snlr_round_trip(tok, tmp_path):
    import json

    path = tmp_path / "srn_round.json"
    path.write_text(json.dumps([SNLR_RECORD, NOTHING_RECORD]))
    examples = snlr.load_examples(path)
    decoded = [round_trip(tok, e["z"]) for e in examples]
    assert snlr.metrics(examples, decoded) == {"n": 2, "ir_exact_match": 100.0, "consequent_accuracy": 100.0}
    assert [snlr.critique(e, z) for e, z in zip(examples, decoded)] == [NO_HINT, NO_HINT]
    assert snlr.steps(decoded[0])[-1].lower() == "rose is boring and big"


def test_moral_stories_round_trip(tok, tmp_path):
    import json

    path = tmp_path / "ms.jsonl"
    path.write_text(json.dumps(STORY) + "\n")
    (example,) = moral_stories.load_examples(path)
    decoded = round_trip(tok, example["z"])
    assert M_ACT in decoded
    assert moral_stories.norm_of(decoded).lower() == STORY["norm"].lower()
    assert moral_stories.action_of(decoded).lower() == STORY["moral_action"].lower()
    scores = moral_stories.metrics([example], [decoded])
    assert scores["norm_rouge_l"] == scores["action_rouge_l"] == scores["norm_no_hint"] == 100.0
    assert moral_stories.critique(example, decoded) == NO_HINT


def test_critic_feedback_round_trip(tok):
    for feedback in FEEDBACK:
        assert round_trip(tok, feedback).lower() == feedback.lower()
    assert is_no_hint(round_trip(tok, NO_HINT))


def test_canonical_is_idempotent_and_linear():
    import time

    decoded = "# 0 : poppy is plant # 1 : poppy is strong ! ! you should help others when they ' re in danger ."
    once = canonical(decoded)
    assert once == "#0: poppy is plant #1: poppy is strong!! you should help others when they're in danger."
    assert canonical(once) == once
    for old in ("<|M_ACT|>", "< | m _ act | >", "|M_ACT|>", "moral action :", "Moral action:"):
        assert canonical(f"Be kind. {old} Ann helps.") == f"Be kind. {M_ACT} Ann helps."
    started = time.perf_counter()
    canonical("# " + " " * 300_000 + "' " * 100_000 + "< | m _" * 20_000)
    assert time.perf_counter() - started < 1.0


def test_critic_scores_on_hand_made_feedback():
    from common.tasks.refiner.format import critic_scores, feedback_sentences

    targets = ["No hint.", "No hint.", "the operator in #0 is incorrect. add an operator.", "contradiction"] + [
        "contradiction"
    ]
    said = ["no hint .", "the operator in # 0 is incorrect.", "add an operator. the operator in #0 is incorrect."]
    said += [NO_HINT, "No hint"]
    scores = critic_scores(targets, said, ["gold", "gold", "operator", "contradiction", "contradiction"])
    assert scores == {
        "n": 5,
        "feedback_exact_match": 40.0,  # the decoded "No hint" and the reordered sentences (refiner.md 2.6)
        "no_hint_precision": 33.33,  # said "No hint" three times, once rightly
        "no_hint_recall": 50.0,  # one of the two gold "No hint." found
        "no_hint_n": 2,
        "exact_match_contradiction": 0.0,
        "exact_match_gold": 50.0,
        "exact_match_operator": 100.0,
    }
    assert feedback_sentences("the second number in #1 is incorrect.") != feedback_sentences("the second number")
    with pytest.raises(ValueError, match="1 predictions for 5"):
        critic_scores(targets, said[:1])
