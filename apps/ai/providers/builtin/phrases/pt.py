"""The built-in writer's pt phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
