"""The LLM boundary: what a model's free text may carry into the assessment.

The structured fields (agent, verdict, urgency) are bounded in llm.py; this
module bounds the prose around them, before anything is stored:

- `screen` caps and neutralises every claim (hygiene.neutralise: no markup, no
  control or invisible characters, at most MAX_CLAIM characters, at most
  MAX_CLAIMS claims per list) and drops a claim that reads as an instruction
  to the system ("SYSTEM OVERRIDE", "ignore previous instructions", "the
  protocol is suspended", role tags). Each drop is recorded by label, never
  by quoting the text.
- `given_outside` finds drugs and classes a sentence names *as something to
  give* that the protocol does not allow for this patient ("Also start
  X 200 mg BID"), while a mention in an avoid or negated context
  ("avoid X: interacts with Y") passes. The caller
  vetoes the whole answer on a hit and the rules backend answers.
- `departure_violations`: choosing an allowed agent later in the protocol's
  order than one still open (not ruled out in an earlier round) needs, for
  each agent passed over, a claim (the pharmacist: a concern) that names it,
  not as something to give, and cites a retrieved policy or monograph passage
  about that agent alone which supports the sentence; otherwise it is vetoed.
  Guidelines do not count: they may disagree with the profile (NICE's eGFR 45).

Deciding "as something to give" (drug names come from formulary.find, exact
terms only). The sentence is cut into clauses at punctuation, an opening
bracket and subordinating words ("because", "so", "which", "as" ...), so the
reason a drug is avoided is not read as a plan. For each mention the nearest cue
decides: first looking back (a giving verb such as start/add/switch, unless a
negator sits just before it; or an avoid word such as avoid/not/excluded/
interacts), else looking forward (a passive or predicative cue: "should be
added", "is an alternative", a dose right after a drug the patient does not
already take), else the mention is neutral. A false positive costs only a
fallback to the rules backend; a false negative puts a plan the rules forbid
in front of a clinician, so ambiguous giving words count as giving.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TypeVar

from clinreason.agents.context import CaseContext
from clinreason.agents.models import Claim, Concern, Proposal, ReferralNote, Review
from clinreason.hygiene import MAX_LINE, clean_text, neutralise
from clinreason.knowledge.chunking import Chunk
from clinreason.formulary import Formulary
from clinreason.formulary.recognition import match_words
from clinreason.knowledge.support import supports

MAX_CLAIM = MAX_LINE  # characters per stored claim (the report's bound too)
MAX_CLAIMS = 12  # claims (or concerns) per list
MAX_CITATIONS = 8  # citations per claim
MAX_ID = 64  # option ids, rule ids
# Chunk ids are scoped (protocol/profile/doc#section) and longer: the longest bundled one is about 110
# characters. A cited id cut short would no longer resolve, so citations get their own, roomier cap.
MAX_CHUNK_ID = 200

Answer = TypeVar("Answer", Proposal, Review, ReferralNote)

# --- instruction-like text ---------------------------------------------------------------
# Word edges are letter edges here: "0SYSTEM OVERRIDE0" must not slip past where \b sees no boundary.
_L, _R = r"(?<![a-z])", r"(?![a-z])"
_INSTRUCTIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((label, re.compile(p.replace("<L>", _L).replace("<R>", _R), re.IGNORECASE))
                                                              for label, p in (
    # Anywhere, even glued to other letters ("xSYSTEM OVERRIDE"): no clinical sentence says it.
    ("system override", r"(system|developer|admin(istrator)?)\s*(override|prompt|instruction|command)"),
    ("ignore instructions", r"<L>(ignore|disregard|forget|override|bypass)\s+((all|any|the|your|my|these|those|previous|prior|above|"
                            r"earlier|preceding|system|safety|original)\s+)*(instructions?|prompts?|rules?|protocol|guidelines?|"
                            r"messages?|directions?|constraints?|checks?|gate)<R>"),
    ("protocol suspended", r"<L>(protocol|rules?|safety( checks?| gate| rules?)?|guidelines?|restrictions?|checks?)\s+(is|are|has been|"
                           r"have been|was|were)\s+(now\s+)?(suspended|disabled|overridden|revoked|lifted|void|cancell?ed|deactivated|"
                           r"waived|off|no longer)<R>"),
    ("role change", r"<L>(you are now|from now on,? you|act as (an?|the)<R>|pretend (to be|you are)|new instructions?|developer mode|"
                    r"jailbreak)"),
    ("role tag", r"<\|[^|>]{0,24}\|>|\[/?(INST|SYS)\]|<</?SYS>>|^\s*(system|assistant|user|developer|tool)\s*:|"
                 r"</?\s*(system|assistant|user|developer|instructions?)\s*>"),
))


def instruction_like(text: str) -> str | None:
    """The kind of instruction the (cleaned, not yet stripped) text carries, or None."""
    return next((label for label, pattern in _INSTRUCTIONS if pattern.search(text)), None)


# --- screening: caps, neutralisation, instruction drops ----------------------------------
@dataclass
class _Screen:
    dropped: list[str]
    rules: Collection[str]  # the protocol's rule ids: a concern may name only these
    categories: Collection[str]  # the protocol's concern categories; anything else is "other"

    def claim(self, label: str, c: Claim) -> Claim | None:
        text = neutralise(c.text, MAX_CLAIM)
        # Checked before markup is stripped ("<system>" is a role tag) and after ("SYSTEM<b>OVERRIDE").
        if (kind := instruction_like(clean_text(c.text[: MAX_CLAIM * 8])) or instruction_like(text)) is not None:
            self.dropped.append(f"{label} dropped: instruction-like text ({kind})")
            return None
        return Claim(text=text, citations=[neutralise(x, MAX_CHUNK_ID) for x in c.citations[:MAX_CITATIONS]])

    def claims(self, label: str, claims: list[Claim]) -> list[Claim]:
        if len(claims) > MAX_CLAIMS:
            self.dropped.append(f"{label}: {len(claims) - MAX_CLAIMS} claims beyond the first {MAX_CLAIMS} dropped")
        kept = (self.claim(f"{label} claim {i}", c) for i, c in enumerate(claims[:MAX_CLAIMS], 1))
        return [c for c in kept if c is not None]

    def concern(self, i: int, c: Concern) -> Concern | None:
        claim = self.claim(f"concern {i}", c.claim)
        if claim is None:
            return None
        rule = neutralise(c.rule_id, MAX_ID) if c.rule_id else None
        if rule is not None and rule not in self.rules:
            self.dropped.append(f"concern {i}: rule id not in the protocol's rules, removed")
            rule = None
        category = c.category if c.category in self.categories else "other"
        if category != c.category:
            self.dropped.append(f"concern {i}: category not one of the protocol's, read as other")
        return Concern(category=category, agent=neutralise(c.agent, MAX_ID), rule_id=rule, claim=claim)


WITHHELD = "Summary withheld at the agent boundary: it read as an instruction, not as clinical reasoning."


def screen(answer: Answer, rules: Collection[str], categories: Collection[str]) -> tuple[Answer, list[str]]:
    """The answer as it may be stored, and what was dropped from it (labels only). `rules` and
    `categories` are the protocol's: a concern naming anything else loses it."""
    s = _Screen([], rules, categories)
    if isinstance(answer, Proposal):
        out: Proposal | Review | ReferralNote = answer.model_copy(update={
            "agent": neutralise(answer.agent, MAX_ID) if answer.agent is not None else None,
            "rationale": s.claims("rationale", answer.rationale)})
    elif isinstance(answer, Review):
        if len(answer.concerns) > MAX_CLAIMS:
            s.dropped.append(f"concerns: {len(answer.concerns) - MAX_CLAIMS} beyond the first {MAX_CLAIMS} dropped")
        concerns = [k for i, c in enumerate(answer.concerns[:MAX_CLAIMS], 1) if (k := s.concern(i, c)) is not None]
        summary = s.claim("summary", answer.summary) or Claim(text=WITHHELD, citations=[])
        suggested = neutralise(answer.suggested_agent, MAX_ID) if answer.suggested_agent is not None else None
        out = answer.model_copy(update={"concerns": concerns, "summary": summary, "suggested_agent": suggested})
    else:
        out = answer.model_copy(update={k: s.claims(k, getattr(answer, k)) for k in ("reasons", "patient_advice", "avoid_agents")})
    return out, s.dropped  # type: ignore[return-value]


def labelled_claims(answer: Proposal | Review | ReferralNote) -> list[tuple[str, Claim]]:
    if isinstance(answer, Proposal):
        return [(f"rationale claim {i}", c) for i, c in enumerate(answer.rationale, 1)]
    if isinstance(answer, Review):
        return [(f"concern {i}", c.claim) for i, c in enumerate(answer.concerns, 1)] + [("summary", answer.summary)]
    return [(f"{k} claim {i}", c) for k in ("reasons", "patient_advice", "avoid_agents") for i, c in enumerate(getattr(answer, k), 1)]


# --- drugs named as something to give ------------------------------------------------------
def _words(*ws: str) -> frozenset[str]:
    return frozenset(w for group in ws for w in group.split())


# Clause boundaries: what follows gives a reason or a condition, not the plan ("... because X interacts").
_BOUNDARY = _words("but however because since as so therefore thus hence then although though whereas while unless if which "
                   "who whose that when whether until except")
# Giving words before the drug ("start X", "switch to X"); followed by "of" they are nouns ("recent use of X").
_GIVE_BEFORE = _words("start starting commence commencing add adding give giving prescribe prescribing dispense dispensing administer "
                      "administering begin initiate initiating switch switching change changing use using try trying consider "
                      "considering recommend recommending offer offering choose choosing select selecting prefer substitute "
                      "substituting plus treat treating combine combining")
_GIVE_BEFORE_PAIRS = {("treated", "with"), ("combined", "with"), ("together", "with"), ("along", "with"), ("addition", "to"),
                      ("started", "on"), ("put", "on"), ("followed", "by"), ("switched", "to"), ("changed", "to"), ("opt", "for"),
                      ("second", "agent"), ("additional", "agent"), ("second", "antibiotic"), ("additional", "antibiotic")}
# Giving words after the drug. A participle gives only after "be"/"is" ("X should be added"); "X used in the
# last 90 days" or "X was started in May" is history. An appraisal gives in any tense ("X is an alternative").
_PASSIVE = _words("started added given prescribed dispensed administered initiated used tried considered offered chosen "
                  "selected substituted combined commenced")
_PASSIVE_AUX = _words("be is are being")
_GIVE_AFTER = _words("recommended preferred indicated option options alternative alternatives choice suitable appropriate "
                     "acceptable reasonable safe preferable better superior best ideal fine ok okay")
_GIVE_AFTER_PAIRS = {("first", "line"), ("second", "line"), ("second", "agent"), ("additional", "agent"), ("extra", "agent"),
                     ("second", "antibiotic"), ("additional", "antibiotic"), ("combination", "therapy"), ("add", "on")}
# Avoid words end the search wherever they stand in the clause.
_NEGATORS = _words("not never no don dont t cannot nor neither without avoid avoided avoiding stop hold withhold")
_NEGATES_GIVING = _NEGATORS | _words("instead rather")  # "instead of starting X"
_AVOID = _NEGATORS | _words(
    "avoidance exclude excluded excludes excluding exclusion contraindicated contraindication contraindicates unsuitable unsafe "
    "inappropriate interact interacts interacting interaction interactions allergy allergies allergic risk risks toxicity toxic "
    "stopped stopping discontinue discontinued withheld ruled reject rejected decline declined caution against")
# Prepositions that set aside only the drug right after them ("instead of X", "switch from X").
_NEAR_AVOID = _words("from than versus vs excluding other")
_NEAR_AVOID_PAIRS = {("instead", "of"), ("rather", "than"), ("other", "than")}
_COORDINATORS = _words("and or plus nor ,")
_UNITS = _words("mg g mcg ug ml gram grams milligram milligrams tab tabs tablet tablets cap caps capsule capsules sachet")
# Words too common to be a drug on their own: the split-word repair reads "as a" as ASA (aspirin).
_FUNCTION_WORDS = _words("a an as at be by do if in is it me my no of on or so to up us we")
# Sentence ends, and an opening bracket: an aside ("X (Y is excluded)") is its own clause,
# while what follows the aside reads on ("Brand (generic) should be added": the generic should be added).
_PUNCT = re.compile(r"[.;:!?\n(\[{]+")
# "as" starts a reason ("as X interacts ..."), except before the role a drug is to play ("as a second agent").
_AS_ROLE = _words("second additional extra adjunct adjunctive concurrent dual alternative option backup fallback substitute "
                  "replacement first add")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    names: tuple[str, ...]  # drug ids, and "class:<id>" for a class named as such


def _clauses(text: str) -> Iterable[list[str]]:
    """Lower-case words (and "," tokens) per clause."""
    for segment in _PUNCT.split(text):
        tokens: list[str] = []
        for part in segment.split(","):
            tokens += [*match_words(part), ","]
        clause: list[str] = []
        i = 0
        while i < len(tokens):
            w, nxt = tokens[i], tokens[i + 1 : i + 3]
            if w == "as" and nxt == ["well", "as"]:
                clause.append("and")  # "as well as" coordinates
                i += 3
                continue
            if w == "such" and nxt[:1] == ["as"]:
                clause += ["such", "as"]  # "an antibiotic such as X": X is what the clause is about
                i += 2
                continue
            role = nxt[1:] if nxt[:1] in (["a"], ["an"]) else nxt[:1]
            if w in _BOUNDARY and not (w == "as" and role and role[0] in _AS_ROLE):
                yield clause
                clause = []
            else:
                clause.append(w)
            i += 1
        yield clause


def _mentions(tokens: list[str], formulary: Formulary) -> list[Mention]:
    """Where each drug or named class starts and ends, longest term first (at most four words)."""

    def names(ws: list[str]) -> set[str]:
        if not ws or "," in ws:
            return set()
        m = formulary.find(" ".join(ws))
        return set(m.drugs) | {f"class:{c}" for c in m.named_classes}

    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        span = next(((n, found) for n in range(min(4, len(tokens) - i), 0, -1)
                     if (found := names(tokens[i : i + n]) - names(tokens[i + 1 : i + n]))), None)
        if span is None:
            i += 1
            continue
        n, found = span
        end = next(e for e in range(i + 1, i + n + 1) if found <= names(tokens[i:e]) or e == i + n)
        if set(tokens[i:end]) <= _FUNCTION_WORDS:
            i += 1
            continue
        out.append(Mention(i, end, tuple(sorted(found))))
        i = end
    return out


def _role(tokens: list[str], mentions: list[Mention], at: Mention, patient_drugs: frozenset[str]) -> str:
    """'give', 'avoid' or 'neutral' for one mention, by the nearest cue (see the module docstring)."""
    inside = {i for m in mentions for i in range(m.start, m.end)}

    def negated(i: int) -> bool:  # a negator within two words before a giving word, not across a drug or a comma
        for j in range(i - 1, max(i - 3, -1), -1):
            if j in inside or tokens[j] == ",":
                return False
            if tokens[j] in _NEGATES_GIVING:
                return True
        return False

    def giving(i: int) -> str:
        return "avoid" if negated(i) else "give"

    for i in range(at.start - 1, -1, -1):
        if i in inside:
            continue
        w, pair = tokens[i], (tokens[i - 1], tokens[i]) if i else ("", tokens[i])
        near = at.start - i <= 2
        if near and (w in _NEAR_AVOID or pair in _NEAR_AVOID_PAIRS):
            return "avoid"
        if w in _AVOID:
            return "avoid"
        if pair in _GIVE_BEFORE_PAIRS or (w in _GIVE_BEFORE and tokens[i + 1 : i + 2] != ["of"]):
            return giving(i)
    last = at.end
    for i in range(at.end, len(tokens)):
        if i in inside:
            if any(tokens[j] not in _COORDINATORS for j in range(last, i)):
                return "neutral"  # another drug's words begin: the cue after it is not this one's
            last = next(m.end for m in mentions if m.start <= i < m.end)
            continue
        w, pair = tokens[i], (tokens[i - 1], tokens[i])
        if w.isdigit() and tokens[i + 1 : i + 2] and tokens[i + 1] in _UNITS and i - at.end <= 2 \
                and not set(at.names) <= patient_drugs:
            return "give"  # a regimen written after a drug the patient does not take is an order
        if w in _AVOID:
            return "avoid"
        if w in _GIVE_AFTER or pair in _GIVE_AFTER_PAIRS or (w in _PASSIVE and _PASSIVE_AUX & set(tokens[max(i - 2, 0) : i])):
            return giving(i)
    return "neutral"


def mention_roles(text: str, formulary: Formulary, patient_drugs: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(name, role) for every drug or class mention in the text; role is give, avoid or neutral."""
    out: list[tuple[str, str]] = []
    for tokens in _clauses(text):
        named = formulary.find(" ".join(tokens))
        if not named.drugs and not named.named_classes:
            continue  # the word-by-word scan only where the clause names something
        mentions = _mentions(tokens, formulary)
        out += [(name, _role(tokens, mentions, m, patient_drugs)) for m in mentions for name in m.names]
    return out


@dataclass(frozen=True)
class Allowed:
    """What a plan for this patient may give: the selectable agents' drugs and their classes."""

    drugs: frozenset[str]
    classes: frozenset[str]
    patient_drugs: frozenset[str]  # what the patient already takes (a dose after it is a history, not an order)
    agents: tuple[str, ...]

    @classmethod
    def of(cls, ctx: CaseContext) -> Allowed:
        p = ctx.protocol
        # Only a treatment decision gives anything: a referral note names no drug to start.
        agents = tuple(p.selectable_options) if ctx.spec.plan_kind(p) == "treat" else ()
        f = ctx.formulary
        drugs = frozenset(f.options[a].drug for a in agents)
        taken = frozenset(d for m in [*p.medications, *p.recent_antibiotics] for d in m.drugs)
        return cls(drugs, frozenset(c for d in drugs for c in f.classes_of(d)), taken, agents)

    def permits(self, name: str) -> bool:
        return name.removeprefix("class:") in self.classes if name.startswith("class:") else name in self.drugs


def given_outside(text: str, allowed: Allowed, formulary: Formulary) -> list[str]:
    """Drugs and classes the text names as something to give that the plan may not use."""
    named = formulary.find(text)
    if not named.drugs and not named.named_classes:
        return []  # nothing named: no clause work
    hits = [n for n, role in mention_roles(text, formulary, allowed.patient_drugs) if role == "give" and not allowed.permits(n)]
    return list(dict.fromkeys(h.removeprefix("class:") for h in hits))


def text_violations(answer: Proposal | Review | ReferralNote, ctx: CaseContext) -> list[str]:
    allowed = Allowed.of(ctx)
    out = []
    for label, c in labelled_claims(answer):
        if found := given_outside(c.text, allowed, ctx.formulary):
            out.append(f"{label} names {', '.join(found)} as something to give, outside the agents the protocol allows for "
                       f"this patient ({', '.join(allowed.agents) or 'none'})")
    return out


# --- departures from the protocol's order ---------------------------------------------------
def _about(chunk: Chunk, agent: str) -> bool:
    """Protocol or formulary evidence about this one agent (a guideline may disagree with the profile)."""
    return chunk.kind in ("policy", "monograph") and chunk.options == (agent,)


def justifies_skipping(claim: Claim, agent: str, ctx: CaseContext) -> bool:
    """The claim names the agent (not as something to give) and cites a retrieved passage about it that supports it."""
    f = ctx.formulary
    if agent not in f.options_named(claim.text):
        return False
    drug = f.options[agent].drug
    if any(n == drug and role == "give" for n, role in mention_roles(claim.text, f)):
        return False
    return any(cid in ctx.passages and _about(ctx.passages[cid], agent) and supports(claim.text, ctx.passages[cid])
               for cid in claim.citations)


def departure_violations(ctx: CaseContext, chosen: str | None, ruled_out: set[str], reasons: list[tuple[Claim, str | None]]) -> list[str]:
    """Agents earlier in the protocol's order than `chosen`, still open, with no justifying reason.

    `reasons`: the doctor's rationale claims (about no agent in particular, None) or the
    pharmacist's concerns (each about its `agent`)."""
    order = ctx.protocol.selectable_options
    if chosen not in order:
        return []  # out of bounds altogether: the structured bounds veto it
    out = []
    for agent in order[: order.index(chosen)]:
        if agent in ruled_out:
            continue
        if not any(justifies_skipping(c, agent, ctx) for c, about in reasons if about in (None, agent)):
            out.append(f"chose {chosen} over {agent}, which comes first in the protocol's order, without a concern about "
                       f"{agent} that cites protocol or formulary evidence about it")
    return out
