"""Hand-written patterns for unambiguous injections, matched on normalised (lower-cased) text.

Each pattern carries the probability it stands for on its own. They stay within one line or sentence
(`[^\\n]{0,N}` gaps) so a long benign document cannot assemble a match from distant words.
"""

from __future__ import annotations

import re

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
    (r"(?:игнорируй|забудь|проигнорируй)[^\n.]{0,40}(?:инструкци|указани|правил)|системн\w* (?:промпт|сообщени|инструкци)", 0.95),
    (r"忽略[^\n。]{0,12}(?:指令|指示|说明|提示)|系统提示|(?:指示|命令)を(?:無視|忘れ)|システムプロンプト|"
     r"(?:지시|명령|지침)[^\n.]{0,8}무시|시스템 프롬프트", 0.95),
)
RULES: tuple[tuple[re.Pattern[str], float], ...] = tuple((re.compile(p), w) for p, w in _RAW_RULES)

# What each rule needs before its regex can match, in RULES order. A rule is tried only when one of its
# alternatives holds; an alternative is a tuple of conditions that must all hold, each either a frozenset
# of whole tokens (one must be among the text's tokens: a `\bword\b` in the pattern is always one whole
# token of features.TOKEN) or a tuple of substrings (one must occur: for words the pattern does not bound
# with `\b`). Most text lacks the trigger words, so most rules cost a few set look-ups instead of a regex
# scan of the whole document. tests/unit/test_injection.py checks that no gate hides a match.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_Gate = tuple[tuple[frozenset[str] | tuple[str, ...], ...], ...]
_VERB_WORDS = _words("ignore disregard forget bypass override overwrite skip discard abandon drop follow following")
_PRIOR_WORDS = _words("all any every the your my previous prior above earlier preceding former initial original "
                      "system following foregoing other")
_INSTR_WORDS = _words("instruction instructions direction directions prompt prompts rules guidelines command "
                      "commands directive directives guardrails restrictions constraints programming policies "
                      "safeguards")
_SECRET_ANCHORS = ("prompt", "message", "instruction", "rules", "configuration")
_GATES: tuple[_Gate, ...] = (
    ((_VERB_WORDS, _PRIOR_WORDS, _INSTR_WORDS),),
    ((_words("ignore disregard forget"), _words("everything all anything"),
      ("above", "before", "previously", "prior", "told")),),
    ((_words("new"), _words("instructions task objective rules"), _words(":")),),
    ((_words("your"), _words("new real actual true"), _words("task objective goal instruction instructions purpose job"),
      _words("is are")),),
    ((_words("stop"), _words("everything summarizing summarising translating what")),),
    ((_words("forget"), _words("you"), _words("are")),),
    ((_words("you"), _words("are"), _words("no"), _words("longer")),),
    ((_words("from"), _words("now"), _words("on"), _words("you"), _words("are will must shall")),),
    ((_words("do"), _words("anything"), _words("now")), (_words("dan"), _words("mode")),
     (_words("jailbreak jailbreaked"), _words("mode")), (_words("developer"), _words("mode"), _words("enabled output"))),
    ((_words("no without"), _words("restrictions filters guidelines censorship limitations"),
      _words("answer respond reply do say")),),
    ((_words("unrestricted uncensored unfiltered unaligned"), _words("ai model assistant mode chatbot version")),),
    ((_words("reveal print show output repeat display tell give write paste dump leak disclose share translate "
             "encode spell recite return list"), _words("your the my all every"),
      ("system", "initial", "original", "starting", "hidden", "secret", "developer", "prompt", "instruction"),
      _SECRET_ANCHORS),),
    ((_words("what which"), _words("were are"), _words("your the"), _words("initial original hidden system secret first"),
      ("instructions", "prompt", "rules")),),
    ((_words("what"), _words("told"), _words("before")), (_words("output"), _words("text"), _words("above")),
     (_words("repeat"), _words("words"), _words("above"))),
    ((("(system",),),),
    ((("<|", "[inst", "[/inst", "<<sys", "[system"),),),
    ((("<tool_call>", "function_call"),),),
    ((_words("ignora olvida omite ignore olvide"), _words("instrucciones")), (_words("prompt"), _words("del"), _words("sistema"))),
    ((_words("ignoriere vergiss missachte ignorieren vergessen"), _words("anweisungen instruktionen regeln frage")),
     (_words("systemprompt"),), (_words("system"), _words("prompt"))),
    ((_words("ignorez ignore oubliez oublie"), _words("les tes vos"), _words("instructions consignes")),
     (_words("message prompt"), _words("système"))),
    ((_words("ignore esqueça esqueca desconsidere ignora dimentica"), _words("instruções instrucoes istruzioni")),
     (_words("prompt"), _words("sistema"))),
    ((_words("negeer vergeet"), _words("instructies")), (_words("zignoruj ignoruj zapomnij"), ("instrukcj", "polece"))),
    ((_words("talimatları talimatlari"),), (_words("sistem"), ("istemini", "mesajını"))),
    ((("инструкци", "указани", "правил", "системн"),),),
    ((("忽略", "系统提示", "無視", "忘れ", "システムプロンプト", "무시", "시스템 프롬프트"),),),
)
assert len(_GATES) == len(RULES)
_GATED = tuple(zip(_GATES, RULES))
# Strongest first, so the scan stops as soon as no remaining rule could raise the score.
_BY_WEIGHT = tuple(sorted(_GATED, key=lambda gated: -gated[1][1]))


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


def rule_score(normalized: str, tokens: set[str] | frozenset[str] | None = None) -> float:
    """Highest probability among the patterns that match, 0.0 when none does.

    `tokens` is the set of features.TOKEN tokens of `normalized`, when the caller already has it.
    """
    if tokens is None:
        tokens = set(TOKEN.findall(normalized))
    best = 0.0
    for gate, (pattern, weight) in _BY_WEIGHT:
        if weight <= best:
            break
        if _gate_open(gate, normalized, tokens) and pattern.search(normalized):
            best = weight
    return best
