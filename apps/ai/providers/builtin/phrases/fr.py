"""The built-in writer's fr phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
