"""Generate the quickstart's demo STS data: templated sentence pairs with graded similarity scores.

The sentences are written here (no third-party data). Scores follow how much two sentences share:
the same scene paraphrased scores high, a different actor or action scores lower, unrelated scenes
score near zero. Run from the repository root to regenerate:

    python recipes/data/make_demo_sts.py
"""

import csv
import random
from pathlib import Path

SUBJECTS = [  # (subject, a paraphrase of it)
    ("A man", "A guy"), ("A woman", "A lady"), ("A child", "A kid"), ("A dog", "A puppy"),
    ("A student", "A pupil"), ("An old man", "An elderly man"), ("A girl", "A young girl"),
    ("A boy", "A young boy"), ("A cat", "A kitten"), ("A neighbour", "The person next door"),
    ("A teacher", "An instructor"), ("A doctor", "A physician"),
]
ACTIONS = [  # (action, a paraphrase of it)
    ("is playing the guitar", "plays a guitar"), ("is riding a bike", "rides a bicycle"),
    ("is cooking dinner", "prepares a meal"), ("is reading a book", "reads a novel"),
    ("is swimming in a lake", "swims in the water"), ("is walking in the park", "strolls through the park"),
    ("is eating an apple", "eats a piece of fruit"), ("is sleeping on the couch", "naps on the sofa"),
    ("is painting a picture", "paints on a canvas"), ("is running on the beach", "jogs along the shore"),
    ("is driving a car", "drives an automobile"), ("is climbing a mountain", "hikes up a peak"),
    ("is writing a letter", "writes a note"), ("is dancing at a party", "dances at a celebration"),
]
CATEGORIES = [  # (same subject?, same action?, paraphrase subject?, score range)
    (True, True, False, (0.88, 1.0)),
    (True, True, True, (0.75, 0.9)),
    (False, True, False, (0.45, 0.6)),
    (True, False, False, (0.25, 0.4)),
    (False, False, False, (0.0, 0.1)),
]


def sentence(subject: str, action: str) -> str:
    return f"{subject} {action}."


def make_pairs(subjects, actions, count: int, rng: random.Random) -> list[tuple[str, str, float]]:
    pairs = []
    for _ in range(count):
        same_subject, same_action, paraphrase_subject, (low, high) = rng.choice(CATEGORIES)
        (subject, subject_alias), (action, action_alias) = rng.choice(subjects), rng.choice(actions)
        first = sentence(subject, action)
        other_subject = subject_alias if paraphrase_subject else subject
        if not same_subject:
            other_subject = rng.choice([s for s in subjects if s[0] != subject])[0]
        other_action = action_alias if same_action else rng.choice([a for a in actions if a[0] != action])[1]
        pairs.append((first, sentence(other_subject, other_action), round(rng.uniform(low, high), 3)))
    return pairs


def write(path: Path, pairs) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows(pairs)


def main() -> None:
    rng = random.Random(13)
    here = Path(__file__).parent
    # Test pairs use actors and actions never seen in training.
    write(here / "demo_sts_train.csv", make_pairs(SUBJECTS[:9], ACTIONS[:11], 480, rng))
    write(here / "demo_sts_test.csv", make_pairs(SUBJECTS[9:] + SUBJECTS[:3], ACTIONS[11:] + ACTIONS[:3], 200, rng))


if __name__ == "__main__":
    main()
