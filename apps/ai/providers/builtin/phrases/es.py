"""The built-in writer's es phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
