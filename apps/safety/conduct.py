"""Direct-message conduct: what a message sent in a creator's name to a fan must never do.

Part of ``apps.safety`` (its docstring lists every rule). These rules apply to generated direct
messages (``apply_policy(..., direct_message=True)``, used by the inbox's AI drafts), where a
fan's message may have talked the model into something; captions and studio texts do not use
them. Matching runs on the normalised copies (``text.normalise``: look-alike letters, accents,
leetspeak and spaced-out letters undone), so "P@yPaI", "t e l e g r a m" and a Cyrillic "\u0421" in
"\u0421ashApp" read as the plain words. Every pattern is a plain alternation of bounded words:
linear in the input.

Deliberately strict: naming CashApp or a refund even to decline counts, because the model is
told to decline without naming it, and a refused draft costs only a card the chatter does not
see (the other drafts and the chatter's own typing are unaffected).
"""

from __future__ import annotations

import re

from apps.safety.base import _EXCERPT_LEN, _MAX_PER_RULE, Violation
from apps.safety.text import Normalised

OFF_PLATFORM = "off_platform"
MEETING = "meeting"
FALSE_PROMISE = "false_promise"
PERSONA_BREAK = "persona_break"
PROMPT_LEAK = "prompt_leak"
CONDUCT_RULES = frozenset({OFF_PLATFORM, MEETING, FALSE_PROMISE, PERSONA_BREAK, PROMPT_LEAK})

CONDUCT_MESSAGES = {
    OFF_PLATFORM: "Payments and contact stay on the platform: no CashApp, PayPal, Venmo, crypto, gift cards, "
    "bank transfers, phone numbers, e-mail addresses or other apps.",
    MEETING: "A message must never promise or arrange meeting a fan in person.",
    FALSE_PROMISE: "A message must never promise refunds, money back or free content.",
    PERSONA_BREAK: "The message breaks character: it speaks as an AI, a bot, a model or the creator's team.",
    PROMPT_LEAK: "The message repeats the instructions it was written from.",
}


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w$])(?:" + "|".join(alternatives) + r")(?!\w)")


_OFF_PLATFORM = _words(
    r"cash ?app", r"pay ?pal", r"venmo", r"zelle", r"bitcoins?", r"btc", r"crypto(?:currency)?", r"usdt",
    r"ethereum", r"(?:eth|btc|crypto|wallet) address", r"gift ?cards?", r"western union", r"money ?gram",
    r"(?:wire|bank) transfer", r"(?:my|mi|mon) iban", r"iban:", r"revolut", r"skrill", r"apple ?pay",
    r"google ?pay", r"wise transfer",
    r"tele ?gram", r"whats ?app", r"snap ?chat", r"my snap", r"kik", r"wickr", r"signal app", r"discord",
    r"(?:text|call|message|dm|add|find) me (?:at|on)", r"phone number",
    r"my (?:phone |cell |mobile )?number(?! ?(?:one|1|#|two|2)\b)",  # not "my number one fan"
    r"my e-?mail", r"e-?mail me", r"off (?:the )?(?:platform|site|app)",
    r"outside (?:of )?(?:onlyfans|fansly|the app|the platform|this app|this site|here)",
    r"hors de la plateforme", r"en dehors (?:de la plateforme|du site|d'onlyfans)", r"mon (?:numero|num|mail)",
    r"virement", r"carte cadeau", r"fuera de (?:la plataforma|onlyfans|la app)", r"mi (?:numero|correo)",
    r"transferencia(?: bancaria)?", r"tarjeta de regalo",
)  # fmt: skip
_CASHTAG = re.compile(r"(?<![\w$])\$[a-z][a-z0-9_]{2,19}(?!\w)")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,4}\.[a-z]{2,12}(?!\w)")
_PHONE = re.compile(r"(?<![\d.,$])(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?![\d.,])")

_MEETING = _words(
    r"in person", r"irl", r"in real life", r"face to face", r"meet ?up", r"let'?s meet", r"let us meet",
    r"(?:we|i) (?:can|could|should|will|would|'ll) meet",
    r"meet (?:you|u|me)(?! (?:in|on|at) (?:my|the) (?:dms?|live|stream|chat|inbox|comments|page|feed))"
    r"(?= (?:at|in|for|tonight|tomorrow|this|next|after|somewhere|irl|near|downtown|soon|later|someday|sometime))",
    r"hook ?up", r"come over", r"(?:come|coming) to (?:my|your) (?:place|house|apartment|flat|hotel|room)",
    r"(?:at|to) your (?:place|house|apartment|flat|hotel)", r"my address", r"your address", r"go(?:ing)? on a date",
    r"(?:grab|get) (?:a )?(?:drink|drinks|coffee|dinner|lunch) (?:with|together)",
    r"see you in person", r"visit you", r"come (?:and )?visit me(?! (?:in|on) (?:my )?(?:live|page|stream|dms?))",
    r"se voir(?: en vrai)?", r"se rencontrer", r"on se voit", r"rendez-vous", r"viens chez moi",
    r"(?:passer|venir|aller|passe|viens|vais) chez toi", r"en persona", r"vernos", r"quedar (?:contigo|conmigo)",
    r"conocernos", r"ven a mi casa", r"(?:voy|ir|paso|pasar) a tu casa",
)  # fmt: skip

_FALSE_PROMISE = _words(
    r"refund(?:s|ed|ing)?", r"money back", r"reimburs\w{0,12}", r"for free", r"free of charge", r"on the house",
    r"(?:at|for|with) no charge", r"no charge for you", r"won'?t (?:charge|cost)", r"at no cost",
    r"(?:it|this|that)'?s free",
    r"free (?:ppvs?|videos?|vids?|pics?|pictures?|photos?|content|unlocks?|customs?|nudes|access|subs?|"
    r"subscriptions?|months?|sets?|clips?|stuff|gifts?)",
    r"rembours\w{0,12}", r"gratuit\w{0,3}", r"reembols\w{0,12}", r"gratis", r"devolver(?:te)? (?:el|tu) dinero",
    r"sin (?:costo|cargo)",
)  # fmt: skip

_PERSONA_BREAK = _words(
    r"as an ai", r"i'?m an ai", r"i am an ai", r"an ai (?:language )?model", r"language model", r"ai assistant",
    r"virtual assistant", r"chat ?bot", r"i'?m (?:just )?a bot", r"i am (?:just )?a bot", r"chat ?gpt", r"openai",
    r"anthropic", r"gpt-?\d", r"system prompt", r"my prompt", r"my (?:programming|instructions|guidelines)",
    r"i (?:was|am|'m) (?:programmed|instructed)", r"i'?m (?:her|his|their) (?:assistant|chatter|manager)",
    r"(?:this is|i'?m|i am) (?:the|her|his|their) (?:chatter|assistant|manager|agency)",
    r"(?:this is|i'?m|i am) (?:from|with) (?:the|her|his|their) (?:team|agency)",
    r"i (?:cannot|can'?t|am unable to) (?:assist|help) with (?:that|this)", r"i'?m sorry,? but i can(?:not|'?t)",
    r"developer mode", r"jailbreak", r"dan mode",
    r"i (?:do not|don'?t) have (?:personal )?(?:feelings|a body|emotions)",
    r"en tant qu'?(?:ia|intelligence artificielle)", r"je suis une? (?:ia|robot|bot|assistante?)",
    r"modele de langage", r"como (?:una )?ia", r"soy una? (?:ia|bot|asistente)", r"modelo de lenguaje",
)  # fmt: skip

_RULES = ((OFF_PLATFORM, _OFF_PLATFORM), (MEETING, _MEETING), (FALSE_PROMISE, _FALSE_PROMISE),
          (PERSONA_BREAK, _PERSONA_BREAK))  # fmt: skip

LEAK_WORDS = 8  # consecutive words shared with the protected prompt that make a leak
_TOKEN = re.compile(r"[^\W_]+")


def conduct_violations(normalised: Normalised) -> list[Violation]:
    """The direct-message rules on one normalised text (one violation per rule, first excerpt)."""
    found: list[Violation] = []
    copies = (normalised.plain, *normalised.views)
    for rule, pattern in _RULES:
        excerpts: list[str] = []
        for copy in copies:
            for match in pattern.finditer(copy):
                if match.group(0) not in excerpts:
                    excerpts.append(match.group(0))
                if len(excerpts) >= _MAX_PER_RULE:
                    break
        if rule == OFF_PLATFORM:
            for extra in (_CASHTAG, _EMAIL, _PHONE):
                match = extra.search(normalised.plain)
                if match:
                    excerpts.append(match.group(0))
        if excerpts:
            found.append(Violation(rule, CONDUCT_MESSAGES[rule], excerpts[0][:_EXCERPT_LEN]))
    return found


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def prompt_leak(text: str, prompt: str) -> list[Violation]:
    """A violation when ``text`` repeats ``LEAK_WORDS`` consecutive words of ``prompt`` (case,
    punctuation and spacing ignored). Linear: the prompt's word runs go in a set once."""
    words = _tokens(prompt)
    if len(words) < LEAK_WORDS:
        return []
    runs = {tuple(words[i : i + LEAK_WORDS]) for i in range(len(words) - LEAK_WORDS + 1)}
    said = _tokens(text)
    for i in range(len(said) - LEAK_WORDS + 1):
        run = tuple(said[i : i + LEAK_WORDS])
        if run in runs:
            return [Violation(PROMPT_LEAK, CONDUCT_MESSAGES[PROMPT_LEAK], " ".join(run)[:_EXCERPT_LEN])]
    return []
