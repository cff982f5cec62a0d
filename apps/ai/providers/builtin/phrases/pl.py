"""The built-in writer's pl phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
