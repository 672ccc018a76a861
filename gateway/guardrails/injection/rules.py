"""Hand-written patterns for unambiguous injections, matched on normalised (lower-cased) text.

Each pattern carries the probability it stands for on its own. They stay within one line or sentence
(`[^\\n]{0,N}` gaps) so a long benign document cannot assemble a match from distant words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._accel import fast
from .features import TOKEN

_GAP = r"[^\n.]{0,40}?"
_VERB_IGNORE = (r"(?:ignore|disregard|forget|bypass|override|overwrite|skip|discard|abandon|drop|"
                r"do not follow|don't follow|stop following)")
_PRIOR = r"(?:all|any|every|the|your|my|previous|prior|above|earlier|preceding|former|initial|original|system|following|foregoing|other)"
_INSTR = (r"(?:instructions?|directions?|prompts?|rules|guidelines|commands?|directives?|guardrails|"
          r"restrictions|constraints|programming|policies|safeguards)")
_SECRET_PROMPT = (r"(?:(?:system|initial|original|starting|hidden|secret|developer|pre-?prompt)\s*"
                  r"(?:prompt|message|instructions?|rules|configuration)|"
                  r"instructions? (?:you (?:were|have been) given|you received|above)|pre-?prompt)")

_RAW_RULES: tuple[tuple[str, float], ...] = (
    # Instruction override (English).
    (rf"\b{_VERB_IGNORE}\b{_GAP}\b{_PRIOR}\b{_GAP}\b{_INSTR}\b", 0.97),
    (r"\b(?:ignore|disregard|forget) (?:everything|all|anything) (?:above|before|previously|prior|you (?:were|have been) told)", 0.95),
    (r"\bnew (?:instructions|task|objective|rules)(?: from [^\n:]{0,40})?\s*:", 0.85),
    (r"\byour (?:new|real|actual|true) (?:task|objective|goal|instructions?|purpose|job) (?:is|are)\b", 0.92),
    (r"\bstop (?:everything|summari[sz]ing|translating|what you are doing)\b", 0.85),
    (r"\bforget (?:that )?you are\b", 0.9),
    (r"\byou are no longer (?:a|an|bound|restricted|an? ai|chatgpt)", 0.9),
    (r"\bfrom now on,? you (?:are|will|must|shall)\b", 0.8),
    # DAN-style persona jailbreaks.
    (r"\bdo anything now\b|\bdan mode\b|\bjailbreak(?:ed)? mode\b|\bdeveloper mode (?:enabled|output)\b", 0.97),
    (r"\b(?:no|without (?:any)?) (?:content )?(?:restrictions|filters|guidelines|censorship|limitations)\b"
     rf"{_GAP}\b(?:answer|respond|reply|do|say)\b", 0.8),
    (r"\b(?:unrestricted|uncensored|unfiltered|unaligned) (?:ai|model|assistant|mode|chatbot|version)\b", 0.9),
    # System-prompt extraction.
    (rf"\b(?:reveal|print|show|output|repeat|display|tell me|give me|write (?:out|down)|paste|dump|leak|"
     rf"disclose|share|translate|encode|spell check|recite|return|list)\b{_GAP}\b(?:your|the|my|all|every)"
     rf"\b[^\n.]{{0,20}}?{_SECRET_PROMPT}", 0.95),
    (r"\b(?:what|which) (?:were|are) (?:your|the) (?:initial|original|hidden|system|secret|first) "
     r"(?:instructions|prompt|rules)", 0.9),
    (r"\bwhat were you told before\b|\boutput the text above\b|\brepeat the words above\b", 0.9),
    (r"\bconsole\.log\(system_?prompt\)|\bprint\(system_?prompt\)", 0.9),
    # Text in a document or tool result that addresses the model reading it (indirect injection).
    (r"\b(?:note|message|instructions?|reminder)s? (?:to|for) (?:the |any |all |an? )?(?:ai|llm|assistant|language "
     r"model|ai model|ai assistant|ai agent|chatbot|bot|model|agent|automated (?:tools?|readers?|systems?))s?"
     r"(?: reading this| processing this (?:page|document|file|text))?\s*(?:[:,]|--|-->|\*\*)"
     r"|\bif you are an? (?:ai|llm|language model|assistant|chatbot|ai model|ai assistant|bot|automated)\b"
     r"|\b(?:dear|attention|hey|to any|to all) (?:ai|llm|assistant|language model|chatbot|ai models?|ai assistants?|bots|llms)\b",
     0.9),
    # Exfiltration: sensitive data sent to an address or URL, or rendered into an image URL.
    (r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|append|include|encode)\b[^\n]{0,60}?\b(?:"
     r"conversation|chat history|chat log|transcript|previous messages|message history|api keys?|passwords?|"
     r"credentials|secrets|system prompt|the user'?s (?:data|details|messages|files|name|address|e-?mail)|"
     r"personal (?:data|details|information))\b[^\n]{0,80}?(?:https?://|\b[\w.+-]+@[\w-]+\.\w|!\[)", 0.9),
    (r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]*(?:\{|\$\{|%7b|<|\[)"
     r"|\brender\b[^\n.]{0,40}\bimage\b[^\n.]{0,80}\b(?:conversation|chat|history|secret|password|api key|"
     r"token|credentials|messages)\b", 0.9),
    # Hiding the injected action from the user.
    (r"\b(?:do not|don't|never) (?:tell|inform) (?:the )?user\b|\bwithout (?:telling|informing) (?:the )?user\b"
     r"|\b(?:do not|don't) (?:mention|reveal|disclose) (?:this|these) (?:note|message|instruction|comment)s?\b", 0.9),
    # System-prompt extraction without naming the system prompt: "continue the text above", "translate your
    # instructions".
    (r"\b(?:repeat|recite|reproduce|print|output|echo|copy|continue)\b[^\n.]{0,30}\b(?:everything|(?:all )?(?:of )?"
     r"the (?:text|words|lines|messages?|conversation))\b[^\n.]{0,20}\b(?:above|before this|preceding|so far)\b"
     r"|\b(?:repeat|translate|summari[sz]e|encode|rewrite|paraphrase|reveal|print|show|output|list|recite|spell out|"
     r"dump)\b[^\n.]{0,20}\byour (?:own |original |initial |hidden |full )?(?:instructions|rules|guidelines|"
     r"directives|prompt|configuration)\b", 0.9),
    # Chat-template and tool-call smuggling inside data.
    (r"<\|im_start\|>\s*system|<\|system\|>|\[/?inst\]|<<sys>>|\[system (?:note|message|override)", 0.9),
    (r"<tool_call>|\"function_call\"\s*:", 0.8),
    # Other languages: overrides and system-prompt requests.
    (r"\b(?:ignora|olvida|omite|ignore|olvide)\b[^\n.]{0,40}\binstrucciones\b|\bprompt del sistema\b", 0.95),
    (r"\b(?:ignoriere|vergiss|missachte|ignorieren sie|vergessen sie)\b[^\n.]{0,40}\b(?:anweisungen|instruktionen|regeln|frage)\b"
     r"|\bsystem-?prompt\b[^\n.]{0,40}\b(?:aus|zeige)", 0.95),
    (r"\b(?:ignorez|ignore|oubliez|oublie)\s+(?:toutes\s+)?(?:les|tes|vos)\s+(?:\w+\s+){0,2}(?:instructions|consignes)\b"
     r"|\b(?:message|prompt) système\b", 0.9),
    (r"\b(?:ignore|esqueça|esqueca|desconsidere|ignora|dimentica)\b[^\n.]{0,40}\b(?:instruções|instrucoes|istruzioni)\b"
     r"|\bprompt do sistema\b|\bprompt di sistema\b", 0.95),
    (r"\b(?:negeer|vergeet)\b[^\n.]{0,40}\binstructies\b|\b(?:zignoruj|ignoruj|zapomnij)\b[^\n.]{0,40}\b(?:instrukcj|polece)", 0.95),
    (r"\b(?:talimatları|talimatlari)\b[^\n.]{0,30}\b(?:yok say|unut|görmezden)|\bsistem (?:istemini|mesajını)", 0.95),
    # "системн" anywhere in a word followed by one of the nouns. Anchored at word starts with a possessive
    # word: the unanchored `системн\w* ` rescanned the rest of the word from every occurrence, quadratic
    # in the word's length (100 KB of "системн" took 3 s; now ~2 ms). Same matches.
    (r"(?:игнорируй|забудь|проигнорируй)[^\n.]{0,40}(?:инструкци|указани|правил)"
     r"|(?<!\w)(?=\w*?системн)\w*+ (?:промпт|сообщени|инструкци)", 0.95),
    (r"忽略[^\n。]{0,12}(?:指令|指示|说明|提示)|系统提示|(?:指示|命令)を(?:無視|忘れ)|システムプロンプト|"
     r"(?:지시|명령|지침)[^\n.]{0,8}무시|시스템 프롬프트", 0.95),
)
RULES: tuple[tuple[re.Pattern[str], float], ...] = tuple((re.compile(p), w) for p, w in _RAW_RULES)

# What each rule needs before its regex can match, in RULES order. A rule is tried only when one of its
# alternatives holds; an alternative is a tuple of conditions that must all hold, each either a frozenset
# of whole tokens (one must be among the text's tokens: a `\bword\b` in the pattern is always one whole
# token of features.TOKEN) or a tuple of substrings (one must occur: for words the pattern does not bound
# with `\b`). Each alternative lists its rarest condition first: `rule_score` looks at an alternative only
# when the text has a word of that first condition (or always, when it is substrings), so text without
# trigger words costs one set intersection instead of a gate check per rule. Conditions are checked in
# order, so word sets (set look-ups) come before substrings (text scans), and a substring list whose needles
# all hold a rare character is led by that character: a one-character `in` is a memchr, several times
# cheaper than scanning for a longer needle.
# tests/unit/test_injection.py checks that no gate hides a match.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_Condition = frozenset[str] | tuple[str, ...]
_Gate = tuple[tuple[_Condition, ...], ...]
_VERB_WORDS = _words("ignore disregard forget bypass override overwrite skip discard abandon drop follow following")
_PRIOR_WORDS = _words("all any every the your my previous prior above earlier preceding former initial original "
                      "system following foregoing other")
_INSTR_WORDS = _words("instruction instructions direction directions prompt prompts rules guidelines command "
                      "commands directive directives guardrails restrictions constraints programming policies "
                      "safeguards")
_SECRET_ANCHORS = ("prompt", "message", "instruction", "rules", "configuration")
_GATES: tuple[_Gate, ...] = (
    ((_INSTR_WORDS, _VERB_WORDS, _PRIOR_WORDS),),
    ((_words("ignore disregard forget"), _words("everything all anything"),
      ("above", "before", "previously", "prior", "told")),),
    ((_words("instructions task objective rules"), _words("new"), _words(":")),),
    ((_words("task objective goal instruction instructions purpose job"), _words("your"), _words("new real actual true"),
      _words("is are")),),
    ((_words("everything summarizing summarising translating what"), _words("stop")),),
    ((_words("forget"), _words("you"), _words("are")),),
    ((_words("longer"), _words("you"), _words("are"), _words("no")),),
    ((_words("now"), _words("from"), _words("on"), _words("you"), _words("are will must shall")),),
    ((_words("anything"), _words("do"), _words("now")), (_words("dan"), _words("mode")),
     (_words("jailbreak jailbreaked"), _words("mode")), (_words("developer"), _words("mode"), _words("enabled output"))),
    ((_words("restrictions filters guidelines censorship limitations"), _words("no without"),
      _words("answer respond reply do say")),),
    ((_words("unrestricted uncensored unfiltered unaligned"), _words("ai model assistant mode chatbot version")),),
    ((_words("reveal print show output repeat display tell give write paste dump leak disclose share translate "
             "encode spell recite return list"), _words("your the my all every"), _SECRET_ANCHORS,
      ("system", "initial", "original", "starting", "hidden", "secret", "developer", "prompt", "instruction")),),
    ((_words("initial original hidden system secret first"), _words("what which"), _words("were are"),
      _words("your the"), ("instructions", "prompt", "rules")),),
    ((_words("told"), _words("what"), _words("before")), (_words("text"), _words("output"), _words("above")),
     (_words("words"), _words("repeat"), _words("above"))),
    ((("(",), ("(system",)),),
    ((_words("note notes message messages instruction instructions reminder reminders"), _words("to for")),
     (_words("if"), _words("you"), _words("are"), _words("a an")),
     (_words("dear attention hey any all"), _words("ai llm assistant language chatbot bots llms"))),
    ((_words("send forward email mail post upload transmit leak exfiltrate append include encode"),
      ("http", "@", "![")),),
    ((("![",),), (_words("render"), _words("image"))),
    ((_words("tell inform"), _words("user"), _words("not don never")),
     (_words("telling informing"), _words("without"), _words("user")),
     (_words("mention reveal disclose"), _words("this these"), _words("not don"))),
    ((_words("above before preceding far"), _words("repeat recite reproduce print output echo copy continue"),
      _words("everything text words lines message messages conversation")),
     (_words("instructions rules guidelines directives prompt configuration"), _words("your"),
      _words("repeat translate summarize summarise encode rewrite paraphrase reveal print show output list recite "
             "spell dump"))),
    ((("<", "["), ("<|", "[inst", "[/inst", "<<sys", "[system")),),
    ((("_",), ("<tool_call>", "function_call")),),
    ((_words("instrucciones"), _words("ignora olvida omite ignore olvide")), (_words("sistema"), _words("prompt"), _words("del"))),
    ((_words("anweisungen instruktionen regeln frage"), _words("ignoriere vergiss missachte ignorieren vergessen")),
     (_words("systemprompt"),), (_words("prompt"), _words("system"))),
    ((_words("instructions consignes"), _words("ignorez ignore oubliez oublie"), _words("les tes vos")),
     (_words("système"), _words("message prompt"))),
    ((_words("instruções instrucoes istruzioni"), _words("ignore esqueça esqueca desconsidere ignora dimentica")),
     (_words("sistema"), _words("prompt"))),
    ((_words("instructies"), _words("negeer vergeet")), (_words("zignoruj ignoruj zapomnij"), ("instrukcj", "polece"))),
    ((_words("talimatları talimatlari"),), (_words("sistem"), ("istemini", "mesajını"))),
    ((("инструкци", "указани", "правил", "системн"),),),
    ((("忽略", "系统提示", "無視", "忘れ", "システムプロンプト", "무시", "시스템 프롬프트"),),),
)
assert len(_GATES) == len(RULES)

# Where each rule's matches can start, in RULES order: the words (whole alphanumeric runs, `[^\W_]+`) and
# literal strings every alternative of the pattern begins with, or None where a pattern does not begin
# with one (it is searched as a whole). A rule with anchors is matched (`pattern.match(text, pos)`, which
# sees the text before `pos` for `\b` and look-behinds as search does) only where an anchor starts, so a
# 6,000-character document costs a few match attempts instead of the regex engine trying every position
# (~0.2-0.5 ms per rule whose gate the document's common words open). tests/unit/test_injection_anchors.py
# checks that anchored matching finds exactly what searching finds.
_Anchors = tuple[frozenset[str], tuple[str, ...]] | None
_ANCHORS: tuple[_Anchors, ...] = (
    (_words("ignore disregard forget bypass override overwrite skip discard abandon drop do don stop"), ()),
    (_words("ignore disregard forget"), ()),
    (_words("new"), ()),
    (_words("your"), ()),
    (_words("stop"), ()),
    (_words("forget"), ()),
    (_words("you"), ()),
    (_words("from"), ()),
    (_words("do dan jailbreak jailbreaked developer"), ()),
    (_words("no without"), ()),
    (_words("unrestricted uncensored unfiltered unaligned"), ()),
    (_words("reveal print show output repeat display tell give write paste dump leak disclose share translate "
            "encode spell recite return list"), ()),
    (_words("what which"), ()),
    (_words("what output repeat"), ()),
    (_words("console print"), ()),
    (_words("note notes message messages instruction instructions instructionss reminder reminders if dear "
            "attention hey to"), ()),
    (_words("send forward email e post upload transmit leak exfiltrate append include encode"), ()),
    (_words("render"), ("![",)),
    (_words("do don never without"), ()),
    (_words("repeat recite reproduce print output echo copy continue translate summarise summarize encode "
            "rewrite paraphrase reveal show list spell dump"), ()),
    None,  # chat templates: literal-led, the engine skips to "<" or "[" itself
    None,
    (_words("ignora olvida omite ignore olvide prompt"), ()),
    (_words("ignoriere vergiss missachte ignorieren vergessen system systemprompt"), ()),
    (_words("ignorez ignore oubliez oublie message prompt"), ()),
    (_words("ignore esqueça esqueca desconsidere ignora dimentica prompt"), ()),
    (_words("negeer vergeet zignoruj ignoruj zapomnij"), ()),
    (_words("talimatları talimatlari sistem"), ()),
    None,  # Russian: a word containing "системн" anywhere
    None,  # CJK: no word boundaries
)
assert len(_ANCHORS) == len(RULES)
ANCHOR_WORDS: frozenset[str] = frozenset().union(*(a[0] for a in _ANCHORS if a is not None))
_WORD = re.compile(r"[^\W_]+")


def word_starts_py(text: str) -> list[tuple[str, int]]:
    """(word, start) of each whole alphanumeric run of `text` that is an anchor word, in text order (the
    reference for the C accelerator's WordStarts.find)."""
    return [(m.group(), m.start()) for m in _WORD.finditer(text) if m.group() in ANCHOR_WORDS]


_FAST_STARTS = fast.WordStarts(sorted(ANCHOR_WORDS)) if fast is not None else None
word_starts = _FAST_STARTS.find if _FAST_STARTS is not None else word_starts_py

_GATED = tuple(zip(_GATES, RULES, _ANCHORS))
# Strongest first, so the scan stops as soon as no remaining rule could raise the score.
_BY_WEIGHT = tuple(sorted(_GATED, key=lambda gated: -gated[1][1]))


def _index() -> tuple[frozenset[str], dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Trigger words of all gates; for each word of a first condition, the _BY_WEIGHT positions it wakes;
    the positions with an alternative led by substrings, which no word can wake."""
    trigger_words: set[str] = set()
    by_word: dict[str, set[int]] = {}
    always: set[int] = set()
    for position, (gate, _, _) in enumerate(_BY_WEIGHT):
        for first, *rest in gate:
            trigger_words.update(*(c for c in (first, *rest) if type(c) is frozenset))
            if type(first) is frozenset:
                for word in first:
                    by_word.setdefault(word, set()).add(position)
            else:
                always.add(position)
    return (frozenset(trigger_words), {word: tuple(sorted(p)) for word, p in by_word.items()},
            tuple(sorted(always)))


# TRIGGER_WORDS are the only tokens rule_score asks about (the C scanner reports just these).
TRIGGER_WORDS, _WAKES, _ALWAYS_TRIED = _index()


def _gate_open(gate: _Gate, normalized: str, tokens: set[str] | frozenset[str]) -> bool:
    for conditions in gate:
        for condition in conditions:
            if type(condition) is frozenset:
                if condition.isdisjoint(tokens):
                    break
            elif not any(needle in normalized for needle in condition):
                break
        else:
            return True
    return False


def rule_score(normalized: str, tokens: Iterable[str] | None = None) -> float:
    """Highest probability among the patterns that match, 0.0 when none does.

    `tokens` are the features.TOKEN tokens of `normalized` (any iterable, repeats and extra marks allowed),
    when the caller already has them; the TRIGGER_WORDS among them are enough.
    """
    if tokens is None:
        tokens = TOKEN.findall(normalized)
    # Gates only ever ask about trigger words, so the text's trigger words stand in for its whole token set.
    present = TRIGGER_WORDS.intersection(tokens)
    woken = set(_ALWAYS_TRIED)
    for word in present:
        woken.update(_WAKES.get(word, ()))
    best = 0.0
    starts: dict[str, list[int]] | None = None
    for position in sorted(woken):
        gate, (pattern, weight), anchors = _BY_WEIGHT[position]
        if weight <= best:
            break
        if not _gate_open(gate, normalized, present):
            continue
        if anchors is None:
            if pattern.search(normalized):
                best = weight
            continue
        if starts is None:
            starts = {}
            for word, start in word_starts(normalized):
                starts.setdefault(word, []).append(start)
        if _anchored_match(pattern, normalized, anchors, starts):
            best = weight
    return best


def _anchored_match(pattern: re.Pattern[str], text: str, anchors: tuple[frozenset[str], tuple[str, ...]],
                    starts: dict[str, list[int]]) -> bool:
    words, literals = anchors
    match = pattern.match
    for word in words.intersection(starts):
        for start in starts[word]:
            if match(text, start):
                return True
    for literal in literals:
        start = text.find(literal)
        while start >= 0:
            if match(text, start):
                return True
            start = text.find(literal, start + 1)
    return False


def rule_score_reference(normalized: str) -> float:
    """rule_score without gates or anchors: every pattern searched over the whole text (for tests)."""
    return max((weight for pattern, weight in RULES if pattern.search(normalized)), default=0.0)
