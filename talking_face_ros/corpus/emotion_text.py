"""Descriptive emotion text for every utterance, in the manner of text-annotated MEAD.

The text encoder learns emotion only from these phrases, so they are written to be learnable
and to generalise: every (emotion, intensity) has many paraphrases that share the class's
vocabulary (happy: smile, cheerful, joy; contemptuous: scorn, sneer, disdain ...) in different
constructions, and intensity is carried by words shared across emotions:

* level 1 (weak) always has a softener such as "slightly", "a little", "faintly", "a hint of";
* level 3 (strong) always has an intensifier or an extreme word ("utterly", "furious",
  "terrified", "sobbing");
* level 2 (medium) has neither, often a plain marker such as "clearly" or "visibly", or no
  modifier at all ("happy").

A quarter or more of each class's phrasings is held out of training (``split="heldout"``) to
measure how well the encoder understands paraphrases it has never read. Which ones is decided by
a hash of the text, not by hand, so the held-out set is not chosen to be easy; the short canonical
demo prompts (:data:`EMOTION_PROMPTS`) always stay in training.

Neutral has no expression layer at any intensity (see :mod:`talking_face_ros.emotions`), so it
has one set of phrasings, returned for every intensity and labelled ``("neutral", 1)``.
"""
from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from talking_face_ros.emotions import EMOTIONS, check

SPLITS: tuple[str, ...] = ("seen", "heldout", "all")

# The words that make intensity readable; every phrasing obeys them (tested).
INTENSITY_CUES: dict[int, frozenset[str]] = {
    1: frozenset("""slightly slight little bit touch mildly mild faintly faint quietly somewhat
        hint trace tad gently softly subtly subtle""".split()),
    2: frozenset("""clearly visibly quite noticeably openly fairly rather plainly obviously
        evidently genuinely decidedly""".split()),
    3: frozenset("""extremely utterly utter completely deeply absolutely intensely totally total
        wildly sheer overwhelmed uncontrollably overjoyed ecstatic elated euphoric jubilant
        bursting thrilled beaming radiant heartbroken devastated sobbing inconsolable despair
        weeping furious fury rage raging seething livid enraged fuming incandescent explode
        astonished astonishment astounded stunned flabbergasted thunderstruck staggered
        terrified petrified paralysed panic panicking panicked terror horror screaming
        revolted sickened nauseated gagging retching withering scathing dripping""".split()),
}

_PHRASINGS: dict[tuple[str, int], tuple[str, ...]] = {
    ("neutral", 1): (
        "neutral", "calm and even", "matter-of-fact", "no particular emotion", "expressionless",
        "relaxed and neutral", "a plain, neutral face", "calm and composed", "even-toned",
        "impassive", "emotionally flat", "composed, without emotion", "straight-faced",
        "a neutral expression", "unemotional", "speaking normally", "at ease and neutral",
        "steady and calm", "level-headed and calm", "a relaxed, blank face", "dispassionate",
        "cool and collected", "a calm, ordinary tone", "neutral and composed", "looks calm",
        "sounds neutral", "speaking with a calm, even voice", "a calm, relaxed face",
        "without any emotion", "a blank, neutral look",
        "no emotion in the voice",
    ),
    ("happy", 1): (
        "slightly happy", "a little cheerful", "mildly pleased", "with a faint smile",
        "smiling slightly", "quietly content", "a touch of joy in the voice", "somewhat glad",
        "a bit upbeat", "a hint of a smile", "gently cheerful", "mildly amused",
        "faintly smiling, in a good mood", "softly pleased", "a tad happy", "subtly smiling",
        "slightly glad and warm", "looks a little happy", "sounds slightly cheerful",
        "speaking with a slightly happy voice", "a faintly joyful face",
        "quietly pleased, almost smiling",
    ),
    ("happy", 2): (
        "happy", "clearly happy", "visibly cheerful", "quite pleased", "smiling openly",
        "noticeably glad", "fairly joyful", "in a good mood", "genuinely happy and smiling",
        "rather delighted", "obviously pleased, with a broad smile", "evidently in good spirits",
        "openly cheerful and warm", "visibly happy, grinning", "quite upbeat",
        "clearly amused, with a chuckle", "decidedly cheerful", "plainly glad", "looks happy",
        "sounds cheerful", "speaking with a happy voice", "a smiling, joyful face",
        "joy in the voice",
    ),
    ("happy", 3): (
        "overjoyed", "beaming with joy", "absolutely delighted", "ecstatic", "extremely happy",
        "bursting with joy", "wildly cheerful, laughing out loud", "utterly elated",
        "thrilled to bits", "completely overjoyed, grinning from ear to ear", "euphoric",
        "intensely happy", "jubilant, with a huge grin", "totally thrilled", "radiant with joy",
        "deeply joyful, laughing", "absolutely over the moon", "extremely cheerful and beaming",
        "looks overjoyed", "sounds extremely happy", "speaking with an ecstatic voice",
        "a beaming, utterly joyful face",
        "sheer joy in the voice",
    ),
    ("sad", 1): (
        "slightly sad", "a little down", "mildly disappointed", "a touch of sadness in the voice",
        "quietly sad", "somewhat glum", "a bit low", "faintly sorrowful", "with a hint of sadness",
        "slightly downcast", "a little melancholy", "softly unhappy", "a bit gloomy",
        "mildly dejected", "a trace of sorrow in the face", "slightly wistful",
        "gently sad, eyes lowered", "a tad unhappy", "subtly sad", "looks a little sad",
        "sounds slightly unhappy", "speaking with a faintly sad voice",
    ),
    ("sad", 2): (
        "sad", "clearly sad", "visibly upset", "quite unhappy", "noticeably downcast",
        "fairly gloomy", "obviously sorrowful", "plainly dejected", "rather melancholy",
        "genuinely sad, voice heavy", "evidently down", "openly disappointed",
        "on the verge of tears", "quite glum", "clearly hurt and sad", "noticeably mournful",
        "decidedly unhappy", "sad, holding back tears", "looks sad", "sounds unhappy",
        "speaking with a sad voice", "a sad, downcast face",
        "sadness in the voice",
    ),
    ("sad", 3): (
        "heartbroken", "devastated", "sobbing with grief", "utterly miserable",
        "deeply sorrowful", "overwhelmed with sadness", "completely crushed", "inconsolable",
        "crying in despair", "extremely sad", "in total despair", "weeping uncontrollably",
        "absolutely grief-stricken", "deeply unhappy, in floods of tears", "intensely mournful",
        "utterly dejected and tearful", "sobbing, heartbroken",
        "crushed by grief, extremely tearful", "looks devastated", "sounds utterly heartbroken",
        "speaking with a deeply sad voice", "a tearful, utterly miserable face",
        "sheer sadness in the voice",
    ),
    ("angry", 1): (
        "slightly annoyed", "a little irritated", "quietly irritated", "mildly cross",
        "a bit frustrated", "somewhat irked", "a touch impatient", "faintly annoyed",
        "with a hint of anger", "slightly bothered", "a little grumpy", "mildly angry",
        "a trace of irritation in the voice", "a bit cross", "quietly annoyed, frowning slightly",
        "somewhat frustrated", "a tad irritable", "subtly annoyed", "looks a little angry",
        "sounds slightly annoyed", "speaking with a mildly angry voice",
        "a faintly frowning, irritated face",
    ),
    ("angry", 2): (
        "angry", "clearly angry", "visibly annoyed", "quite cross", "noticeably irritated",
        "openly frustrated", "fairly mad", "obviously angry, frowning", "plainly indignant",
        "rather heated", "evidently annoyed and tense", "genuinely angry",
        "visibly irritated, jaw tight", "quite hostile", "clearly fed up",
        "noticeably angry, voice raised", "decidedly cross", "rather bad-tempered", "looks angry",
        "sounds annoyed", "speaking with an angry voice", "an angry, frowning face",
        "anger in the voice",
    ),
    ("angry", 3): (
        "furious", "seething with rage", "livid", "absolutely furious", "shouting in fury",
        "enraged", "extremely angry", "boiling with rage", "utterly livid",
        "fuming, completely furious", "in a towering rage", "intensely hostile",
        "raging, red in the face", "totally enraged", "furious and shouting",
        "incandescent with anger", "wildly angry", "extremely irritated, ready to explode",
        "looks furious", "sounds absolutely livid", "speaking with a furious voice",
        "a furious, utterly enraged face",
        "sheer anger in the voice",
    ),
    ("surprised", 1): (
        "slightly surprised", "a little taken aback", "mildly startled", "a bit caught off guard",
        "faintly surprised", "somewhat amazed", "eyebrows raised slightly",
        "a touch of surprise in the voice", "quietly surprised", "a hint of surprise",
        "a little startled", "slightly caught off guard", "gently surprised", "a tad surprised",
        "faintly startled, blinking", "a bit surprised by the news", "somewhat taken aback",
        "subtly amazed", "looks a little surprised", "sounds slightly startled",
        "speaking with a mildly surprised voice", "a faintly surprised face",
    ),
    ("surprised", 2): (
        "surprised", "clearly surprised", "visibly startled", "quite amazed",
        "noticeably taken aback", "genuinely surprised", "openly amazed", "rather startled",
        "eyebrows raised, surprised", "obviously caught off guard", "plainly surprised, eyes wide",
        "fairly shocked", "evidently surprised", "visibly amazed", "quite taken aback",
        "noticeably startled, mouth open", "clearly shocked by the news", "decidedly surprised",
        "looks surprised", "sounds amazed", "speaking with a surprised voice",
        "a startled, surprised face",
        "surprise in the voice",
    ),
    ("surprised", 3): (
        "astonished", "utterly astonished", "completely stunned", "flabbergasted",
        "extremely surprised", "thunderstruck", "astounded, jaw dropping",
        "gasping in total amazement", "absolutely shocked", "wide-eyed with astonishment",
        "totally caught off guard", "stunned into silence", "intensely startled",
        "completely taken aback", "utterly amazed, mouth wide open", "staggered by the surprise",
        "extremely startled", "deeply shocked", "looks astonished", "sounds utterly amazed",
        "speaking with a stunned voice", "an astonished, wide-eyed face",
        "sheer surprise in the voice",
    ),
    ("fearful", 1): (
        "slightly nervous", "a little uneasy", "mildly anxious", "a bit worried",
        "somewhat apprehensive", "faintly afraid", "a touch of fear in the voice",
        "quietly nervous", "a hint of worry", "slightly scared", "a little jittery",
        "mildly fearful", "a bit tense and wary", "softly anxious", "slightly on edge",
        "a tad frightened", "faintly worried", "somewhat uneasy", "looks a little nervous",
        "sounds slightly afraid", "speaking with a mildly anxious voice", "a subtly worried face",
    ),
    ("fearful", 2): (
        "afraid", "clearly afraid", "visibly nervous", "quite scared", "noticeably anxious",
        "obviously frightened", "rather fearful", "plainly worried",
        "genuinely afraid, voice shaking", "fairly alarmed", "evidently uneasy",
        "visibly fearful, tense", "quite jittery", "clearly apprehensive", "openly scared",
        "noticeably frightened", "decidedly nervous", "obviously on edge", "looks afraid",
        "sounds frightened", "speaking with a fearful voice", "a frightened, anxious face",
        "fear in the voice",
    ),
    ("fearful", 3): (
        "terrified", "petrified", "paralysed with fear", "extremely frightened",
        "absolutely terrified", "in a total panic", "panic-stricken", "filled with terror",
        "utterly petrified", "shaking with terror", "completely panicked", "frozen in horror",
        "deeply afraid", "intensely fearful", "trembling in sheer terror", "screaming in fear",
        "extremely scared", "wildly panicking", "looks terrified", "sounds absolutely petrified",
        "speaking with a terrified voice", "a terrified, panic-stricken face",
        "sheer fear in the voice",
    ),
    ("disgusted", 1): (
        "slightly disgusted", "a little grossed out", "mildly repulsed", "a bit put off",
        "nose wrinkled slightly", "somewhat disgusted", "a touch of distaste", "faintly queasy",
        "quietly disgusted", "a hint of disgust", "slightly put off",
        "mildly put off by the smell", "a little queasy", "with a faint grimace",
        "a trace of distaste on the face", "somewhat grossed out", "a tad repelled",
        "a bit disgusted, pulling a slight face", "looks a little disgusted",
        "sounds slightly grossed out", "speaking with a mildly disgusted voice",
        "a subtly disgusted face",
    ),
    ("disgusted", 2): (
        "disgusted", "clearly disgusted", "visibly grossed out", "quite repulsed",
        "noticeably put off", "obviously disgusted, nose wrinkled", "rather queasy",
        "plainly repelled", "fairly grossed out", "openly disgusted", "evidently put off by it",
        "quite nauseous", "visibly grimacing", "genuinely disgusted", "clearly full of distaste",
        "noticeably repulsed", "decidedly disgusted", "obviously grimacing in distaste",
        "looks disgusted", "sounds repulsed", "speaking with a disgusted voice",
        "a grimacing, disgusted face",
        "disgust in the voice",
    ),
    ("disgusted", 3): (
        "revolted", "utterly disgusted", "completely repulsed", "sickened", "nauseated",
        "extremely grossed out", "absolutely revolted", "deeply disgusted", "gagging in disgust",
        "totally sickened", "overwhelmed with disgust", "intensely repulsed",
        "retching with disgust", "utterly repelled", "extremely disgusted, grimacing hard",
        "completely nauseated", "filled with utter disgust", "revolted to the core",
        "looks revolted", "sounds utterly disgusted", "speaking with a revolted voice",
        "a sickened, utterly disgusted face",
        "sheer disgust in the voice",
    ),
    ("contemptuous", 1): (
        "slightly contemptuous", "a little dismissive", "mildly scornful", "a faint smirk",
        "a hint of disdain", "somewhat condescending", "a touch of contempt", "quietly smug",
        "a bit sarcastic", "faintly sneering", "slightly superior", "mildly mocking",
        "a trace of scorn in the voice", "a little disdainful", "smirking slightly",
        "somewhat dismissive", "a tad patronising", "a bit haughty",
        "looks a little contemptuous", "sounds slightly scornful",
        "speaking with a mildly sneering voice", "a subtly smirking face",
    ),
    ("contemptuous", 2): (
        "contemptuous", "clearly contemptuous", "visibly dismissive", "quite scornful",
        "noticeably condescending", "openly sneering", "rather disdainful", "plainly smug",
        "obviously mocking", "fairly sarcastic", "evidently superior", "smirking openly",
        "quite patronising", "clearly looking down on others", "visibly haughty",
        "rather sneering", "decidedly dismissive", "obviously rolling the eyes",
        "looks contemptuous", "sounds scornful", "speaking with a sneering voice",
        "a smirking, disdainful face",
        "contempt in the voice",
    ),
    ("contemptuous", 3): (
        "utterly contemptuous", "sneering with utter disdain", "filled with utter scorn",
        "absolutely scornful", "extremely condescending", "withering contempt",
        "completely dismissive", "deeply disdainful", "totally sneering", "intensely mocking",
        "extremely smug", "utterly disdainful", "scathing, with a cruel sneer",
        "absolutely sneering", "dripping with contempt", "looking down with total disdain",
        "deeply scornful", "extremely sarcastic and sneering", "looks utterly contemptuous",
        "sounds extremely scornful", "speaking with a withering, sneering voice",
        "a sneering, utterly disdainful face",
        "sheer contempt in the voice",
    ),
}

# Short prompts for demos and the command line: the plainest phrasing of each class.
EMOTION_PROMPTS: dict[tuple[str, int], str] = {
    ("neutral", 1): "neutral", ("neutral", 2): "neutral", ("neutral", 3): "neutral",
    ("happy", 1): "slightly happy", ("happy", 2): "happy", ("happy", 3): "overjoyed",
    ("sad", 1): "slightly sad", ("sad", 2): "sad", ("sad", 3): "heartbroken",
    ("angry", 1): "slightly annoyed", ("angry", 2): "angry", ("angry", 3): "furious",
    ("surprised", 1): "slightly surprised", ("surprised", 2): "surprised",
    ("surprised", 3): "astonished",
    ("fearful", 1): "slightly nervous", ("fearful", 2): "afraid", ("fearful", 3): "terrified",
    ("disgusted", 1): "slightly disgusted", ("disgusted", 2): "disgusted",
    ("disgusted", 3): "revolted",
    ("contemptuous", 1): "slightly contemptuous", ("contemptuous", 2): "contemptuous",
    ("contemptuous", 3): "utterly contemptuous",
}


def normalise(text: str) -> str:
    """Case, spacing and a final full stop do not change what a description means."""
    return " ".join(text.lower().split()).rstrip(" .!")


def _key(emotion: str, intensity: int) -> tuple[str, int]:
    check(emotion, intensity)
    return (emotion, 1) if emotion == "neutral" else (emotion, intensity)


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _class_words() -> dict[str, set[str]]:
    """Per emotion, the words no other emotion's phrasings use: what says 'this emotion'."""
    by_emotion: dict[str, set[str]] = {}
    for (emotion, _), texts in _PHRASINGS.items():
        by_emotion.setdefault(emotion, set()).update(*(_words(t) for t in texts))
    return {e: w - set().union(*(o for f, o in by_emotion.items() if f != e))
            for e, w in by_emotion.items()}


def _learnable(text: str, key: tuple[str, int], held: dict[tuple[str, int], list[str]],
               class_words: set[str]) -> bool:
    """Can `text` be understood from training phrasings if it (and `held`) are hidden?

    One of its emotion words must stay in the emotion's training phrasings and, at levels 1 and
    3, one of its intensity words in that level's (other emotions count: the cues are shared).
    Hiding "inconsolable", a word used nowhere else, would test the dictionary, not the model.
    """
    emotion, level = key
    still_seen = [t for k, texts in _PHRASINGS.items() for t in texts
                  if t != text and t not in held.get(k, ())]
    emotion_words = set().union(*(_words(t) for t in still_seen if _LABEL[t][0] == emotion))
    if not _words(text) & class_words & emotion_words:
        return False
    if emotion == "neutral" or level == 2:
        return True
    level_words = set().union(*(_words(t) for t in still_seen
                                if _LABEL[t][1] == level and _LABEL[t][0] != "neutral"))
    return bool(_words(text) & INTENSITY_CUES[level] & level_words)


def _heldout_of(emotion: str) -> dict[tuple[str, int], frozenset[str]]:
    """Per level of one emotion, ceil(n / 4) learnable phrasings taken in order of their text
    hash (so not picked by hand); the class's demo prompt always stays in training."""
    class_words = _class_words()[emotion]
    held: dict[tuple[str, int], list[str]] = {key: [] for key in _PHRASINGS if key[0] == emotion}
    for key, chosen in held.items():
        texts = _PHRASINGS[key]
        need = math.ceil(len(texts) / 4)
        for text in sorted((t for t in texts if t != EMOTION_PROMPTS[key]), key=_digest):
            if len(chosen) < need and _learnable(text, key, held, class_words):
                chosen.append(text)
        if len(chosen) < need:
            raise ValueError(f"emotion phrasings for {key}: only {len(chosen)} of {len(texts)} "
                             f"can be held out with their vocabulary still seen; {need} needed")
    return {key: frozenset(chosen) for key, chosen in held.items()}


_LABEL = {text: key for key, texts in _PHRASINGS.items() for text in texts}


def _build_lookup() -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for key, texts in _PHRASINGS.items():
        for text in texts:
            norm = normalise(text)
            if norm in table:
                raise ValueError(f"emotion phrasing {text!r} is listed for both {table[norm]} "
                                 f"and {key}")
            table[norm] = key
    return table


_LOOKUP = _build_lookup()
_HELDOUT = {key: chosen for emotion in EMOTIONS for key, chosen in _heldout_of(emotion).items()}


def phrasings(emotion: str, intensity: int, *,
              split: str = "seen") -> list[str]:  # "seen" (train), "heldout" (evaluate), "all"
    if split not in SPLITS:
        raise ValueError(f"unknown phrasing split {split!r}; expected one of {', '.join(SPLITS)}")
    key = _key(emotion, intensity)
    texts = _PHRASINGS[key]
    if split == "all":
        return list(texts)
    held = _HELDOUT[key]
    return [t for t in texts if (t in held) == (split == "heldout")]


def describe(emotion: str, intensity: int, rng: np.random.Generator, *,
             split: str = "seen") -> str:  # split: "seen" for training, "heldout" to evaluate
    """One phrasing of the class drawn uniformly with ``rng``."""
    options = phrasings(emotion, intensity, split=split)
    return options[int(rng.integers(len(options)))]


def lookup(text: str) -> tuple[str, int] | None:
    """The (emotion, intensity) a known phrasing was written for; None for any other text."""
    return _LOOKUP.get(normalise(text))


def phrasing_split(text: str) -> str:
    """'seen' or 'heldout' for a known phrasing; ValueError for text this module did not write."""
    key = lookup(text)
    if key is None:
        raise ValueError(f"{text!r} is not one of the corpus emotion phrasings")
    held = {normalise(t) for t in _HELDOUT[key]}
    return "heldout" if normalise(text) in held else "seen"


def all_labelled(*, split: str = "all") -> list[tuple[str, str, int]]:  # as in phrasings()
    """(text, emotion, intensity) for every class, e.g. to train or test a text classifier."""
    return [(text, emotion, level)
            for (emotion, level) in _PHRASINGS
            for text in phrasings(emotion, level, split=split)]
