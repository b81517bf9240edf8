"""Shared texts and batches: eight rows of anchors, positives and two negative columns over the tiny vocabulary, their
labels, the texts of the embedding comparisons, and batches (columns of texts) built from them."""

import torch

ANCHORS = [
    "a man is playing the guitar",
    "a woman eats",
    "the dog runs in the park with a ball",
    "two people ride a bus",
    "a child reads",
    "it is sunny outside today",
    "a horse is running on the beach in the sun",
    "what is the weather",
]
POSITIVES = [
    "a man plays guitar",
    "a woman is eating food in the kitchen",
    "a dog is running",
    "people riding the bus in the city",
    "the child is reading a book",
    "so sunny",
    "a horse runs",
    "the weather today is lovely",
]
NEGATIVES_1 = [
    "a cat sits on the table",
    "snow on the road",
    "an old woman plays piano",
    "the train is fast",
    "a bird sits in the rain",
    "it is raining",
    "three people sit at a table",
    "a red car",
]
NEGATIVES_2 = [
    "the river",
    "a small green book on a big chair",
    "who reads",
    "a young man rides a car on the street",
    "sad",
    "the bus is slow",
    "many people in the park",
    "where is the water",
]
SCORES = [0.9, 0.1, 0.5, 0.5, 0.9, 0.0, 0.3, 0.5]
"""Gold scores with ties (CoSENT must not penalise equally scored pairs)."""
CLASSES = [0, 1, 2, 1, 0, 2, 2, 1]

PAIR = [ANCHORS, POSITIVES]
SCORE_LABELS = torch.tensor(SCORES)
CLASS_LABELS = torch.tensor(CLASSES)
TRIPLET = [ANCHORS, POSITIVES, NEGATIVES_1]
QUADRUPLET = [ANCHORS, POSITIVES, NEGATIVES_1, NEGATIVES_2]
MARGINS = torch.tensor([[0.5, 1.0], [0.2, -0.3], [1.5, 0.7], [0.0, 0.1], [2.0, 1.0], [-0.5, 0.3], [0.9, 0.4], [0.3, 0.6]])
TEACHER_SCORES = torch.tensor([[3.0, 1.0, 0.5], [2.0, 2.5, 0.1], [1.0, 0.0, -1.0], [4.0, 3.5, 3.0],
                               [0.5, 0.4, 0.3], [2.2, 0.1, 1.1], [1.0, 1.0, 0.0], [3.3, 2.0, 2.5]])

TEXTS = [  # embedded by both libraries in the model-folder comparisons
    "a",
    "the dog",
    "a man is playing the guitar in the park",
    "what is the weather today ? it is sunny outside , a lovely day",
    "zzyzx qwerty",  # out-of-vocabulary words, split into many word pieces
    " ".join(["two young people ride a big red bus on the road to the city and the beach"] * 6),  # > 64 tokens
]
