"""The built-in offline provider: deterministic, persona-aware text with no API key and no I/O.

Every AI feature must work on a fresh machine, so this provider writes short chat replies,
outbound messages, captions, hashtags and content ideas from small per-language phrase banks and
the creator's own data in ``request.context``. It is pure Python and takes tens of microseconds.

Rules another developer can rely on:

- Output is a pure function of ``feature``, ``json_mode``, the messages and the recognised
  context keys (see ``_SEED_KEYS``); ``system``, ``temperature`` and unknown context keys do not
  change it. The RNG is seeded from blake2b, never ``hash()``, so it is stable across processes.
- Context (all optional, wrong types are ignored): ``creator`` {display_name, niche, persona,
  voice, sample_texts, avoid_words, avoid_topics, language}; top-level ``fan`` {display_name,
  notes, total_spent}, ``platform``, ``tone``, ``task``, ``count``, ``json_example``. Any of the
  creator keys may also be given top-level (top-level wins; avoid lists are merged).
- Words from ``avoid_words`` (whole word, case-insensitive) and phrases from ``avoid_topics`` are
  removed from every generated string, and hashtags containing them are never produced.
- Message content is untrusted: it only picks a reply category and, in English, echoes at most
  one short noun ("my dog" -> "your dog"); it never changes the task or the output format.
- ``builtin_generate`` never raises: an unexpected bug is logged and a minimal safe text (still
  valid JSON in JSON mode) is returned instead.
"""

# The Japanese bank and CJK punctuation are intentional:
# ruff: noqa: RUF001
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from apps.ai.providers.base import Provider
from apps.ai.types import AIRequest, ProviderResult, Usage

__all__ = ["BUILTIN_MODEL", "PHRASE_BANKS", "BuiltinProvider", "builtin_generate", "estimate_tokens"]

logger = logging.getLogger(__name__)

BUILTIN_MODEL = "huntaze-builtin-1"

TASKS = ("reply", "message", "caption", "hashtags", "idea")
TONES = ("flirty", "friendly", "playful", "grateful", "teasing")
DEFAULT_HASHTAG_COUNT = 8
MAX_HASHTAGS = 30
MAX_ITEMS = 20  # JSON list items and repeated text blocks
DEFAULT_JSON_LIST_ITEMS = 3
MAX_ECHO_CHARS = 60
_SEED_KEYS = (
    "creator",
    "fan",
    "platform",
    "tone",
    "task",
    "count",
    "json_example",
    "language",
    "niche",
    "persona",
    "voice",
    "sample_texts",
    "avoid_words",
    "avoid_topics",
    "display_name",
)


def estimate_tokens(text: str) -> int:
    """Rough token count: ceil(len / 4), at least 1 for non-empty text, 0 for empty."""
    if not text:
        return 0
    return max(1, -(-len(text) // 4))


# --------------------------------------------------------------------------------------------
# Phrase banks. Placeholders: {name} (fan), {pet} (term of endearment), {niche}, {topic}.
# "react" and "pet" are keyed by tone with a "default"; "answer" by the fan message's kind.
# Each list that uses {niche} also holds entries without it (used when the niche is unknown).
# Missing keys fall back to English. Read-only: treat PHRASE_BANKS as a constant.
# --------------------------------------------------------------------------------------------

_EN: dict[str, Any] = {
    "greet_named": ["Hey {name}!", "Hi {name}!", "Hey there, {name}!", "Hiii {name}!", "Well hello, {name}!"],
    "greet_pet": ["Hey {pet}!", "Hi {pet}!", "Hey there, {pet}!"],
    "pet": {
        "default": ["you", "lovely"],
        "flirty": ["babe", "gorgeous", "cutie"],
        "friendly": ["friend", "you", "lovely"],
        "playful": ["you", "trouble", "cutie"],
        "grateful": ["love", "sweetheart", "lovely"],
        "teasing": ["trouble", "you", "stranger"],
    },
    "react": {
        "default": ["So good to hear from you.", "You just made my day.", "I love chatting with you."],
        "flirty": [
            "You always know how to make me blush.",
            "Mmm, I was hoping you'd message me.",
            "You're making it really hard to focus today.",
        ],
        "friendly": ["So good to hear from you.", "You just made my day.", "I love chatting with you."],
        "playful": ["Okay, you officially made me laugh.", "Look who showed up!", "You're in a fun mood today, huh?"],
        "grateful": [
            "Thank you for being here, it means a lot.",
            "I'm so grateful for you.",
            "You're honestly the best.",
        ],
        "teasing": [
            "Oh, you think you can just message me like that?",
            "Careful, you might get more than you asked for.",
            "Someone's curious today...",
        ],
    },
    "answer": {
        "question": [
            "Good question, I'll tell you everything if you stay close.",
            "Honestly, I was just thinking about that.",
            "Right now I'm working on a new {niche} set, and you'll be the first to see it.",
            "Mmm, let me keep a little mystery for now.",
        ],
        "compliment": [
            "Stop it, you're making me blush!",
            "Aww, thank you, that really made me smile.",
            "You're too sweet, I needed that today.",
        ],
        "greeting": [
            "I was just thinking about you.",
            "How's your day going so far?",
            "Perfect timing, I just got back online.",
        ],
        "purchase": [
            "Thank you so much, you really spoil me!",
            "You're amazing, thank you for the support.",
            "I hope you love it as much as I loved making it.",
        ],
        "generic": [
            "I love that.",
            "Tell me more, I'm all ears.",
            "That's honestly so sweet of you to share.",
            "I like the way you think.",
        ],
    },
    "topic": ["Tell me more about {topic}.", "Wait, now I want to hear everything about {topic}."],
    "ask": [
        "What are you up to tonight?",
        "How's your day going?",
        "What would you love to see from me next?",
        "What's on your mind?",
    ],
    "close": ["Talk soon.", "Don't be a stranger.", "Can't wait to hear from you again.", "Catch you later."],
    "vip": [
        "You're honestly one of my favorites.",
        "You've always been one of my favorites.",
        "I save my best for you.",
    ],
    "tease": [
        "I just finished a new {niche} set and I think you're going to love it.",
        "My newest {niche} content is ready and I thought of you first.",
        "I've got something special waiting for you.",
        "I made something new and couldn't wait to show you.",
    ],
    "cta_fan": [
        "Check your DMs.",
        "Unlock it now before it's gone.",
        "Reply and I'll send it over.",
        "Tell me if you want the full set.",
    ],
    "cta_public": [
        "Link in bio.",
        "The full set is waiting, link in bio.",
        "Follow for more.",
        "Tap the link in my bio for the rest.",
    ],
    "hook": [
        "New post alert!",
        "Guess who's back.",
        "Couldn't wait to share this one.",
        "Fresh drop, just for you.",
        "This one's special.",
    ],
    "caption": [
        "My newest {niche} set is finally here.",
        "A little {niche} moment to brighten your day.",
        "Spent all week on this {niche} shoot.",
        "Golden hour and good vibes.",
        "Feeling myself today.",
    ],
    "ideas": [
        (
            "{niche} behind the scenes",
            "Share a quick behind-the-scenes look at your {niche} routine and invite fans to ask questions.",
        ),
        (
            "Fan-choice {niche} poll",
            "Let fans vote on your next {niche} set and reveal the winner in an exclusive post.",
        ),
        ("Weekend {niche} countdown", "Tease one new {niche} preview a day leading up to a weekend drop."),
        ("Ask me anything", "Answer your fans' favourite questions in a relaxed, personal post."),
        ("Fan favourites throwback", "Repost a fan-favourite set with a fresh caption and a limited-time bundle."),
        ("Day in my life", "Walk fans through a typical day with short clips and a question sticker at the end."),
    ],
    "hashtags": [
        "newpost",
        "exclusive",
        "behindthescenes",
        "contentcreator",
        "weekendvibes",
        "dailyinspo",
        "selfcare",
        "photooftheday",
        "goodvibes",
        "mood",
        "creatorlife",
        "newdrop",
    ],
    "emoji": {
        "default": ["😊", "💕"],
        "flirty": ["😘", "😉", "💋"],
        "friendly": ["😊", "💕"],
        "playful": ["😜", "😂"],
        "grateful": ["🥰", "🙏"],
        "teasing": ["😏", "😈"],
    },
}

_ES: dict[str, Any] = {
    "greet_named": ["¡Hola, {name}!", "¡Hey, {name}!", "¡Hola hola, {name}!"],
    "greet_pet": ["¡Hola, {pet}!", "¡Hey, {pet}!"],
    "pet": {
        "default": ["corazón", "tú"],
        "flirty": ["cariño", "mi amor", "bombón"],
        "grateful": ["mi amor", "corazón"],
    },
    "react": {
        "default": ["¡Qué alegría saber de ti!", "Me alegraste el día.", "Me encanta hablar contigo."],
        "flirty": [
            "Siempre sabes cómo hacerme sonrojar.",
            "Mmm, esperaba que me escribieras.",
            "Me cuesta concentrarme cuando me escribes así.",
        ],
        "playful": ["Vale, me has hecho reír.", "¡Mira quién apareció!", "Hoy vienes con ganas de jugar, ¿eh?"],
        "grateful": [
            "Gracias por estar aquí, significa mucho para mí.",
            "Te lo agradezco muchísimo.",
            "Eres lo máximo, de verdad.",
        ],
        "teasing": [
            "¿Crees que puedes escribirme así sin más?",
            "Cuidado, podrías recibir más de lo que pides.",
            "Alguien tiene curiosidad hoy...",
        ],
    },
    "answer": {
        "question": [
            "Buena pregunta, te lo cuento todo si te quedas cerca.",
            "Sinceramente, justo estaba pensando en eso.",
            "Ahora mismo estoy preparando un nuevo set de {niche} y serás el primero en verlo.",
            "Mmm, déjame guardar un poco de misterio.",
        ],
        "compliment": [
            "¡Para, que me sonrojo!",
            "Ay, gracias, me sacaste una sonrisa.",
            "Qué lindo eres, lo necesitaba hoy.",
        ],
        "greeting": ["Justo estaba pensando en ti.", "¿Qué tal va tu día?", "Qué buen momento, acabo de conectarme."],
        "purchase": [
            "¡Muchísimas gracias, me consientes demasiado!",
            "Eres increíble, gracias por tu apoyo.",
            "Espero que te encante tanto como a mí hacerlo.",
        ],
        "generic": [
            "Me encanta.",
            "Cuéntame más, soy toda oídos.",
            "Qué lindo que me lo cuentes.",
            "Me gusta cómo piensas.",
        ],
    },
    "ask": [
        "¿Qué planes tienes esta noche?",
        "¿Qué tal tu día?",
        "¿Qué te gustaría ver de mí la próxima vez?",
        "¿En qué estás pensando?",
    ],
    "close": ["Hablamos pronto.", "No desaparezcas.", "Estoy deseando saber de ti otra vez.", "Besos."],
    "vip": ["Eres uno de mis favoritos, de verdad.", "Siempre guardo lo mejor para ti."],
    "tease": [
        "Acabo de terminar un nuevo set de {niche} y creo que te va a encantar.",
        "Mi nuevo contenido de {niche} ya está listo y pensé en ti primero.",
        "Tengo algo especial esperándote.",
        "Hice algo nuevo y no podía esperar para enseñártelo.",
    ],
    "cta_fan": [
        "Revisa tus mensajes privados.",
        "Desbloquéalo ahora antes de que desaparezca.",
        "Respóndeme y te lo envío.",
        "Dime si quieres el set completo.",
    ],
    "cta_public": [
        "Link en la bio.",
        "El set completo te espera, link en la bio.",
        "Sígueme para ver más.",
        "Toca el link de mi bio para ver el resto.",
    ],
    "hook": [
        "¡Nueva publicación!",
        "Adivina quién volvió.",
        "No podía esperar para compartir esto.",
        "Recién salido, solo para ti.",
        "Este es especial.",
    ],
    "caption": [
        "Mi nuevo set de {niche} por fin está aquí.",
        "Un momento de {niche} para alegrarte el día.",
        "Pasé toda la semana en esta sesión de {niche}.",
        "Hora dorada y buena vibra.",
        "Hoy me siento increíble.",
    ],
    "ideas": [
        (
            "{niche}: detrás de cámaras",
            "Comparte un vistazo rápido a tu rutina de {niche} e invita a tus fans a hacer preguntas.",
        ),
        (
            "Encuesta de {niche} para fans",
            "Deja que tus fans voten tu próximo set de {niche} y revela al ganador con un post exclusivo.",
        ),
        ("Cuenta atrás de {niche}", "Publica un adelanto de {niche} cada día hasta el lanzamiento del fin de semana."),
        ("Pregúntame lo que quieras", "Responde las preguntas favoritas de tus fans en un post relajado y personal."),
        (
            "Favoritos de siempre",
            "Vuelve a publicar un set favorito de tus fans con un texto nuevo y un pack por tiempo limitado.",
        ),
    ],
    "hashtags": ["contenidonuevo", "exclusivo", "creadoradecontenido", "buenasvibras", "novedad"],
}

_FR: dict[str, Any] = {
    "greet_named": ["Coucou {name}!", "Salut {name}!", "Hey {name}, coucou!"],
    "greet_pet": ["Coucou {pet}!", "Salut {pet}!"],
    "pet": {
        "default": ["toi"],
        "flirty": ["mon cœur", "mon chou"],
        "playful": ["toi", "petit malin"],
        "grateful": ["mon cœur"],
        "teasing": ["petit curieux", "toi"],
    },
    "react": {
        "default": [
            "Ça me fait tellement plaisir d'avoir de tes nouvelles.",
            "Tu viens d'illuminer ma journée.",
            "J'adore discuter avec toi.",
        ],
        "flirty": [
            "Tu sais toujours comment me faire rougir.",
            "Mmm, j'espérais que tu m'écrirais.",
            "Difficile de me concentrer quand tu m'écris comme ça.",
        ],
        "playful": ["Ok, tu m'as fait rire.", "Regardez qui est là!", "Tu es d'humeur joueuse aujourd'hui, hein?"],
        "grateful": [
            "Merci d'être là, ça compte beaucoup pour moi.",
            "Merci infiniment, vraiment.",
            "Tu es vraiment génial.",
        ],
        "teasing": [
            "Tu crois que tu peux m'écrire comme ça?",
            "Attention, tu pourrais recevoir plus que ce que tu demandes.",
            "Quelqu'un est curieux aujourd'hui...",
        ],
    },
    "answer": {
        "question": [
            "Bonne question, je te dis tout si tu restes dans le coin.",
            "Honnêtement, j'y pensais justement.",
            "En ce moment je prépare un nouveau shooting {niche} et tu seras le premier à le voir.",
            "Mmm, laisse-moi garder un peu de mystère.",
        ],
        "compliment": [
            "Arrête, tu me fais rougir!",
            "Oh merci, ça m'a vraiment fait sourire.",
            "Tu es adorable, j'en avais besoin aujourd'hui.",
        ],
        "greeting": [
            "Je pensais justement à toi.",
            "Comment se passe ta journée?",
            "Pile au bon moment, je viens de me connecter.",
        ],
        "purchase": [
            "Merci mille fois, tu me gâtes!",
            "Tu es incroyable, merci pour ton soutien.",
            "J'espère que tu vas l'adorer autant que j'ai aimé le faire.",
        ],
        "generic": [
            "J'adore.",
            "Raconte-moi tout, je t'écoute.",
            "C'est trop mignon de me le dire.",
            "J'aime ta façon de penser.",
        ],
    },
    "ask": [
        "Tu fais quoi ce soir?",
        "Comment va ta journée?",
        "Qu'est-ce que tu aimerais voir de moi ensuite?",
        "À quoi tu penses?",
    ],
    "close": ["À très vite.", "Ne disparais pas.", "J'ai hâte d'avoir de tes nouvelles.", "Bisous."],
    "vip": ["Tu fais vraiment partie de mes préférés.", "Je garde toujours le meilleur pour toi."],
    "tease": [
        "Je viens de terminer un nouveau shooting {niche} et je pense que tu vas adorer.",
        "Mon nouveau contenu {niche} est prêt et j'ai pensé à toi en premier.",
        "J'ai quelque chose de spécial qui t'attend.",
        "J'ai créé quelque chose de nouveau et j'avais hâte de te le montrer.",
    ],
    "cta_fan": [
        "Regarde tes messages privés.",
        "Débloque-le maintenant avant qu'il disparaisse.",
        "Réponds-moi et je te l'envoie.",
        "Dis-moi si tu veux le set complet.",
    ],
    "cta_public": [
        "Lien en bio.",
        "Le set complet t'attend, lien en bio.",
        "Abonne-toi pour en voir plus.",
        "Clique sur le lien dans ma bio pour la suite.",
    ],
    "hook": [
        "Nouveau post!",
        "Devine qui est de retour.",
        "J'avais hâte de partager celle-ci.",
        "Tout frais, rien que pour toi.",
        "Celle-ci est spéciale.",
    ],
    "caption": [
        "Mon nouveau shooting {niche} est enfin là.",
        "Un petit moment {niche} pour illuminer ta journée.",
        "J'ai passé toute la semaine sur ce shooting {niche}.",
        "Golden hour et bonnes vibes.",
        "Je me sens trop bien aujourd'hui.",
    ],
    "ideas": [
        (
            "Les coulisses {niche}",
            "Montre un aperçu rapide de ta routine {niche} et invite tes fans à poser leurs questions.",
        ),
        (
            "Sondage {niche} des fans",
            "Laisse tes fans voter pour ton prochain set {niche} et révèle le gagnant dans un post exclusif.",
        ),
        ("Compte à rebours {niche}", "Publie un aperçu {niche} chaque jour jusqu'à la sortie du week-end."),
        ("Pose-moi tes questions", "Réponds aux questions préférées de tes fans dans un post détendu et personnel."),
        ("Les favoris des fans", "Republie un set adoré des fans avec une nouvelle légende et une offre limitée."),
    ],
    "hashtags": ["nouveaupost", "exclusif", "createurdecontenu", "bonnesvibes", "nouveaute"],
}

_DE: dict[str, Any] = {
    "greet_named": ["Hallo {name}!", "Na, {name}!", "Huhu {name}!"],
    "greet_pet": ["Hallo {pet}!", "Na, {pet}!"],
    "pet": {
        "default": ["du"],
        "flirty": ["Schatz", "Süßer"],
        "playful": ["du Frechdachs"],
        "grateful": ["Schatz"],
        "teasing": ["du Neugieriger"],
    },
    "react": {
        "default": [
            "Schön, von dir zu hören!",
            "Du hast mir gerade den Tag versüßt.",
            "Ich liebe es, mit dir zu schreiben.",
        ],
        "flirty": [
            "Du weißt immer, wie du mich zum Erröten bringst.",
            "Mmm, ich hatte gehofft, dass du mir schreibst.",
            "Es fällt mir schwer, mich zu konzentrieren, wenn du mir so schreibst.",
        ],
        "playful": [
            "Okay, du hast mich zum Lachen gebracht.",
            "Schau mal, wer da ist!",
            "Du bist heute verspielt, oder?",
        ],
        "grateful": [
            "Danke, dass du da bist, das bedeutet mir viel.",
            "Ich bin dir so dankbar.",
            "Du bist wirklich der Beste.",
        ],
        "teasing": [
            "Du denkst, du kannst mir einfach so schreiben?",
            "Vorsicht, vielleicht bekommst du mehr, als du verlangst.",
            "Da ist heute aber jemand neugierig...",
        ],
    },
    "answer": {
        "question": [
            "Gute Frage, ich erzähl dir alles, wenn du in der Nähe bleibst.",
            "Ehrlich gesagt habe ich genau daran gerade gedacht.",
            "Gerade arbeite ich an einem neuen {niche}-Set und du siehst es als Erster.",
            "Mmm, ein bisschen Geheimnis muss sein.",
        ],
        "compliment": [
            "Hör auf, ich werde ganz rot!",
            "Aww, danke, das hat mich echt zum Lächeln gebracht.",
            "Du bist so süß, das habe ich heute gebraucht.",
        ],
        "greeting": [
            "Ich habe gerade an dich gedacht.",
            "Wie läuft dein Tag bisher?",
            "Perfektes Timing, ich bin gerade online gekommen.",
        ],
        "purchase": [
            "Vielen, vielen Dank, du verwöhnst mich!",
            "Du bist großartig, danke für deine Unterstützung.",
            "Ich hoffe, es gefällt dir so sehr, wie es mir Spaß gemacht hat.",
        ],
        "generic": [
            "Das gefällt mir.",
            "Erzähl mir mehr, ich bin ganz Ohr.",
            "Wie lieb, dass du mir das erzählst.",
            "Ich mag, wie du denkst.",
        ],
    },
    "ask": [
        "Was hast du heute Abend vor?",
        "Wie läuft dein Tag?",
        "Was möchtest du als Nächstes von mir sehen?",
        "Woran denkst du gerade?",
    ],
    "close": ["Bis bald.", "Lass bald wieder von dir hören.", "Ich freu mich schon auf deine Nachricht.", "Küsschen."],
    "vip": ["Du gehörst echt zu meinen Lieblingen.", "Das Beste hebe ich immer für dich auf."],
    "tease": [
        "Ich habe gerade ein neues {niche}-Set fertig und ich glaube, du wirst es lieben.",
        "Mein neuer {niche}-Content ist fertig und ich habe zuerst an dich gedacht.",
        "Ich habe etwas Besonderes für dich.",
        "Ich habe etwas Neues gemacht und konnte es kaum erwarten, es dir zu zeigen.",
    ],
    "cta_fan": [
        "Schau in deine DMs.",
        "Schalte es jetzt frei, bevor es weg ist.",
        "Antworte mir und ich schicke es dir.",
        "Sag mir, ob du das ganze Set willst.",
    ],
    "cta_public": [
        "Link in der Bio.",
        "Das ganze Set wartet auf dich, Link in der Bio.",
        "Folge mir für mehr.",
        "Tipp auf den Link in meiner Bio für den Rest.",
    ],
    "hook": [
        "Neuer Post!",
        "Rate mal, wer zurück ist.",
        "Ich konnte es kaum erwarten, das zu teilen.",
        "Ganz frisch, nur für dich.",
        "Dieser hier ist besonders.",
    ],
    "caption": [
        "Mein neues {niche}-Set ist endlich da.",
        "Ein kleiner {niche}-Moment für deinen Tag.",
        "Eine ganze Woche für dieses {niche}-Shooting.",
        "Golden Hour und gute Vibes.",
        "Heute fühle ich mich einfach gut.",
    ],
    "ideas": [
        (
            "{niche} hinter den Kulissen",
            "Zeig einen kurzen Blick hinter die Kulissen deiner {niche}-Routine und lade Fans zu Fragen ein.",
        ),
        (
            "{niche}-Umfrage für Fans",
            "Lass deine Fans über dein nächstes {niche}-Set abstimmen und zeig den Gewinner exklusiv.",
        ),
        ("{niche}-Countdown zum Wochenende", "Poste jeden Tag eine {niche}-Vorschau bis zum Release am Wochenende."),
        ("Frag mich alles", "Beantworte die Lieblingsfragen deiner Fans in einem entspannten, persönlichen Post."),
        ("Fan-Favoriten", "Teile ein beliebtes Set erneut mit neuer Caption und einem zeitlich begrenzten Bundle."),
    ],
    "hashtags": ["neuerpost", "exklusiv", "contentcreatorin", "gutelaune", "neuheit"],
}

_IT: dict[str, Any] = {
    "greet_named": ["Ciao {name}!", "Ehi {name}!", "Ciao ciao {name}!"],
    "greet_pet": ["Ciao {pet}!", "Ehi {pet}!"],
    "pet": {
        "default": ["tesoro"],
        "flirty": ["tesoro", "amore"],
        "playful": ["birbante"],
        "teasing": ["curiosone"],
    },
    "react": {
        "default": ["Che bello sentirti!", "Mi hai appena migliorato la giornata.", "Adoro chiacchierare con te."],
        "flirty": [
            "Sai sempre come farmi arrossire.",
            "Mmm, speravo proprio che mi scrivessi.",
            "È difficile concentrarmi quando mi scrivi così.",
        ],
        "playful": ["Ok, mi hai fatto ridere.", "Guarda chi si vede!", "Oggi sei in vena di giocare, eh?"],
        "grateful": [
            "Grazie di esserci, significa tanto per me.",
            "Te ne sono davvero riconoscente.",
            "Sei il migliore, davvero.",
        ],
        "teasing": [
            "Pensi di potermi scrivere così?",
            "Attento, potresti ricevere più di quello che chiedi.",
            "Qualcuno è curioso oggi...",
        ],
    },
    "answer": {
        "question": [
            "Bella domanda, ti racconto tutto se resti nei paraggi.",
            "Sinceramente, ci stavo pensando proprio adesso.",
            "In questo momento sto preparando un nuovo set {niche} e sarai il primo a vederlo.",
            "Mmm, lasciami un po' di mistero.",
        ],
        "compliment": [
            "Smettila, mi fai arrossire!",
            "Oh grazie, mi hai fatto sorridere.",
            "Sei dolcissimo, ne avevo bisogno oggi.",
        ],
        "greeting": [
            "Stavo proprio pensando a te.",
            "Come sta andando la tua giornata?",
            "Tempismo perfetto, ho appena acceso il telefono.",
        ],
        "purchase": [
            "Grazie mille, mi vizi troppo!",
            "Sei fantastico, grazie per il supporto.",
            "Spero che ti piaccia quanto è piaciuto a me crearlo.",
        ],
        "generic": [
            "Mi piace tantissimo.",
            "Raccontami di più, ti ascolto.",
            "Che dolce a raccontarmelo.",
            "Mi piace come ragioni.",
        ],
    },
    "ask": [
        "Che programmi hai stasera?",
        "Come va la tua giornata?",
        "Cosa ti piacerebbe vedere da me la prossima volta?",
        "A cosa stai pensando?",
    ],
    "close": ["A presto.", "Non sparire.", "Non vedo l'ora di sentirti ancora.", "Baci."],
    "vip": ["Sei davvero uno dei miei preferiti.", "Tengo sempre il meglio per te."],
    "tease": [
        "Ho appena finito un nuovo set {niche} e credo che ti piacerà tantissimo.",
        "Il mio nuovo contenuto {niche} è pronto e ho pensato subito a te.",
        "Ho qualcosa di speciale che ti aspetta.",
        "Ho creato qualcosa di nuovo e non vedevo l'ora di mostrartelo.",
    ],
    "cta_fan": [
        "Controlla i tuoi messaggi privati.",
        "Sbloccalo ora prima che sparisca.",
        "Rispondimi e te lo mando.",
        "Dimmi se vuoi il set completo.",
    ],
    "cta_public": [
        "Link in bio.",
        "Il set completo ti aspetta, link in bio.",
        "Seguimi per altro.",
        "Tocca il link nella mia bio per il resto.",
    ],
    "hook": [
        "Nuovo post!",
        "Indovina chi c'è.",
        "Non vedevo l'ora di condividerlo.",
        "Appena uscito, solo per te.",
        "Questo è speciale.",
    ],
    "caption": [
        "Il mio nuovo set {niche} è finalmente qui.",
        "Un piccolo momento {niche} per illuminarti la giornata.",
        "Ho passato tutta la settimana su questo shooting {niche}.",
        "Golden hour e buone vibes.",
        "Oggi mi sento benissimo.",
    ],
    "ideas": [
        (
            "Dietro le quinte {niche}",
            "Mostra un rapido dietro le quinte della tua routine {niche} e invita i fan a fare domande.",
        ),
        (
            "Sondaggio {niche} per i fan",
            "Fai votare ai fan il tuo prossimo set {niche} e svela il vincitore con un post esclusivo.",
        ),
        ("Conto alla rovescia {niche}", "Pubblica un'anteprima {niche} al giorno fino all'uscita del weekend."),
        ("Chiedimi tutto", "Rispondi alle domande preferite dei fan in un post rilassato e personale."),
        ("I preferiti dei fan", "Ripubblica un set amato dai fan con una nuova didascalia e un'offerta a tempo."),
    ],
    "hashtags": ["nuovopost", "esclusivo", "contentcreatoritalia", "buonevibes", "novita"],
}

_PT: dict[str, Any] = {
    "greet_named": ["Oi {name}!", "Olá {name}!", "Oiê {name}!"],
    "greet_pet": ["Oi, {pet}!", "Olá, {pet}!"],
    "pet": {
        "default": ["amor"],
        "flirty": ["amor", "gato"],
        "playful": ["sapeca"],
        "teasing": ["curioso"],
    },
    "react": {
        "default": ["Que bom ter notícias suas!", "Você acabou de fazer o meu dia.", "Eu adoro conversar com você."],
        "flirty": [
            "Você sempre sabe como me fazer corar.",
            "Hmm, eu estava torcendo para você me mandar mensagem.",
            "Fica difícil me concentrar quando você me escreve assim.",
        ],
        "playful": ["Ok, você me fez rir.", "Olha só quem apareceu!", "Hoje você está brincalhão, hein?"],
        "grateful": [
            "Obrigada por estar aqui, isso significa muito para mim.",
            "Sou muito grata por você.",
            "Você é demais, de verdade.",
        ],
        "teasing": [
            "Você acha que pode me mandar mensagem assim?",
            "Cuidado, você pode receber mais do que pediu.",
            "Alguém está curioso hoje...",
        ],
    },
    "answer": {
        "question": [
            "Boa pergunta, te conto tudo se você ficar por perto.",
            "Sinceramente, eu estava pensando nisso agora mesmo.",
            "Agora mesmo estou preparando um novo ensaio de {niche} e você vai ser o primeiro a ver.",
            "Hmm, deixa eu guardar um pouco de mistério.",
        ],
        "compliment": [
            "Para, você está me deixando sem graça!",
            "Own, obrigada, você me fez sorrir.",
            "Você é um amor, eu precisava disso hoje.",
        ],
        "greeting": [
            "Eu estava pensando em você agora mesmo.",
            "Como está sendo o seu dia?",
            "Chegou na hora certa, acabei de entrar.",
        ],
        "purchase": [
            "Muito obrigada, você me mima demais!",
            "Você é incrível, obrigada pelo apoio.",
            "Espero que você ame tanto quanto eu amei fazer.",
        ],
        "generic": [
            "Amei isso.",
            "Me conta mais, sou toda ouvidos.",
            "Que fofo você me contar.",
            "Gosto do jeito que você pensa.",
        ],
    },
    "ask": [
        "O que você vai fazer hoje à noite?",
        "Como está o seu dia?",
        "O que você quer ver de mim na próxima?",
        "No que você está pensando?",
    ],
    "close": ["Até logo.", "Não some.", "Mal posso esperar para falar com você de novo.", "Beijos."],
    "vip": ["Você é um dos meus favoritos, de verdade.", "Eu sempre guardo o melhor para você."],
    "tease": [
        "Acabei de terminar um novo ensaio de {niche} e acho que você vai amar.",
        "Meu novo conteúdo de {niche} está pronto e pensei em você primeiro.",
        "Tenho algo especial esperando por você.",
        "Fiz uma coisa nova e não via a hora de te mostrar.",
    ],
    "cta_fan": [
        "Confere o seu direct.",
        "Desbloqueie agora antes que acabe.",
        "Me responde que eu te mando.",
        "Me diz se você quer o ensaio completo.",
    ],
    "cta_public": [
        "Link na bio.",
        "O ensaio completo está te esperando, link na bio.",
        "Me segue para ver mais.",
        "Toque no link da minha bio para ver o resto.",
    ],
    "hook": [
        "Post novo!",
        "Adivinha quem voltou.",
        "Não via a hora de compartilhar esse.",
        "Fresquinho, só para você.",
        "Esse é especial.",
    ],
    "caption": [
        "Meu novo ensaio de {niche} finalmente chegou.",
        "Um momento de {niche} para alegrar o seu dia.",
        "Passei a semana toda nesse ensaio de {niche}.",
        "Golden hour e boas vibes.",
        "Hoje eu estou me sentindo incrível.",
    ],
    "ideas": [
        (
            "Bastidores de {niche}",
            "Mostre rapidinho os bastidores da sua rotina de {niche} e convide os fãs a fazer perguntas.",
        ),
        (
            "Enquete de {niche} dos fãs",
            "Deixe os fãs votarem no seu próximo ensaio de {niche} e revele o vencedor em um post exclusivo.",
        ),
        ("Contagem regressiva de {niche}", "Poste uma prévia de {niche} por dia até o lançamento do fim de semana."),
        ("Me pergunte qualquer coisa", "Responda as perguntas favoritas dos fãs em um post leve e pessoal."),
        (
            "Favoritos dos fãs",
            "Reposte um ensaio favorito dos fãs com uma legenda nova e um pacote por tempo limitado.",
        ),
    ],
    "hashtags": ["postnovo", "exclusivo", "criadoradeconteudo", "boasvibes", "novidade"],
}

_NL: dict[str, Any] = {
    "greet_named": ["Hoi {name}!", "Hallo {name}!", "Hee {name}!"],
    "greet_pet": ["Hoi {pet}!", "Hallo {pet}!"],
    "pet": {"default": ["jij", "schat"]},
    "react": {
        "default": [
            "Wat leuk om van je te horen!",
            "Je maakt mijn dag weer goed.",
            "Ik vind het altijd fijn om met je te kletsen.",
        ],
        "flirty": ["Jij weet altijd hoe je me moet laten blozen.", "Mmm, ik hoopte al dat je me zou appen."],
    },
    "answer": {
        "question": [
            "Goeie vraag, ik vertel je alles als je in de buurt blijft.",
            "Eerlijk gezegd zat ik daar net aan te denken.",
            "Ik werk nu aan een nieuwe {niche}-set en jij ziet hem als eerste.",
        ],
        "compliment": ["Stop, ik word helemaal rood!", "Aww, dankjewel, daar word ik echt blij van."],
        "greeting": ["Ik zat net aan je te denken.", "Hoe gaat je dag tot nu toe?"],
        "purchase": ["Heel erg bedankt, je verwent me!", "Je bent geweldig, bedankt voor je steun."],
        "generic": ["Dat vind ik leuk.", "Vertel me meer, ik ben een en al oor.", "Ik hou van hoe jij denkt."],
    },
    "ask": ["Wat ga je vanavond doen?", "Hoe gaat het met je dag?", "Wat wil je hierna van me zien?"],
    "close": ["Tot snel.", "Kusjes.", "Ik kijk uit naar je volgende bericht."],
    "vip": ["Jij bent echt een van mijn favorieten."],
    "tease": [
        "Ik heb net een nieuwe {niche}-set af en ik denk dat je hem geweldig vindt.",
        "Ik heb iets speciaals voor je klaarstaan.",
    ],
    "cta_fan": [
        "Check je DM's.",
        "Ontgrendel het nu voordat het weg is.",
        "Stuur me een berichtje en ik stuur het je.",
    ],
    "cta_public": ["Link in bio.", "Volg me voor meer."],
    "hook": ["Nieuwe post!", "Raad eens wie er terug is.", "Deze is speciaal."],
    "caption": [
        "Mijn nieuwe {niche}-set is eindelijk hier.",
        "Een klein {niche}-momentje om je dag op te fleuren.",
        "Golden hour en goede vibes.",
    ],
    "ideas": [
        (
            "{niche} achter de schermen",
            "Laat kort zien hoe je {niche}-routine eruitziet en nodig fans uit om vragen te stellen.",
        ),
        ("{niche}-poll voor fans", "Laat fans stemmen op je volgende {niche}-set en onthul de winnaar exclusief."),
        ("Vraag me alles", "Beantwoord de favoriete vragen van je fans in een ontspannen, persoonlijke post."),
    ],
    "hashtags": ["nieuwepost", "exclusief", "contentcreator", "goedevibes"],
}

_PL: dict[str, Any] = {
    "greet_named": ["Hej {name}!", "Cześć {name}!", "Siema {name}!"],
    "greet_pet": ["Hej {pet}!", "Cześć {pet}!"],
    "pet": {"default": ["kochanie"]},
    "react": {
        "default": ["Jak miło cię słyszeć!", "Właśnie poprawiłeś mi dzień.", "Uwielbiam z tobą pisać."],
        "flirty": [
            "Zawsze wiesz, jak sprawić, żebym się zarumieniła.",
            "Mmm, miałam nadzieję, że do mnie napiszesz.",
        ],
    },
    "answer": {
        "question": [
            "Dobre pytanie, opowiem ci wszystko, jeśli zostaniesz w pobliżu.",
            "Szczerze mówiąc, właśnie o tym myślałam.",
            "Teraz przygotowuję nową sesję {niche} i zobaczysz ją jako pierwszy.",
        ],
        "compliment": ["Przestań, bo się rumienię!", "Dziękuję, sprawiłeś, że się uśmiechnęłam."],
        "greeting": ["Właśnie o tobie myślałam.", "Jak ci mija dzień?"],
        "purchase": ["Dziękuję bardzo, rozpieszczasz mnie!", "Jesteś niesamowity, dziękuję za wsparcie."],
        "generic": ["Uwielbiam to.", "Opowiedz mi więcej, zamieniam się w słuch.", "Podoba mi się, jak myślisz."],
    },
    "ask": ["Co robisz dziś wieczorem?", "Jak ci mija dzień?", "Co chciałbyś zobaczyć ode mnie następnym razem?"],
    "close": ["Do usłyszenia.", "Buziaki.", "Nie mogę się doczekać twojej wiadomości."],
    "vip": ["Naprawdę jesteś jednym z moich ulubionych."],
    "tease": ["Właśnie skończyłam nową sesję {niche} i myślę, że ci się spodoba.", "Mam dla ciebie coś wyjątkowego."],
    "cta_fan": ["Sprawdź wiadomości prywatne.", "Odblokuj teraz, zanim zniknie.", "Odpisz, a ci to wyślę."],
    "cta_public": ["Link w bio.", "Obserwuj, żeby zobaczyć więcej."],
    "hook": ["Nowy post!", "Zgadnij, kto wrócił.", "Ten jest wyjątkowy."],
    "caption": [
        "Moja nowa sesja {niche} wreszcie jest.",
        "Mała chwila {niche} na poprawę dnia.",
        "Złota godzina i dobre wibracje.",
    ],
    "ideas": [
        ("{niche} za kulisami", "Pokaż krótko kulisy swojej rutyny {niche} i zaproś fanów do zadawania pytań."),
        ("Ankieta {niche} dla fanów", "Pozwól fanom zagłosować na następną sesję {niche} i ogłoś zwycięzcę."),
        ("Zapytaj mnie o wszystko", "Odpowiedz na ulubione pytania fanów w luźnym, osobistym poście."),
    ],
    "hashtags": ["nowypost", "ekskluzywne", "tworczyni", "dobrewibracje"],
}

_JA: dict[str, Any] = {
    "sep": "",
    "greet_named": ["{name}さん、こんにちは！", "{name}さん、やっほー！"],
    "greet_pet": ["やっほー！", "こんにちは！"],
    "pet": {"default": ["あなた"]},
    "react": {
        "default": ["連絡くれてうれしい！", "今日いちばんうれしいメッセージかも。", "あなたとおしゃべりするの大好き。"],
    },
    "answer": {
        "question": [
            "いい質問だね、そばにいてくれたら全部教えるね。",
            "正直、ちょうどそのこと考えてたの。",
            "いま新しい{niche}の撮影を準備中で、いちばん最初に見せるね。",
        ],
        "compliment": ["もう、照れちゃう！", "ありがとう、すごく笑顔になれた。"],
        "greeting": ["ちょうどあなたのこと考えてたよ。", "今日はどんな一日？"],
        "purchase": ["本当にありがとう、甘やかしすぎだよ！", "いつも応援ありがとう。"],
        "generic": ["それ好き。", "もっと聞かせて。", "その考え方、好きだな。"],
    },
    "ask": ["今夜は何してるの？", "今日はどうだった？", "次はどんなの見たい？"],
    "close": ["またね。", "また話そうね。"],
    "vip": ["あなたは本当に特別なファンだよ。"],
    "tease": [
        "新しい{niche}のセットができたの、きっと気に入ってくれると思う。",
        "あなたのために特別なものを用意したよ。",
    ],
    "cta_fan": ["DMをチェックしてね。", "なくなる前に今すぐアンロックしてね。"],
    "cta_public": ["リンクはプロフィールから。", "もっと見たい人はフォローしてね。"],
    "hook": ["新しい投稿だよ！", "お待たせ！"],
    "caption": ["新しい{niche}のセット、やっと公開！", "{niche}でちょっと癒されてね。", "ゴールデンアワーといい気分。"],
    "ideas": [
        ("{niche}の舞台裏", "{niche}のルーティンの舞台裏を少し見せて、ファンから質問を募集しよう。"),
        ("ファン投票：次の{niche}", "次の{niche}のセットをファン投票で決めて、限定投稿で結果を発表しよう。"),
        ("なんでも質問して", "ファンからの人気の質問に、リラックスした投稿で答えよう。"),
    ],
    "hashtags": ["新作", "限定", "クリエイター"],
}

PHRASE_BANKS: dict[str, dict[str, Any]] = {
    "en": _EN,
    "es": _ES,
    "fr": _FR,
    "de": _DE,
    "it": _IT,
    "pt": _PT,
    "nl": _NL,
    "pl": _PL,
    "ja": _JA,
}

_HASHTAG_SUFFIXES = ("life", "lover", "daily", "vibes", "creator", "inspo", "community", "goals")
_PUBLIC_PLATFORMS = frozenset(
    {"instagram", "tiktok", "twitter", "x", "reddit", "threads", "snapchat", "youtube", "facebook", "bluesky"}
)
_FAN_PLATFORMS = frozenset(
    {"onlyfans", "fansly", "fanvue", "patreon", "mym", "loyalfans", "manyvids", "fancentro", "justforfans"}
)
_TASK_ALIASES = {
    "reply": "reply",
    "replies": "reply",
    "chat": "reply",
    "answer": "reply",
    "message": "message",
    "messages": "message",
    "dm": "message",
    "mass_message": "message",
    "ppv": "message",
    "caption": "caption",
    "captions": "caption",
    "hashtags": "hashtags",
    "hashtag": "hashtags",
    "tags": "hashtags",
    "idea": "idea",
    "ideas": "idea",
}
_TONE_ALIASES = {
    "flirty": "flirty",
    "flirt": "flirty",
    "flirtatious": "flirty",
    "romantic": "flirty",
    "sexy": "flirty",
    "seductive": "flirty",
    "sultry": "flirty",
    "friendly": "friendly",
    "sweet": "friendly",
    "warm": "friendly",
    "casual": "friendly",
    "kind": "friendly",
    "professional": "friendly",
    "playful": "playful",
    "fun": "playful",
    "funny": "playful",
    "silly": "playful",
    "bubbly": "playful",
    "goofy": "playful",
    "grateful": "grateful",
    "thankful": "grateful",
    "appreciative": "grateful",
    "teasing": "teasing",
    "tease": "teasing",
    "bratty": "teasing",
    "brat": "teasing",
    "cheeky": "teasing",
    "mysterious": "teasing",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Fan-message categories: whole lowercase tokens, plus substrings for scripts without spaces.
_KIND_WORDS = {
    "purchase": _words(
        "tip tipped bought unlocked purchased paid ppv propina compré pagué pourboire acheté payé "
        "trinkgeld gekauft bezahlt mancia comprato pagato gorjeta comprei paguei fooi gekocht betaald napiwek "
        "kupiłem kupiłam zapłaciłem"
    ),
    "compliment": _words(
        "beautiful gorgeous hot sexy cute pretty stunning amazing lovely perfect guapa hermosa linda preciosa bonita "
        "belle magnifique jolie sublime canon schön hübsch wunderschön heiß süß bella bellissima stupenda carina "
        "gostosa maravilhosa mooi prachtig knap piękna śliczna cudowna"
    ),
    "greeting": _words(
        "hi hey hello heya hiya yo morning evening hola buenas salut bonjour bonsoir coucou hallo moin servus ciao "
        "salve olá oi hoi hee cześć hej siema"
    ),
}
_KIND_SUBSTRINGS = {
    "purchase": ("チップ", "買った", "購入"),
    "compliment": ("かわいい", "可愛い", "きれい", "綺麗", "素敵"),
    "greeting": ("こんにちは", "こんばんは", "おはよう", "やっほー"),
}
_QUESTION_STARTS = _words(
    "what when where why how who which do does did are is can could would will wanna "
    "qué cómo cuándo dónde por quoi comment quand où est wie wann wo warum kannst bist cosa quando "
    "dove perché o como quando onde wat hoe waar waarom co jak kiedy gdzie dlaczego"
)
_TOPIC_STOPWORDS = _words(
    "day life time self own way mind head heart phone name god bad best first last new old life's friend "
    "the a an it this that these those"
)

_EMOJI_RE = re.compile(
    "(?:[\U0001f1e6-\U0001f1ff]{2})"
    "|(?:[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\u2763\u2764\u2665]"
    "\ufe0f?[\U0001f3fb-\U0001f3ff]?"
    "(?:\u200d[\U0001f300-\U0001faff\u2600-\u27bf\u2640\u2642\u2764]\ufe0f?[\U0001f3fb-\U0001f3ff]?)*)"
)
_CONTROL_RE = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES_RE = re.compile(r"\s+")
_HASHTAG_RE = re.compile(r"#(\w{2,40})")
_TAG_LIST_RE = re.compile(r"(?i)\b(?:tags|hashtags|keywords|topics)\s*[:=]\s*([^\n]{1,300})")
_MY_NOUN_RE = re.compile(r"(?i)\bmy\s+([a-z]{3,20})\b")
_WORD_RE = re.compile(r"\w+")
_DELTA_RE = re.compile(r"\S+?(?:[。、！？]+|\s+|$)|\s+")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any, limit: int = 200) -> str:
    """A one-line, control-free string from any scalar (other types give "")."""
    if value is None or isinstance(value, bool):
        return ""
    if not isinstance(value, str):
        if isinstance(value, int | float | Decimal):
            value = str(value)
        else:
            return ""
    value = _SPACES_RE.sub(" ", _CONTROL_RE.sub(" ", value[: limit * 4])).strip()
    if len(value) > limit:
        cut = value[:limit]
        space = cut.rfind(" ")
        value = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")
    return value


def _str_list(value: Any, *, limit: int = 50, item_limit: int = 1000, split_commas: bool = False) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",") if split_commas else [value]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        return []
    out = []
    for item in items[:limit]:
        if isinstance(item, str):
            text = _CONTROL_RE.sub(" ", item[:item_limit]).strip()
            if text:
                out.append(text)
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip()[:9])
    return None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return result if result == result and abs(result) != float("inf") else 0.0


def _cap_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def _language(value: Any) -> str:
    code = _text(value, 20).lower().replace("_", "-").split("-")[0]
    return code if code in PHRASE_BANKS else "en"


def _seed(request: AIRequest, ctx: Mapping[str, Any]) -> int:
    messages = [[str(role), str(content)] for role, content in _messages(request)]
    payload = {
        "f": str(request.feature),
        "j": bool(request.json_mode),
        "m": messages,
        "c": {key: ctx[key] for key in _SEED_KEYS if key in ctx},
    }
    try:
        blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # non-string keys of mixed types, cycles
        blob = repr(payload)
    digest = hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _messages(request: AIRequest) -> list[tuple[str, str]]:
    out = []
    for message in request.messages or ():
        if isinstance(message, Mapping):
            role, content = message.get("role", ""), message.get("content", "")
        else:
            role, content = getattr(message, "role", ""), getattr(message, "content", "")
        out.append((str(role), content if isinstance(content, str) else str(content or "")))
    return out


class _Avoid:
    """Whole-word, case-insensitive removal of avoided words and topic phrases."""

    def __init__(self, terms: tuple[str, ...]) -> None:
        # hashtags are compound words, so terms of 3+ characters are also refused inside them
        self.compact = tuple(c for c in (re.sub(r"\W", "", t.lower()) for t in terms) if len(c) >= 3)
        if terms:
            parts = sorted({r"\s+".join(re.escape(piece) for piece in t.split()) for t in terms}, key=len, reverse=True)
            self.regex: re.Pattern[str] | None = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)
        else:
            self.regex = None

    def hits(self, text: str) -> bool:
        return bool(self.regex and self.regex.search(text))

    def tag_ok(self, tag: str) -> bool:
        return not any(term in tag for term in self.compact) and not self.hits(tag)

    def scrub(self, text: str) -> str:
        if not self.regex:
            return text
        for _ in range(4):
            cleaned = self.regex.sub("", text)
            if cleaned == text:
                break
            text = _tidy(cleaned)
        return text


@lru_cache(maxsize=512)
def _avoid_matcher(terms: tuple[str, ...]) -> _Avoid:
    return _Avoid(terms)


def _tidy(text: str) -> str:
    """Repair spacing and punctuation left behind after removing words."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([,.!?;:…。、！？])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r",\s*([.!?])", r"\1", text)
    text = re.sub(r"(^|[.!?]\s+)[,;:]\s*", r"\1", text)
    text = re.sub(r"[“\"]\s*[”\"]", "", text)
    text = re.sub(r"(?m)^[ \t]+|[ \t]+$", "", text)
    return text.strip()


@lru_cache(maxsize=512)
def _voice_profile(samples: tuple[str, ...], voice: str) -> tuple[tuple[str, ...], bool, bool]:
    """(emoji by frequency, lowercase-only, avoids exclamation marks) from the creator's samples."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    position = 0
    for text in (*samples, voice):
        for match in _EMOJI_RE.finditer(text[:2000]):
            emoji = match.group(0)
            counts[emoji] += 1
            first.setdefault(emoji, position)
            position += 1
    emoji = tuple(sorted(counts, key=lambda e: (-counts[e], first[e]))[:6])
    cased = [s for s in samples if s.lower() != s.upper()]
    lowercase = bool(cased) and all(s == s.lower() for s in cased)
    no_exclaim = bool(cased) and not any("!" in s or "！" in s for s in samples)
    return emoji, lowercase, no_exclaim


def _fan_kind(message: str) -> str:
    lowered = message.lower()[:2000]
    tokens = _WORD_RE.findall(lowered)
    token_set = set(tokens)
    for kind in ("purchase", "compliment"):
        if token_set & _KIND_WORDS[kind] or any(s in lowered for s in _KIND_SUBSTRINGS[kind]):
            return kind
    if "?" in lowered or "？" in lowered or (tokens and tokens[0] in _QUESTION_STARTS and len(tokens) > 2):
        return "question"
    if tokens and (tokens[0] in _KIND_WORDS["greeting"] and len(tokens) <= 5):
        return "greeting"
    if any(s in lowered for s in _KIND_SUBSTRINGS["greeting"]):
        return "greeting"
    return "generic"


def _normalise_tag(raw: str) -> str:
    tag = re.sub(r"\W+", "", raw.lower()).strip("_")
    if len(tag) < 2 or len(tag) > 40 or tag.isdigit():
        return ""
    return tag


# --------------------------------------------------------------------------------------------
# The composer: one per request, holding the parsed context and the seeded RNG.
# --------------------------------------------------------------------------------------------


class _Composer:
    def __init__(self, request: AIRequest) -> None:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        creator = _as_dict(ctx.get("creator"))

        def option(key: str) -> Any:
            value = ctx.get(key)
            return value if value is not None else creator.get(key)

        self.rng = random.Random(_seed(request, ctx))
        self.lang = _language(option("language"))
        self.bank = PHRASE_BANKS[self.lang]
        self.sep = self.bank.get("sep", " ")

        terms = _str_list(creator.get("avoid_words"), limit=200, item_limit=100, split_commas=True)
        terms += _str_list(ctx.get("avoid_words"), limit=200, item_limit=100, split_commas=True)
        terms += _str_list(creator.get("avoid_topics"), limit=100, item_limit=100, split_commas=True)
        terms += _str_list(ctx.get("avoid_topics"), limit=100, item_limit=100, split_commas=True)
        self.avoid = _avoid_matcher(tuple(sorted({t.strip() for t in terms if t.strip()})))

        samples = _str_list(option("sample_texts"), limit=30, item_limit=2000)
        voice = _text(option("voice"), 500)
        persona = _text(option("persona"), 500)
        self.emoji, self.lowercase, self.no_exclaim = _voice_profile(tuple(samples), voice)
        self.emoji = tuple(e for e in self.emoji if not self.avoid.hits(e))

        self.tone = self._tone(option("tone"), f"{voice} {persona}")
        niche = option("niche")
        if isinstance(niche, list | tuple):
            niche = next((n for n in niche if isinstance(n, str) and n.strip()), "")
        self.niche = self._clean_dynamic(_text(niche, 40))

        fan = _as_dict(ctx.get("fan")) or _as_dict(creator.get("fan"))
        self.name = self._clean_dynamic(_text(fan.get("display_name"), 40))
        self.vip = _float(fan.get("total_spent")) >= 100
        self.platform = _text(option("platform"), 40).lower()
        self.count = _int(ctx.get("count"))
        self.task = self._task(ctx.get("task"), request.feature)

        messages = _messages(request)
        user_texts = [content for role, content in messages if role == "user"]
        self.last_user = user_texts[-1][:4000] if user_texts else ""
        self.prompt = "\n".join(text[:4000] for text in user_texts[-3:])
        self.kind = _fan_kind(self.last_user) if self.last_user.strip() else "greeting"
        self.topic = self._topic(self.last_user) if self.lang == "en" else ""
        self._idea: tuple[str, str] | None = None

    # -- context parsing ---------------------------------------------------------------------

    def _clean_dynamic(self, value: str) -> str:
        return "" if not value or self.avoid.hits(value) else value

    @staticmethod
    def _tone(value: Any, description: str) -> str:
        tone = _TONE_ALIASES.get(_text(value, 30).lower())
        if tone:
            return tone
        best = None
        lowered = description.lower()
        for word in _WORD_RE.findall(lowered):
            if word in _TONE_ALIASES:
                best = _TONE_ALIASES[word]
                break
        return best or "friendly"

    @staticmethod
    def _task(value: Any, feature: Any) -> str:
        task = _TASK_ALIASES.get(_text(value, 30).lower().replace("-", "_").replace(" ", "_"))
        if task:
            return task
        name = str(feature or "").lower()
        for needle, inferred in (
            ("hashtag", "hashtags"),
            ("idea", "idea"),
            ("caption", "caption"),
            ("message", "message"),
            ("reply", "reply"),
        ):
            if needle in name:
                return inferred
        return "reply"

    def _topic(self, message: str) -> str:
        for match in _MY_NOUN_RE.finditer(message[:1000]):
            noun = match.group(1).lower()
            if noun not in _TOPIC_STOPWORDS and not self.avoid.hits(noun):
                return f"your {noun}"[:MAX_ECHO_CHARS]
        return ""

    # -- phrase picking ----------------------------------------------------------------------

    def _options(self, key: str, sub: str | None = None) -> list[Any]:
        value = self.bank.get(key)
        if value is None:
            value = _EN[key]
        if sub is not None:
            table = value
            value = table.get(sub) or table.get("default")
            if not value:
                fallback = _EN[key]
                value = fallback.get(sub) or fallback["default"]
        return list(value)

    def _pick(self, key: str, sub: str | None = None, *, niche: float = 0.0) -> str:
        """A formatted phrase; with a niche, ``niche`` is the chance of forcing one that names it."""
        options = self._options(key, sub)
        with_niche = [o for o in options if "{niche}" in str(o)]
        without = [o for o in options if "{niche}" not in str(o)]
        if not self.niche:
            options = without or options
        elif with_niche and self.rng.random() < niche:
            options = with_niche
        clean = [o for o in options if not self.avoid.hits(str(o))]
        template = self.rng.choice(clean or options)
        return self._fill(template)

    def _fill(self, template: str) -> str:
        pets = self._options("pet", self.tone)
        pet = self.rng.choice([p for p in pets if not self.avoid.hits(p)] or pets)
        return template.format(name=self.name, pet=pet, niche=self.niche or "", topic=self.topic or "")

    def _join(self, parts: list[str], *, emoji: bool = True) -> str:
        parts = [p for p in parts if p]
        if emoji and self.emoji and parts:
            top = list(self.emoji[:4])
            # the creator's most frequent emoji is the likeliest; a second one is optional
            first = self.rng.choices(top, weights=(4, 2, 1, 1)[: len(top)])[0]
            chosen = [first]
            if len(top) > 1 and self.rng.random() < 0.35:
                chosen.append(self.rng.choice([e for e in top if e != first]))
            for index, symbol in enumerate(chosen):
                target = len(parts) - 1 if index == 0 else self.rng.randrange(len(parts))
                parts[target] = f"{parts[target]} {symbol}"
        return self.sep.join(parts)

    # -- generators (raw text; ``finish`` applies voice and avoid rules) ---------------------

    def greeting(self) -> str:
        return self._pick("greet_named") if self.name else self._pick("greet_pet")

    def reply(self) -> str:
        parts = []
        if self.name or self.rng.random() < 0.5:
            parts.append(self.greeting())
        kind = self.kind
        if kind == "generic" and self.topic and self.rng.random() < 0.6:
            body = self._pick("topic")
        elif kind in ("generic", "greeting") and self.rng.random() < 0.5:
            body = self._pick("react", self.tone)
        else:
            body = self._pick("answer", kind, niche=0.5)
        parts.append(body)
        if self.vip and len(parts) < 3 and self.rng.random() < 0.4:
            parts.append(self._pick("vip"))
        if len(parts) < 3 and self.rng.random() < 0.7:
            asked = body.rstrip().endswith(("?", "？"))
            parts.append(self._pick("close" if asked else self.rng.choice(("ask", "ask", "close"))))
        return self._join(parts[:3])

    def message(self) -> str:
        parts = [self.greeting(), self._pick("tease", niche=1.0)]
        if self.vip and self.rng.random() < 0.4:
            parts.append(self._pick("vip"))
        else:
            parts.append(self._pick(self.rng.choice(("cta_fan", "cta_fan", "ask"))))
        return self._join(parts[:3])

    def cta(self) -> str:
        if self.platform in _PUBLIC_PLATFORMS:
            return self._pick("cta_public")
        if self.platform in _FAN_PLATFORMS or self.task == "message":
            return self._pick("cta_fan")
        return self._pick(self.rng.choice(("cta_public", "cta_fan")))

    def caption(self) -> str:
        parts = []
        if self.rng.random() < 0.6:
            parts.append(self._pick("hook"))
        parts.append(self._pick("caption", niche=1.0))
        parts.append(self.cta())
        return self._join(parts)

    def question(self) -> str:
        return self._pick("ask")

    def _pick_idea(self) -> tuple[str, str]:
        options = self._options("ideas")
        with_niche = [o for o in options if "{niche}" in o[0] + o[1]]
        without = [o for o in options if "{niche}" not in o[0] + o[1]]
        if not self.niche:
            options = without or options
        elif with_niche and self.rng.random() < 0.8:
            options = with_niche
        clean = [o for o in options if not self.avoid.hits(o[0] + " " + o[1])]
        title, description = self.rng.choice(clean or options)
        return _cap_first(self._fill(title)), self._fill(description)

    def object_idea(self) -> tuple[str, str]:
        if self._idea is None:
            self._idea = self._pick_idea()
        return self._idea

    def idea(self) -> str:
        title, description = self._pick_idea()
        return f"{title}\n{description}"

    def hashtag_list(self, n: int) -> list[str]:
        n = max(1, min(MAX_HASHTAGS, n))
        candidates: list[str] = []
        prompt_tags = _HASHTAG_RE.findall(self.prompt)[:15]
        for match in _TAG_LIST_RE.finditer(self.prompt):
            prompt_tags += [t for t in re.split(r"[,;/|#]+", match.group(1)) if t.strip()][:15]
        candidates += prompt_tags[:20]
        words = [w for w in _WORD_RE.findall(self.niche.lower()) if len(w) >= 3]
        compact = "".join(_WORD_RE.findall(self.niche.lower()))
        pool: list[str] = []
        if compact:
            candidates.append(compact)
            candidates += words[:3]
            bases = [compact] if len(words) <= 1 else [compact, *words[:2]]
            pool += [base + suffix for base in bases for suffix in _HASHTAG_SUFFIXES]
        pool += list(self.bank.get("hashtags", ())) + ([] if self.lang == "en" else list(_EN["hashtags"]))
        self.rng.shuffle(pool)
        candidates += pool
        out: list[str] = []
        seen: set[str] = set()
        for raw in candidates:
            tag = _normalise_tag(raw)
            if tag and tag not in seen and self.avoid.tag_ok(tag):
                seen.add(tag)
                out.append(f"#{tag}")
                if len(out) == n:
                    return out
        bases = [b for b in (compact, "post", "creator", "daily", "new", "tag") if b and self.avoid.tag_ok(b)] or ["n"]
        index = 1
        while len(out) < n and index < 10_000:
            tag = f"{bases[index % len(bases)]}{index}"
            if tag not in seen and self.avoid.tag_ok(tag):
                seen.add(tag)
                out.append(f"#{tag}")
            index += 1
        return out

    def hashtags(self, n: int | None = None) -> str:
        return " ".join(self.hashtag_list(n if n is not None else (self.count or DEFAULT_HASHTAG_COUNT)))

    def main(self) -> str:
        if self.task == "hashtags":
            return self.hashtags()
        produce = {"reply": self.reply, "message": self.message, "caption": self.caption, "idea": self.idea}[self.task]
        blocks = max(1, min(MAX_ITEMS, self.count or 1))
        return "\n\n".join(self.finish(produce()) for _ in range(blocks))

    # -- voice and safety --------------------------------------------------------------------

    def finish(self, text: str) -> str:
        if self.no_exclaim:
            text = re.sub(r"\?!+", "?", text)
            text = re.sub(r"!+", ".", text).replace("！", "。").replace("¡", "")
        if self.lowercase:
            text = text.lower()
        text = self.avoid.scrub(text)
        return text if text.strip() else ""

    # -- JSON ------------------------------------------------------------------------------

    def json_text(self, example: Any) -> str:
        if isinstance(example, str):
            try:
                example = json.loads(example)
            except ValueError:
                example = None
        if isinstance(example, Mapping):
            value = self._json_object(example, 0)
        else:
            value = {"text": self.main() or self._safe_phrase()}
        return json.dumps(value, ensure_ascii=False)

    def _json_object(self, example: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        saved, self._idea = self._idea, None
        try:
            return {
                key if isinstance(key, str | int | float | bool) or key is None else str(key): self._json_value(
                    str(key), value, depth + 1
                )
                for key, value in example.items()
            }
        finally:
            self._idea = saved

    def _json_value(self, key: str, example: Any, depth: int) -> Any:
        if depth > 8:
            return example if isinstance(example, str | int | float | bool) or example is None else None
        if isinstance(example, bool):
            return self.rng.random() < 0.5
        if isinstance(example, int):
            return self._json_int(key, example)
        if isinstance(example, float):
            return self._json_float(key, example)
        if isinstance(example, Mapping):
            return self._json_object(example, depth)
        if isinstance(example, list | tuple):
            n = max(1, min(MAX_ITEMS, self.count or DEFAULT_JSON_LIST_ITEMS))
            element = example[0] if example else ""
            if isinstance(element, str):
                return self._string_items(key, n)
            return [self._json_value(key, element, depth + 1) for _ in range(n)]
        if example is None:
            return None
        return self._string_for(key) or self._safe_phrase()

    def _json_int(self, key: str, example: int) -> int:
        lowered = key.lower()
        if "count" in lowered and self.count:
            return self.count
        if "score" in lowered or "rating" in lowered:
            top = 10 if abs(example) <= 10 else 100
            return self.rng.randint(max(1, top // 2), top)
        if any(w in lowered for w in ("price", "amount", "usd", "cost", "tip")):
            return self.rng.randint(5, 50)
        top = max(10, abs(example) * 2)
        return self.rng.randint(0 if example >= 0 else -top, top)

    def _json_float(self, key: str, example: float) -> float:
        if 0.0 <= example <= 1.0:
            return round(self.rng.uniform(0.55, 0.95), 2)
        top = max(10.0, abs(example) * 2)
        value = round(self.rng.uniform(0.0 if example >= 0 else -top, top), 2)
        return float(value)

    def _key_kind(self, key: str) -> str:
        lowered = key.lower()
        for needles, kind in (
            (("hashtag", "tags"), "hashtags"),
            (("caption",), "caption"),
            (("title", "headline"), "title"),
            (("description", "desc", "summary", "explanation", "rationale", "why"), "description"),
            (("idea", "concept"), "idea"),
            (("question",), "question"),
            (("cta", "call_to_action", "action"), "cta"),
            (("greeting", "opener", "hello"), "greeting"),
            (("emoji",), "emoji"),
            (("tone", "mood"), "tone"),
            (("language", "lang", "locale"), "language"),
        ):
            if any(n in lowered for n in needles):
                return kind
        return "main"

    def _string_for(self, key: str, *, item: bool = False) -> str:
        kind = self._key_kind(key)
        if kind == "hashtags":
            return self.hashtags(1 if item else None)
        if kind == "title":
            return self.finish(self._pick_idea()[0] if item else self.object_idea()[0])
        if kind == "description":
            return self.finish(self._pick_idea()[1] if item else self.object_idea()[1])
        if kind == "idea":
            title, description = self._pick_idea()
            return self.finish(title if item else f"{title}: {description}")
        if kind == "emoji":
            symbols = list(self.emoji) or [e for e in self._options("emoji", self.tone) if not self.avoid.hits(e)]
            return self.rng.choice(symbols) if item or len(symbols) < 2 else " ".join(self.rng.sample(symbols, 2))
        if kind == "tone":
            return self.tone
        if kind == "language":
            return self.lang
        producer = {
            "caption": self.caption,
            "question": self.question,
            "cta": self.cta,
            "greeting": self.greeting,
        }.get(kind)
        if producer is None:
            if self.task == "hashtags":
                return self.hashtags()
            producer = {"reply": self.reply, "message": self.message, "caption": self.caption, "idea": self.idea}[
                self.task
            ]
        return self.finish(producer())

    def _string_items(self, key: str, n: int) -> list[str]:
        if self._key_kind(key) == "hashtags":
            return self.hashtag_list(n)
        items: list[str] = []
        for _ in range(n * 4):
            text = self._string_for(key, item=True) or self._safe_phrase()
            if text not in items:
                items.append(text)
                if len(items) == n:
                    break
        while len(items) < n:
            items.append(items[len(items) % max(1, len(items))] if items else self._safe_phrase())
        return items

    def _safe_phrase(self) -> str:
        for key in ("close", "ask"):
            for phrase in self._options(key):
                text = self.finish(phrase)
                if text:
                    return text
        return "…"

    def generate(self, json_mode: bool, example: Any) -> str:
        if json_mode:
            return self.json_text(example)
        return self.main() or self._safe_phrase()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def builtin_generate(request: AIRequest) -> str:
    """The deterministic text for ``request`` (valid JSON text when ``request.json_mode``)."""
    try:
        composer = _Composer(request)
        ctx = request.context if isinstance(request.context, Mapping) else {}
        return composer.generate(bool(request.json_mode), ctx.get("json_example"))
    except Exception:  # a bug must never break the last-resort provider
        logger.exception("builtin provider failed for feature %r; returning the safe fallback", request.feature)
        return _emergency_text(request)


def _emergency_text(request: AIRequest) -> str:
    text = "Thank you for your message, talk soon."
    try:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        if not request.json_mode:
            return text
        example = ctx.get("json_example")
        if isinstance(example, Mapping):
            defaults = {bool: False, int: 0, float: 0.0, str: text}
            value = {
                str(k): defaults.get(type(v), [] if isinstance(v, list | tuple) else None) for k, v in example.items()
            }
            return json.dumps(value, ensure_ascii=False)
    except Exception:
        logger.exception("builtin provider fallback failed")
    return json.dumps({"text": text}) if request.json_mode else text


def _input_tokens(request: AIRequest) -> int:
    contents = [content for _role, content in _messages(request)]
    return estimate_tokens((request.system or "") + "".join(contents))


def _deltas(text: str) -> list[str]:
    """Word-sized pieces (trailing whitespace attached) whose concatenation is exactly ``text``."""
    pieces = _DELTA_RE.findall(text)
    return pieces if "".join(pieces) == text else [text]


class BuiltinProvider(Provider):
    """Offline, deterministic provider; always available, never raises on valid input."""

    name = "builtin"
    kind = "builtin"
    models = (BUILTIN_MODEL,)

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name

    def _result(self, request: AIRequest, text: str, model: str) -> ProviderResult:
        usage = Usage(input_tokens=_input_tokens(request), output_tokens=estimate_tokens(text), cached_input_tokens=0)
        return ProviderResult(text=text, model=model or BUILTIN_MODEL, usage=usage, finish_reason="stop")

    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        return self._result(request, builtin_generate(request), model)

    async def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        text = builtin_generate(request)
        for index, piece in enumerate(_deltas(text)):
            yield piece
            if index % 16 == 15:
                await asyncio.sleep(0)  # let other tasks (and cancellation) in on long outputs
        yield self._result(request, text, model)
