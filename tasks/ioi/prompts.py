"""IOI prompts: the templates, names, places and objects of Wang et al. (2022), and the ABC
corruption.

A template is tokenized once with one-token *slots* for the names, the place and the object,
so every prompt built from it has the same length and the same slot positions, and a slot's
position is known without searching the tokens. A slot's word is encoded with its leading
space (``" Mary"``) and the literal text around it without the space, which is how a GPT-2
style byte-level BPE splits the whole sentence (its pre-tokenizer cuts before every
space-prefixed word).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import torch

# Wang et al.'s BABA templates with the answer removed: {S} is the subject (named twice), {IO}
# the indirect object; the prompt ends where the IO would be predicted.
BABA_TEMPLATES: tuple[str, ...] = (
    "Then, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
    "Then, {S} and {IO} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Then, {S} and {IO} had a long argument, and afterwards {S} said to",
    "After {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give the {OBJECT} to",
    "While {S} and {IO} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "While {S} and {IO} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
    "After the lunch, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Afterwards, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} had a long argument. Afterwards {S} said to",
    "The {PLACE} {S} and {IO} went to had a {OBJECT}. {S} gave it to",
    "Friends {S} and {IO} found a {OBJECT} at the {PLACE}. {S} gave it to",
)

# The name list of the IOI dataset (Redwood / ACDC ``ioi_dataset.NAMES``).
NAMES: tuple[str, ...] = (
    "Michael", "Christopher", "Jessica", "Matthew", "Ashley", "Jennifer", "Joshua", "Amanda",
    "Daniel", "David", "James", "Robert", "John", "Joseph", "Andrew", "Ryan", "Brandon",
    "Jason", "Justin", "Sarah", "William", "Jonathan", "Stephanie", "Brian", "Nicole",
    "Nicholas", "Anthony", "Heather", "Eric", "Elizabeth", "Adam", "Megan", "Melissa", "Kevin",
    "Steven", "Thomas", "Timothy", "Christina", "Kyle", "Rachel", "Laura", "Lauren", "Amber",
    "Brittany", "Danielle", "Richard", "Kimberly", "Jeffrey", "Amy", "Crystal", "Michelle",
    "Tiffany", "Jeremy", "Benjamin", "Mark", "Emily", "Aaron", "Charles", "Rebecca", "Jacob",
    "Stephen", "Patrick", "Sean", "Erin", "Jamie", "Kelly", "Samantha", "Nathan", "Sara",
    "Dustin", "Paul", "Angela", "Tyler", "Scott", "Katherine", "Andrea", "Gregory", "Erica",
    "Mary", "Travis", "Lisa", "Kenneth", "Bryan", "Lindsey", "Kristen", "Jose", "Alexander",
    "Jesse", "Katie", "Lindsay", "Shannon", "Vanessa", "Courtney", "Christine", "Alicia", "Cody",
    "Allison", "Bradley", "Samuel",
)  # fmt: skip
PLACES: tuple[str, ...] = (
    "store", "garden", "restaurant", "school", "hospital", "office", "house", "station",
)  # fmt: skip
OBJECTS: tuple[str, ...] = (
    "ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack",
)  # fmt: skip

ORDERS: tuple[str, ...] = ("ABBA", "BABA")  # A = indirect object, B = subject
_SLOT = re.compile(r"\{(IO|S|PLACE|OBJECT)\}")
_MIN_NAMES = 5  # IO, S and three distinct corrupting names
POSITION_KEYS: tuple[str, ...] = ("io_pos", "s1_pos", "s1_plus1_pos", "s2_pos", "end_pos")


class Tokenizer(Protocol):
    """What the task needs of a tokenizer (a Hugging Face tokenizer satisfies it)."""

    bos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


def abba(template: str) -> str:
    """The ABBA form of a BABA template: swap the first ``{S}`` and the ``{IO}`` after it."""
    first = template.index("{S}")
    io = template.index("{IO}")
    return template[:first] + "{IO}" + template[first + 3 : io] + "{S}" + template[io + 4 :]


def template_text(index: int, order: str) -> str:
    """Template ``index`` of :data:`BABA_TEMPLATES` in ``order`` (``"ABBA"`` or ``"BABA"``)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    t = BABA_TEMPLATES[index]
    return abba(t) if order == "ABBA" else t


@dataclass(frozen=True)
class Layout:
    """One template in one order, tokenized: literal token ids and named one-token slots.

    ``pieces`` holds token ids (int) and slot names: ``IO``, ``S1``, ``S2``, ``PLACE``,
    ``OBJECT`` (the object slot may occur twice).
    """

    template: int
    order: str
    pieces: tuple[int | str, ...]

    def __len__(self) -> int:
        return len(self.pieces)

    def position(self, slot: str) -> int:
        return self.pieces.index(slot)

    def positions(self) -> dict[str, int]:
        """Token positions of IO, S1, S1+1, S2 and the end (the last position)."""
        s1 = self.position("S1")
        pos = (self.position("IO"), s1, s1 + 1, self.position("S2"), len(self) - 1)
        return dict(zip(POSITION_KEYS, pos, strict=True))

    def fill(self, words: dict[str, int]) -> list[int]:
        return [words[p] if isinstance(p, str) else p for p in self.pieces]


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def tokenize_template(tokenizer: Tokenizer, index: int, order: str, prepend_bos: bool) -> Layout:
    """Split template ``index`` into literal token ids and slots (see the module docstring)."""
    text = template_text(index, order)
    pieces: list[int | str] = []
    if prepend_bos:
        if tokenizer.bos_token_id is None:
            raise ValueError("prepend_bos=True needs a tokenizer with a bos_token_id")
        pieces.append(tokenizer.bos_token_id)
    n_s, last = 0, 0
    for m in _SLOT.finditer(text):
        literal = text[last : m.start()]
        if not literal.endswith(" "):
            raise ValueError(f"template slot {m.group(0)} must follow a space: {text!r}")
        if literal.strip():
            pieces += encode(tokenizer, literal[:-1])
        slot = m.group(1)
        if slot == "S":
            n_s += 1
            slot = f"S{n_s}"
        pieces.append(slot)
        last = m.end()
    if text[last:]:
        pieces += encode(tokenizer, text[last:])
    if n_s != 2 or "IO" not in pieces:
        raise ValueError(f"an IOI template needs one {{IO}} and two {{S}}: {text!r}")
    return Layout(index, order, tuple(pieces))


def single_token_ids(tokenizer: Tokenizer, words: tuple[str, ...]) -> dict[str, int]:
    """The words that encode, with a leading space, to exactly one token, and that token."""
    out = {}
    for w in words:
        ids = encode(tokenizer, " " + w)
        if len(ids) == 1:
            out[w] = ids[0]
    return out


@dataclass(frozen=True)
class Vocabulary:
    """Everything a tokenizer fixes: the template layouts and the one-token words."""

    layouts: dict[tuple[int, str], Layout]
    names: tuple[int, ...]
    places: tuple[int, ...]
    objects: tuple[int, ...]
    templates: tuple[int, ...]  # the group prompts are drawn from (see choose_templates)
    orders: tuple[str, ...] = ORDERS  # the name orders prompts are drawn in

    @property
    def length(self) -> int:
        return len(self.layouts[(self.templates[0], self.orders[0])])

    @property
    def roles(self) -> dict[str, int] | None:
        """The role positions every prompt shares, or None where they differ between prompts."""
        found = {
            tuple(self.layouts[(t, o)].positions().items())
            for t in self.templates
            for o in self.orders
        }
        return dict(found.pop()) if len(found) == 1 else None


def largest_group(keys: dict[int, tuple]) -> tuple[int, ...]:
    """Template indices sharing the most common key (ties: the smaller key, e.g. shorter)."""
    counts = Counter(keys.values())
    best = min(counts, key=lambda k: (-counts[k], k))
    return tuple(i for i in sorted(keys) if keys[i] == best)


def _group_key(layout: Layout) -> tuple[int, ...]:
    """What templates must share for their prompts to share every role position: the length
    (which fixes END) first, then the positions of IO, S1, S1+1 and S2."""
    p = layout.positions()
    return (len(layout), *(p[k] for k in POSITION_KEYS))


def choose_templates(
    layouts: dict[tuple[int, str], Layout], templates: tuple[int, ...] | None, order: str | None
) -> tuple[int, ...]:
    """The template group a batch is drawn from: one length for both orders (``order`` None), or
    one set of role positions in ``order``. ``templates`` None: the largest such group."""
    indices = range(len(BABA_TEMPLATES))
    if order is None:
        keys = {i: (len(layouts[(i, ORDERS[0])]),) for i in indices}
        need = "tokenize to one length so a batch has one shape; their lengths are"
    else:
        keys = {i: _group_key(layouts[(i, order)]) for i in indices}
        need = (
            f"share every role position in {order} order so a batch shares positions; their "
            f"(length, {', '.join(POSITION_KEYS[:-1])}) are"
        )
    if templates is None:
        return largest_group(keys)
    if len({keys[i] for i in templates}) != 1:
        got = {i: keys[i][0] if order is None else keys[i] for i in templates}
        raise ValueError(f"the chosen templates must {need} {got}")
    return tuple(templates)


def build_vocabulary(
    tokenizer: Tokenizer,
    templates: tuple[int, ...] | None,
    prepend_bos: bool,
    order: str | None = None,
) -> Vocabulary:
    """Tokenize every template and word; choose (or check) the template group (see
    :func:`choose_templates`). ``order`` None: both name orders, else only that one."""
    layouts = {
        (i, o): tokenize_template(tokenizer, i, o, prepend_bos)
        for i in range(len(BABA_TEMPLATES))
        for o in ORDERS
    }
    templates = choose_templates(layouts, templates, order)
    names = single_token_ids(tokenizer, NAMES)
    if len(names) < _MIN_NAMES:
        raise ValueError(f"only {len(names)} IOI names are single tokens; need {_MIN_NAMES}")
    places = single_token_ids(tokenizer, PLACES)
    objects = single_token_ids(tokenizer, OBJECTS)
    if not places or not objects:
        raise ValueError("no place or no object of the IOI lists is a single token")
    return Vocabulary(
        layouts,
        tuple(names.values()),
        tuple(places.values()),
        tuple(objects.values()),
        tuple(templates),
        ORDERS if order is None else (order,),
    )


def check_templates(templates: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Validate template indices given by a user (None: choose automatically)."""
    if templates is None:
        return None
    templates = tuple(templates)
    bad = [i for i in templates if not isinstance(i, int) or not 0 <= i < len(BABA_TEMPLATES)]
    if not templates or bad:
        raise ValueError(
            f"templates must be a non-empty list of indices in [0, {len(BABA_TEMPLATES)}), "
            f"got {templates!r}"
        )
    return templates


def check_order(order: str | None) -> str | None:
    """Validate a name order given by a user (None: both orders)."""
    if order is not None and order not in ORDERS:
        raise ValueError(f"order must be None (both orders) or one of {ORDERS}, got {order!r}")
    return order


def generate(vocab: Vocabulary, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` clean prompts and their ABC corruptions, deterministic in ``seed``.

    Orders are balanced (the vocabulary's orders alternate before a shuffle). Each corrupted
    prompt uses the same template, order, place and object with three names that differ from
    each other and from the clean IO and S, in the IO, S1 and S2 slots.
    """
    rng = random.Random(seed)
    orders = [vocab.orders[i % len(vocab.orders)] for i in range(n)]
    rng.shuffle(orders)
    rows: dict[str, list] = {k: [] for k in ("clean", "corrupted", "io", "s", "template", "baba")}
    rows.update({k: [] for k in POSITION_KEYS})
    for order in orders:
        t = rng.choice(vocab.templates)
        layout = vocab.layouts[(t, order)]
        io, s, c_io, c_s1, c_s2 = rng.sample(vocab.names, _MIN_NAMES)
        nouns = {"PLACE": rng.choice(vocab.places), "OBJECT": rng.choice(vocab.objects)}
        example = {
            "clean": layout.fill({"IO": io, "S1": s, "S2": s, **nouns}),
            "corrupted": layout.fill({"IO": c_io, "S1": c_s1, "S2": c_s2, **nouns}),
            "io": io,
            "s": s,
            "template": t,
            "baba": order == "BABA",
            **layout.positions(),
        }
        for key, value in example.items():
            rows[key].append(value)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}
