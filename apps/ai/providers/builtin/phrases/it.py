"""The built-in writer's it phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
