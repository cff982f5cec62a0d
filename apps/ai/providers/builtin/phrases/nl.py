"""The built-in writer's nl phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
