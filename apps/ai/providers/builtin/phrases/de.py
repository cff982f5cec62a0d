"""The built-in writer's de phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
