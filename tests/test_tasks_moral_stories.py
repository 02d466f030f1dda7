import json
import random

import pytest

from common.artifacts import BadRecordError
from common.tasks.refiner import moral_stories as ms
from common.tasks.refiner.format import NO_HINT
from tests.conftest import shared_data

BRIAN_Z = (
    f"You should help others when they're in danger. {ms.M_ACT} Brian drags his hose next door and starts "
    "putting out the fire at his neighbor's house."
)


@pytest.fixture(scope="module")
def prep():
    return ms.load_examples(shared_data("refiner", "moral_stories", "critic_dev_prep.json"))


def test_actor_and_prep_files_give_the_same_x_and_z(prep):
    actor = ms.load_examples(shared_data("refiner", "moral_stories", "actor_dev.json"))
    raw = json.loads(shared_data("refiner", "moral_stories", "actor_dev.json").read_text())
    assert len(actor) == len(prep) == 1000
    assert [(a["id"], a["x"], a["z"]) for a in actor] == [(p["id"], p["x"], p["z"]) for p in prep]
    # refiner.md 1.3, with format.M_ACT for <|M_ACT|> (issue 13.1)
    assert [(r["actor_input"], r["actor_output"].replace("<|M_ACT|>", ms.M_ACT)) for r in raw] == [
        (a["x"], a["z"]) for a in actor
    ]
    assert prep[0]["z"] == BRIAN_Z and prep[0]["x"].endswith("with his hose. <|NRM|>")
    assert actor[0]["anti_norms"] == [] and actor[0]["norm_sentiment"] == 1  # no prep fields: polarity of the norm


def test_moral_stories_jsonl_and_bad_records(tmp_path):
    story = {
        "ID": "s1",
        "norm": "It's rude to ignore a guest.",
        "situation": "Ann has a guest.",
        "intention": "Ann wants to read.",
        "moral_action": "Ann chats with her guest.",
        "immoral_action": "Ann reads her book.",
        "moral_consequence": "-",
        "immoral_consequence": "-",
        "label": 1,
    }
    path = tmp_path / "ms.jsonl"
    path.write_text(json.dumps(story) + "\n\n" + json.dumps(dict(story, ID="s2", situation="")) + "\n")
    with pytest.raises(BadRecordError, match=r"ms.jsonl:3: empty or missing situation"):
        ms.load_examples(path)
    (ex,) = ms.load_examples(path, "skip")
    assert ex["x"] == "<|SIT|> Ann has a guest. <|INT|> Ann wants to read. <|I_ACT|> Ann reads her book. <|NRM|>"
    assert (
        ex["z"] == f"It's rude to ignore a guest. {ms.M_ACT} Ann chats with her guest." and ex["norm_sentiment"] == -1
    )


def test_oracle_on_worked_examples(prep):
    brian = prep[0]  # norm_sentiment 2, norm_action "helping others when they're in danger."
    act = f" {ms.M_ACT} Brian drags his hose next door."
    cases = [
        (BRIAN_Z, NO_HINT),
        ("It is right to help others when they're in danger." + act, NO_HINT),  # a paraphrase
        ("It's wrong not to help others when they're in danger." + act, ms.CONTRADICTION),  # the anti-norm
        ("it's right to protect property" + act, "helping others when they're in danger."),  # fake norm, +1
        ("It's rude to drag hose" + act, "not helping others when they're in danger."),  # fake norm, -1: negated
        ("You shouldn't help others when they are in danger." + act, ms.CONTRADICTION),  # free text, same action
        ("People should help others who are in danger." + act, NO_HINT),
        ("You should mow the lawn." + act, "helping others when they're in danger."),  # misaligned
        ("It is rude to ignore a neighbor." + act, "not helping others when they're in danger."),
    ]
    for z, feedback in cases:
        assert ms.critique(brian, z) == feedback, z
    assert ms.critique(prep[1], "It's wrong to turn on some music") == "not being careful around your friend's things."


def test_every_perturbation_changes_z_and_gets_its_feedback(prep):
    counts = {k: 0 for k in ms.PERTURBATIONS}
    for ex in prep:
        for kind, wrong in ms.perturbations(ex, random.Random(0)):
            counts[kind] += 1
            assert wrong != ex["z"] and wrong.endswith(f" {ms.M_ACT} " + ex["moral_action"])
            feedback = ms.critique(ex, wrong)
            if kind == "paraphrase":
                assert feedback == NO_HINT
            elif kind == "contradiction":
                assert feedback == ms.CONTRADICTION
            else:
                assert feedback in (ms.hint(ex, False), ms.hint(ex, True))
    assert counts == {"paraphrase": 4542, "contradiction": 4840, "fake_norm": 5936}


def test_every_fake_norm_is_used_and_keeps_its_case(prep):
    brian = prep[0]
    fakes = [w.split(f" {ms.M_ACT} ")[0] for k, w in ms.perturbations(brian, random.Random(0)) if k == "fake_norm"]
    assert len(fakes) == len(brian["fake_norms"]) == 7  # the reference dropped the last one
    assert fakes[-1] == "It's right to protect property"
    wrongs = [w for _, w in ms.perturbations(prep[3], random.Random(0))]
    assert "It is wrong to join a Facebook group for the local community" in " ".join(wrongs)  # not "facebook"


def test_inverted_judgment_without_prep_fields():
    assert ms.invert("You should help others.") == "You must not help others."
    assert ms.invert("It's rude to ignore a guest.") == "It is important to ignore a guest."
    assert ms.invert("It's expected that you help.") is None
    actor = ms.load_examples(shared_data("refiner", "moral_stories", "actor_dev.json"))
    pairs = [(ex, w) for ex in actor for _, w in ms.perturbations(ex, random.Random(0))]
    assert len(pairs) == 629 and all(ms.critique(ex, w) == ms.CONTRADICTION for ex, w in pairs)


def test_overlap_metrics_on_hand_made_predictions(prep):
    assert ms.rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(2 * 5 / 11)
    assert ms.rouge_l("a b c d", "d c b a") == pytest.approx(2 * 1 / 8)  # LCS 1, bag overlap 4
    # rouge-score's tokens: lower-cased alphanumeric runs; LCS 4 of 5 and 4 tokens: F = 2 * 4 / (5 + 4)
    assert ms.rouge_l("You SHOULDN'T lie, ever.", "you shouldn t lie") == pytest.approx(8 / 9)
    assert ms.rouge_l("lying is bad", "lie is bad") == pytest.approx(2 * 2 / 6)  # no stemming
    assert ms.token_f1("a b c d", "d c b a") == 1.0
    assert ms.rouge_l("", "x") == ms.token_f1("x", "") == 0.0
    examples = prep[:2]
    predictions = [BRIAN_Z, "You should be careful around things."]  # the second has no action
    scores = ms.metrics(examples, predictions)
    norm_f = 2 * 6 / (6 + 9)  # all 6 tokens in order in the gold's 9 (friend's -> friend s)
    assert scores == {
        "n": 2,
        "norm_rouge_l": round(100 * (1 + norm_f) / 2, 2),
        "norm_token_f1": round(100 * (1 + norm_f) / 2, 2),
        "action_rouge_l": 50.0,
        "action_token_f1": 50.0,
        "norm_no_hint": 100.0,
    }


@pytest.mark.parametrize(
    "norm,sign",
    [
        ("Lying to your parents is bad.", -1),  # issue 13.4: the judgment at the end
        ("Stealing from a store is wrong", -1),
        ("Cheating on your partner is really hurtful.", -1),
        ("Helping your neighbors is good.", 1),
        ("Keeping promises to your friends is expected.", 1),
        ("Don't lie to your friends.", -1),
        ("Never cheat.", -1),
        ("You shouldn't lie to your friends.", -1),
        ("It's good to help people who are not well.", 1),  # the action's "not" is not the judgment
        ("Family members should not fight at the table.", -1),  # no known prefix or suffix: the whole sentence
    ],
)
def test_polarity_reads_the_judgment_wherever_it_is(norm, sign):
    assert ms.polarity(norm) == sign


# issue 18.8: each perturbation of two dev stories with its feedback written out by hand from refiner.md 2.4
# (a fake norm's hint is the gold norm_action, negated when its judgment and the gold's disagree), not read
# from the lists the oracle reads
BRIAN_HELPS = "helping others when they're in danger."
ANN_CAREFUL = "being careful around your friend's things."
EXPECTED_PERTURBATIONS = {
    0: [
        ("paraphrase", "It's good to help others when they're in danger.", NO_HINT),
        ("paraphrase", "It is right to help others when they're in danger.", NO_HINT),
        ("paraphrase", "It's usual to help others when they're in danger.", NO_HINT),
        ("paraphrase", "It's proper to help others when they're in danger.", NO_HINT),
        ("paraphrase", "It's important to help others when they're in danger.", NO_HINT),
        ("contradiction", "It's wrong not to help others when they're in danger.", "contradiction"),
        ("fake_norm", "You must keep the fire", BRIAN_HELPS),
        ("fake_norm", "It is usual to be on fire", BRIAN_HELPS),
        ("fake_norm", "It's rude to put out the fire at house", "not " + BRIAN_HELPS),
        ("fake_norm", "You must spread to house", BRIAN_HELPS),
        ("fake_norm", "It is bad to spray any flames on property with hose", "not " + BRIAN_HELPS),
        ("fake_norm", "It's rude to drag hose", "not " + BRIAN_HELPS),
        ("fake_norm", "It's right to protect property", BRIAN_HELPS),
    ],
    1: [
        ("paraphrase", "It is good to be careful around your friend's things.", NO_HINT),
        ("paraphrase", "It is right to be careful around your friend's things.", NO_HINT),
        ("paraphrase", "It's usual to be careful around your friend's things.", NO_HINT),
        ("paraphrase", "It is proper to be careful around your friend's things.", NO_HINT),
        ("paraphrase", "It is important to be careful around your friend's things.", NO_HINT),
        ("paraphrase", "You should be heedful around your friend's things.", NO_HINT),
        ("paraphrase", "You should be deliberate around your friend's things.", NO_HINT),
        ("contradiction", "It's rude to be careful around your friend's things.", "contradiction"),
        ("contradiction", "It is bad to be careful around your friend's things.", "contradiction"),
        ("contradiction", "It is unusual to be careful around your friend's things.", "contradiction"),
        ("contradiction", "You mustn't be careful around your friend's things.", "contradiction"),
        ("contradiction", "It's wrong to be careful around your friend's things.", "contradiction"),
        ("contradiction", "You should be careless around your friend's things.", "contradiction"),
        ("fake_norm", "It's wrong to turn on some music", "not " + ANN_CAREFUL),
        ("fake_norm", "You mustn't perform an aerobic routine in livingroom", "not " + ANN_CAREFUL),
        ("fake_norm", "It is wrong to get some exercise", "not " + ANN_CAREFUL),
        ("fake_norm", "You shouldn't be house sitting for a friend", "not " + ANN_CAREFUL),
        ("fake_norm", "It's bad to perform an aerobic routine", "not " + ANN_CAREFUL),
        ("fake_norm", "It's unusual to go out to the yard", "not " + ANN_CAREFUL),
    ],
}


@pytest.mark.parametrize("index", sorted(EXPECTED_PERTURBATIONS))
def test_perturbations_of_two_stories_get_the_hand_written_feedback(prep, index):
    ex = prep[index]
    got = [(kind, ms.norm_of(wrong), ms.critique(ex, wrong)) for kind, wrong in ms.perturbations(ex, random.Random(0))]
    assert got == EXPECTED_PERTURBATIONS[index]
    assert all(w.endswith(f" {ms.M_ACT} {ex['moral_action']}") for _, w in ms.perturbations(ex, random.Random(0)))
