"""The content studio: ContentGenerationService and the idea history's writes.

One request type at a time (message, idea, caption, hashtags, comprehensive), in the creator's
voice, through the AI gateway. The model is asked for JSON in a fixed shape (apps/studio/
prompts.py); an answer that does not parse or fit the shape is repaired, or asked for once more,
then reported. Every request (every fan field included) and every answer (tags and hashtags
included) goes through the safety policy (apps/safety/), and every answer through the agency's
moderation endpoint when it has one (apps/ai/moderation.py); the creator's do-not-say list is
filtered, then the answer regenerated once if anything had to be removed. Idea scores come
from the creator's own results (apps/studio/analytics/), never from the model.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.ai import gateway
from apps.ai.types import AIError, AIRequest, AIResponse, Message, StreamChunk, StreamComplete, StreamError
from apps.core.asyncdb import database_call
from apps.core.errors import ApplicationError
from apps.core.events import publish
from apps.core.jsonvalues import text_problem
from apps.studio import prompts
from apps.studio.models import Category, ContentIdea, Difficulty, Generation, GenerationType
from apps.studio.platforms import PLATFORMS, rules_for

TONES = ("playful", "flirty", "friendly", "teasing", "grateful", "mysterious", "confident")
MESSAGE_TYPES = ("check_in", "welcome", "ppv_offer", "re_engagement", "thank_you", "custom_request")
STRATEGIES = ("balanced", "trending", "niche")
MAX_IDEAS = 50
MAX_VARIATIONS = 5
IDEA_REPEAT_DAYS = 30
# The options a page or a websocket message may set (the API's schema lists the same ones).
OPTION_FIELDS = (
    "type", "platform", "tone", "message_type", "idea_count", "caption_length", "hashtag_count",
    "variations", "media_description", "goal", "strategy",
)  # fmt: skip
LIVE_CHECK_CHARS = 240  # how often (in characters) a streamed answer is checked against the hard rules


@dataclass
class StudioOptions:
    type: str
    platform: str = "onlyfans"
    tone: str = "playful"
    message_type: str = "check_in"
    idea_count: int = 5
    caption_length: str = "medium"
    hashtag_count: int = 10
    variations: int = 1
    media_description: str = ""
    goal: str = ""
    strategy: str = "balanced"
    fan: dict[str, Any] | None = None
    trend_hint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in {"trend_hint", "extra"}}
        return data


def _int(data: dict, name: str, default: int) -> int:
    value = data.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400 is an infinite float
        raise ApplicationError(f"{name.replace('_', ' ').capitalize()} must be a whole number.", field=name) from None


def _choice(data: dict, name: str, default: str) -> str:
    """A choice field's value as sent (checked against its choices by the caller): text only, since
    a websocket message may carry any JSON where the API's schema and the forms allow text."""
    value = data.get(name) or default
    if not isinstance(value, str):
        raise ApplicationError(f"{name.replace('_', ' ').capitalize()} must be one of its choices.", field=name)
    return value


def _text(data: dict, name: str) -> str:
    """A free-text field, stripped. NUL and unpaired surrogates (JSON's "\\ud800") are refused
    here as the HTTP paths' middleware and the API's schema refuse them: PostgreSQL cannot store
    them in the generation's options (apps/core/jsonvalues.py)."""
    value = str(data.get(name) or "").strip()
    problem = text_problem(value)
    if problem:
        raise ApplicationError(f"Text {problem}.", field=name)
    return value


def options_from(data: dict[str, Any], *, creator: Creator) -> StudioOptions:
    """Validated options, or an ApplicationError naming the field. No model is called before this."""
    kind = data.get("type")
    if kind not in GenerationType.values:
        raise ApplicationError(f"Choose what to generate: {', '.join(GenerationType.values)}.", field="type")
    platform = _choice(data, "platform", "onlyfans")
    if platform not in PLATFORMS:
        raise ApplicationError(f"Unknown platform “{platform}”.", field="platform")
    options = StudioOptions(
        type=kind,
        platform=platform,
        tone=_choice(data, "tone", "playful"),
        message_type=_choice(data, "message_type", "check_in"),
        idea_count=_int(data, "idea_count", 5),
        caption_length=_choice(data, "caption_length", "medium"),
        hashtag_count=_int(data, "hashtag_count", 10),
        variations=_int(data, "variations", 1),
        media_description=_text(data, "media_description"),
        goal=_text(data, "goal"),
        strategy=_choice(data, "strategy", "balanced"),
        fan=data.get("fan") or None,
    )
    rules = rules_for(platform)
    if options.tone not in TONES:
        raise ApplicationError(f"Choose a tone: {', '.join(TONES)}.", field="tone")
    if options.message_type not in MESSAGE_TYPES:
        raise ApplicationError(f"Choose a message type: {', '.join(MESSAGE_TYPES)}.", field="message_type")
    if options.strategy not in STRATEGIES:
        raise ApplicationError(f"Choose a hashtag strategy: {', '.join(STRATEGIES)}.", field="strategy")
    if not 1 <= options.idea_count <= MAX_IDEAS:
        raise ApplicationError(f"Ask for between 1 and {MAX_IDEAS} ideas.", field="idea_count")
    if not 1 <= options.variations <= MAX_VARIATIONS:
        raise ApplicationError(f"Ask for between 1 and {MAX_VARIATIONS} variations.", field="variations")
    if kind in {"caption", "comprehensive"} and options.caption_length not in rules.bands:
        raise ApplicationError(
            f"A {rules.label} cannot be {options.caption_length}: choose {' or '.join(rules.bands)}.",
            field="caption_length",
        )
    if kind in {"hashtags", "comprehensive"} and rules.max_hashtags == 0:
        raise ApplicationError(f"{rules.label}s take no hashtags.", field="platform")
    if kind in {"hashtags", "comprehensive"} and not 1 <= options.hashtag_count <= rules.max_hashtags:
        raise ApplicationError(f"A {rules.label} takes 1 to {rules.max_hashtags} hashtags.", field="hashtag_count")
    if len(options.media_description) > 2000:
        raise ApplicationError("Keep the media description under 2,000 characters.", field="media_description")
    if len(options.goal) > 500:
        raise ApplicationError("Keep the goal under 500 characters.", field="goal")
    if options.fan is not None and not isinstance(options.fan, dict):
        raise ApplicationError("Fan details must be an object.", field="fan")
    if not creator.persona.strip():
        raise ApplicationError(
            f"{creator.display_name} has no persona yet: describe who they are in Settings → Creators first.",
            field="persona",
        )
    return options


# --- Parsing and shape checks -------------------------------------------------------------------

FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_json(text: str) -> dict | None:
    """The JSON object in a model's answer: as is, without code fences, or the outermost {...}."""
    candidates = [text, FENCE.sub("", text).strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _clean_tags(values: Any, limit: int) -> list[str]:
    tags: list[str] = []
    for value in values if isinstance(values, list) else []:
        tag = "#" + re.sub(r"[^\w]", "", str(value).lower().lstrip("#"), flags=re.UNICODE)
        if len(tag) > 1 and tag not in tags:
            tags.append(tag)
    return tags[:limit]


def normalise(kind: str, data: dict, options: StudioOptions) -> dict:
    """Fit a parsed answer to the shape (repairing what can be repaired); ValueError otherwise."""
    rules = rules_for(options.platform)
    if kind in {"message", "caption"}:
        key = "text" if kind == "message" else "caption"
        items = data.get("variations")
        if not isinstance(items, list):
            raise ValueError("no list of variations")
        texts = [
            str(i.get(key) or i.get("text") or "").strip() if isinstance(i, dict) else str(i).strip() for i in items
        ]
        texts = [t[: rules.caption_limit] if kind == "caption" else t for t in texts if t]
        if not texts:
            raise ValueError("no usable variation")
        return {"variations": [{key: t} for t in texts[: options.variations]]}
    if kind == "hashtags":
        tags = _clean_tags(data.get("hashtags"), options.hashtag_count)
        if not tags:
            raise ValueError("no hashtags")
        return {"hashtags": tags}
    items = data.get("ideas")
    if not isinstance(items, list):
        raise ValueError("no list of ideas")
    ideas = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("title") or "").strip():
            continue
        category = str(item.get("category") or "").lower()
        difficulty = str(item.get("difficulty") or "").lower()
        idea = {
            "title": str(item["title"]).strip()[:200],
            "description": str(item.get("description") or "").strip()[:2000],
            "category": category if category in Category.values else Category.PHOTO,
            "tags": [t.lstrip("#") for t in _clean_tags(item.get("tags"), 10)],
            "difficulty": difficulty if difficulty in Difficulty.values else Difficulty.MEDIUM,
        }
        if kind == "comprehensive":
            idea["caption"] = str(item.get("caption") or "").strip()[: rules.caption_limit]
            idea["hashtags"] = _clean_tags(item.get("hashtags"), options.hashtag_count)
        ideas.append(idea)
    if not ideas:
        raise ValueError("no usable idea")
    return {"ideas": ideas[: options.idea_count]}


# --- The service ------------------------------------------------------------------------------


@dataclass
class Prepared:
    membership: Membership
    creator: Creator
    options: StudioOptions
    generation: Generation
    request: AIRequest


def _texts_of(kind: str, result: dict) -> list[tuple[tuple, str]]:
    """(path, text) pairs of every piece of generated prose in a result."""
    if kind in {"message", "caption"}:
        key = "text" if kind == "message" else "caption"
        return [(("variations", i, key), v[key]) for i, v in enumerate(result["variations"])]
    if kind == "hashtags":
        return []
    pairs = []
    for i, idea in enumerate(result["ideas"]):
        pairs += [(("ideas", i, "title"), idea["title"]), (("ideas", i, "description"), idea["description"])]
        if kind == "comprehensive":
            pairs.append((("ideas", i, "caption"), idea["caption"]))
    return pairs


def _fan_texts(fan: dict[str, Any] | None) -> list[str]:
    """Every fan field the prompt carries (prompts.task_prompt): each goes through the request check."""
    fan = fan or {}
    return [str(fan[key]) for key in ("display_name", "notes", "total_spent") if fan.get(key) not in (None, "")]


def studio_prepare(
    *,
    membership: Membership,
    creator: Creator,
    data: dict[str, Any],
    generation: Generation | None = None,
    save: bool = True,
) -> Prepared:
    """Authorise, validate, apply the request-side safety policy and record the generation
    (or reuse ``generation``, when one of its variations is being regenerated). With
    ``save=False`` the new generation is built but not written: a stream writes it while its
    upstream request is already on its way (generation_stream)."""
    from apps import safety
    from apps.studio import analytics

    require(membership, Perm.SEND_MESSAGES, creator)
    options = options_from(data, creator=creator)
    fan_texts = _fan_texts(options.fan)
    violations = safety.check_request([options.media_description, options.goal, *fan_texts])
    if violations:
        Generation.objects.create(
            agency_id=creator.agency_id, creator=creator, user_id=membership.user_id, type=options.type,
            options=options.public(), status=Generation.Status.REFUSED, error=violations[0].message[:300],
        )  # fmt: skip
        if fan_texts and safety.check_request(fan_texts):
            field = "fan"
        else:
            field = "media_description" if options.media_description else "goal"
        raise ApplicationError(violations[0].message, field=field)
    if options.type in {"idea", "comprehensive", "hashtags"}:
        trends = analytics.rising_trends(agency_id=creator.agency_id, creator=creator)
        hints = []
        rising = [t.tag for t in trends.tags[:5]]
        if rising:
            hints.append("rising tags: " + ", ".join(rising))
        if options.type != "hashtags":
            today = timezone.localdate(timezone=analytics.creator_zone(creator))  # "coming up" for the creator
            events = analytics.seasonality(creator=creator, on=today, horizon_days=21)
            upcoming = [f"{e.name} ({e.starts:%b %d})" for e in sorted(events, key=lambda e: -e.relevance)[:3]]
            if upcoming:
                hints.append("coming up: " + "; ".join(upcoming))
        options.trend_hint = "; ".join(hints)
    shape = prompts.SHAPES[options.type]
    count = options.variations if options.type in {"message", "caption"} else options.idea_count
    if options.type == "hashtags":
        count = options.hashtag_count
    request = AIRequest(
        feature=f"studio.{options.type}",
        system=prompts.system_prompt(creator, shape),
        messages=[Message("user", prompts.task_prompt(creator, options))],
        agency_id=creator.agency_id,
        creator_id=creator.pk,
        user_id=membership.user_id,
        json_mode=True,
        temperature=0.8,
        max_tokens=min(settings.AI_MAX_OUTPUT_TOKENS, 400 + 350 * count),
        context={
            "creator": {
                "display_name": creator.display_name, "niche": creator.niche, "persona": creator.persona,
                "voice": creator.voice, "sample_texts": creator.sample_texts, "avoid_words": creator.avoid_words,
                "avoid_topics": creator.avoid_topics, "language": creator.language,
            },
            "fan": options.fan or {}, "platform": options.platform, "tone": options.tone,
            "task": options.type if options.type != "comprehensive" else "idea",
            "count": count, "json_example": shape,
        },
    )  # fmt: skip
    if generation is None:
        generation = Generation(
            agency_id=creator.agency_id,
            creator=creator,
            user_id=membership.user_id,
            type=options.type,
            options=options.public(),
        )
        if save:
            generation.save()
    return Prepared(membership, creator, options, generation, request)


def _repair_request(request: AIRequest, answer: str) -> AIRequest:
    retry = "That answer did not match the JSON shape. Answer again with only the JSON object."
    return replace(request, messages=[*request.messages, Message("assistant", answer[:4000]), Message("user", retry)])


def _avoid_request(request: AIRequest, removed: list[str]) -> AIRequest:
    note = (
        "Your last answer used words the creator never says ("
        + ", ".join(sorted(set(removed)))
        + "). Write it again without them."
    )
    return replace(request, messages=[*request.messages, Message("user", note)])


def _apply_safety(prepared: Prepared, result: dict) -> tuple[dict, list, bool]:
    """Filter every text; drop items the policy blocks. Returns (result, violations, regenerate?)."""
    from apps import safety

    creator, options = prepared.creator, prepared.options
    violations, regenerate, blocked_paths = [], False, set()
    # Tags and hashtags pass the same hard rules; a failing one is dropped and reported.
    if options.type == "hashtags":
        result["hashtags"], found = safety.check_tags(result["hashtags"])
        violations += found
    for idea in result.get("ideas", []):
        idea["tags"], found = safety.check_tags(idea["tags"])
        violations += found
        if "hashtags" in idea:
            idea["hashtags"], found = safety.check_tags(idea["hashtags"])
            violations += found
    for path, text in _texts_of(options.type, result):
        outcome = safety.apply_policy(
            text, avoid_words=creator.avoid_words, avoid_topics=creator.avoid_topics, platform=options.platform
        )
        violations += outcome.violations
        if outcome.blocked:
            blocked_paths.add(path[:2])
            continue
        regenerate = regenerate or outcome.needs_regeneration
        container = result[path[0]][path[1]]
        container[path[2]] = outcome.text
    return _drop_items(options, result, blocked_paths), violations, regenerate


def _drop_items(options: StudioOptions, result: dict, blocked_paths: set[tuple]) -> dict:
    if blocked_paths:
        key = "variations" if options.type in {"message", "caption"} else "ideas"
        result[key] = [item for i, item in enumerate(result[key]) if (key, i) not in blocked_paths]
    return result


# Categories of an outside moderation answer that are hard rules here (OpenAI's names).
MODERATION_RULES = {"sexual/minors": "minors"}
MODERATION_MESSAGE = "The moderation service flagged this as sexual content involving minors; it was removed."


def _moderate(prepared: Prepared, result: dict) -> tuple[dict, list]:
    """The agency's moderation endpoint, when it has one, on every text the local policy let
    through (apps/ai/moderation.py); an item it flags for a hard rule is dropped and reported.
    Without an endpoint, or when the call fails, the local policy stands alone."""
    from apps import safety
    from apps.ai import moderation

    pairs = _texts_of(prepared.options.type, result)
    answer = moderation.moderate(agency_id=prepared.creator.agency_id, texts=[text for _, text in pairs])
    if not answer:
        return result, []
    violations, blocked_paths = [], set()
    for (path, text), categories in zip(pairs, answer, strict=True):
        for rule in sorted({MODERATION_RULES[c] for c in categories if c in MODERATION_RULES}):
            violations.append(safety.Violation(rule, MODERATION_MESSAGE, " ".join(text.split())[:60]))
            blocked_paths.add(path[:2])
    return _drop_items(prepared.options, result, blocked_paths), violations


def _hashtag_rules(prepared: Prepared, result: dict) -> dict:
    from apps.studio import analytics

    options, creator = prepared.options, prepared.creator
    if options.type == "hashtags":
        result["hashtags"] = analytics.hashtag_suggestions(
            creator=creator, strategy=options.strategy, count=options.hashtag_count, platform=options.platform,
            preferred=result["hashtags"],
        )  # fmt: skip
    elif options.type == "comprehensive":
        history = analytics.post_history(creator=creator)  # once, not once an idea
        for idea in result["ideas"]:
            idea["hashtags"] = analytics.hashtag_suggestions(
                creator=creator, strategy=options.strategy, count=options.hashtag_count, platform=options.platform,
                preferred=idea["hashtags"], history=history,
            )  # fmt: skip
    return result


@transaction.atomic
def _save_ideas(prepared: Prepared, result: dict) -> dict:
    """Score each idea from the creator's history, skip near-duplicates of recent ideas, store them."""
    from apps.studio import analytics

    creator = prepared.creator
    since = timezone.now() - timedelta(days=IDEA_REPEAT_DAYS)
    recent = list(
        ContentIdea.objects.for_agency(creator.agency_id)
        .filter(Q(created_at__gte=since) | Q(used_at__gte=since), creator=creator)
        .values_list("title", flat=True)[:500]
    )  # fmt: skip
    trends = analytics.rising_trends(agency_id=creator.agency_id, creator=creator)
    history = analytics.post_history(creator=creator)  # once, not once an idea
    kept, rows = [], []
    for idea in result["ideas"]:
        duplicate = analytics.near_duplicate(idea["title"], recent)
        if duplicate:
            continue
        recent.append(idea["title"])
        scores = analytics.score_idea(
            creator=creator, category=idea["category"], tags=idea["tags"], trends=trends, history=history
        )
        idea["scores"] = {
            "estimated_engagement": scores.estimated_engagement, "trend_score": scores.trend_score,
            "ppv_suitability": scores.ppv_suitability, "subscription_value": scores.subscription_value,
            "tip_potential": scores.tip_potential,
        }  # fmt: skip
        idea["why"] = scores.explanation
        kept.append(idea)
        rows.append(
            ContentIdea(
                agency_id=creator.agency_id, creator=creator, generation=prepared.generation, title=idea["title"],
                description=idea["description"], category=idea["category"], tags=idea["tags"],
                difficulty=idea["difficulty"], fingerprint=analytics.title_fingerprint(idea["title"]),
                score_explanation=scores.explanation, **idea["scores"],
            )
        )  # fmt: skip
    ContentIdea.objects.bulk_create(rows)
    result["ideas"] = kept
    return result


def _storable(value: Any) -> Any:
    """Model text without NUL characters: a model may write them, and PostgreSQL cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    return value


def _finish(prepared: Prepared, response: AIResponse, result: dict, violations: list) -> Generation:
    generation = prepared.generation
    result, generation.text = _storable(result), _storable(generation.text)
    if prepared.options.type in {"idea", "comprehensive"}:
        result = _save_ideas(prepared, result)
    result["policy"] = [{"rule": v.rule, "message": v.message} for v in violations]
    generation.result = result
    generation.text = generation.text or json.dumps(result, ensure_ascii=False)[:20000]
    generation.status = Generation.Status.DONE
    generation.provider, generation.model = response.provider, response.model
    generation.input_tokens, generation.output_tokens = response.usage.input_tokens, response.usage.output_tokens
    generation.cost_usd, generation.latency_ms, generation.degraded = (
        response.cost_usd,
        response.latency_ms,
        response.degraded,
    )
    with transaction.atomic():
        generation.save()
        _publish_finished(generation)
    return generation


def _fail(
    generation: Generation, message: str, *, text: str = "", status: str = Generation.Status.FAILED
) -> Generation:
    generation.status = status
    generation.error = message[:300]
    if text:
        generation.text = _storable(text)
    with transaction.atomic():
        generation.save(update_fields=["status", "error", "text"])
        _publish_finished(generation)
    return generation


def _fail_if_running(generation: Generation, message: str, *, text: str = "") -> None:
    if Generation.objects.filter(pk=generation.pk, status=Generation.Status.RUNNING).exists():
        _fail(generation, message, text=text)


def _publish_finished(generation: Generation) -> None:
    """``generation.completed`` (or ``generation.failed``) on the event bus (apps/core/events.py), for
    the member who asked: their SSE stream, webhooks and metrics. The page's own socket already
    streamed the result, so no websocket group is named. Ids only, no generated text."""
    done = generation.status == Generation.Status.DONE
    publish(
        "generation.completed" if done else "generation.failed",
        agency_id=generation.agency_id,
        user_id=generation.user_id,
        key=f"generation:{generation.pk}",
        payload={
            "generation_id": generation.pk,
            "creator_id": generation.creator_id,
            "type": generation.type,
            "status": generation.status,
            "degraded": bool(generation.degraded),
        },
    )


def _complete_from_answer(prepared: Prepared, answer: str) -> tuple[dict | None, str | None]:
    data = parse_json(answer)
    if data is None:
        return None, "not JSON"
    try:
        return normalise(prepared.options.type, data, prepared.options), None
    except ValueError as error:
        return None, str(error)


class _Unreadable(Exception):
    def __init__(self, text: str, problem: str) -> None:
        super().__init__(problem)
        self.text = text
        self.problem = problem


def _produce(prepared: Prepared) -> tuple[AIResponse, dict, list]:
    """Call the model, repair once, apply the policy (regenerating once for avoided words)."""
    request = prepared.request
    response = gateway.generate_sync(request)
    result, problem = _complete_from_answer(prepared, response.text)
    if result is None:
        response = gateway.generate_sync(_repair_request(request, response.text))
        result, problem = _complete_from_answer(prepared, response.text)
    if result is None:
        raise _Unreadable(response.text, problem or "")
    result, violations, regenerate = _apply_safety(prepared, result)
    if regenerate:
        removed = [v.excerpt or v.message for v in violations if v.rule == "avoid_word"]
        retry = gateway.generate_sync(_avoid_request(request, removed))
        retried, _ = _complete_from_answer(prepared, retry.text)
        if retried is not None:
            response = retry
            result, violations, _ = _apply_safety(prepared, retried)
    result, flagged = _moderate(prepared, result)
    violations += flagged
    if prepared.options.type in {"hashtags", "comprehensive"}:
        result = _hashtag_rules(prepared, result)
    return response, result, violations


def generation_run(*, membership: Membership, creator: Creator, data: dict[str, Any]) -> Generation:
    """Generate (not streamed): validate, call the model, repair once, apply the policy, save."""
    prepared = studio_prepare(membership=membership, creator=creator, data=data)
    try:
        response, result, violations = _produce(prepared)
    except _Unreadable as error:
        return _fail(prepared.generation, f"The model's answer could not be read ({error.problem}).", text=error.text)
    except AIError as error:
        return _fail(prepared.generation, error.message)
    return _finish(prepared, response, result, violations)


def generation_regenerate_variation(*, membership: Membership, generation: Generation, index: int) -> Generation:
    """Write one variation of a message or caption again, keeping the others."""
    variations = (generation.result or {}).get("variations") or []
    if generation.type not in {GenerationType.MESSAGE, GenerationType.CAPTION} or generation.status != "done":
        raise ApplicationError("Only finished messages and captions have variations to regenerate.")
    if not 0 <= index < len(variations):
        raise ApplicationError("There is no such variation.", field="index")
    data = {**generation.options, "variations": 1}
    prepared = studio_prepare(membership=membership, creator=generation.creator, data=data, generation=generation)
    try:
        response, result, violations = _produce(prepared)
    except _Unreadable:
        raise ApplicationError("The model's answer could not be read. Try again.") from None
    except AIError as error:
        raise ApplicationError(error.message) from None
    if not result["variations"]:
        raise ApplicationError("The safety policy removed the new variation. Try again.")
    # The row as it is now, locked: another variation may have been rewritten (and paid for) while
    # this one was being written, and saving the copy read before would undo it.
    with transaction.atomic():
        generation = Generation.objects.for_agency(generation.agency_id).select_for_update().get(pk=generation.pk)
        generation.result["variations"][index] = result["variations"][0]
        generation.result.setdefault("policy", []).extend({"rule": v.rule, "message": v.message} for v in violations)
        generation.input_tokens += response.usage.input_tokens
        generation.output_tokens += response.usage.output_tokens
        generation.cost_usd += response.cost_usd
        generation.save(update_fields=["result", "input_tokens", "output_tokens", "cost_usd"])
    return generation


def _complete_stream(prepared: Prepared, response: AIResponse, render: Callable[[Generation], str] | None) -> dict:
    """A streamed answer's end, in one thread hop: parsed and fitted to the shape, the policy,
    the moderation endpoint, the hashtag rules, the row saved and, when the caller asks for it,
    the result rendered. None of it runs on the event loop, where it would hold up the chunks of
    every other stream (several milliseconds of CPU per answer: docs/profiles/)."""
    prepared.generation.text = response.text
    result, problem = _complete_from_answer(prepared, response.text)
    if result is None:
        _fail(prepared.generation, f"The model's answer could not be read ({problem}).", text=response.text)
        return {"event": "error", "message": "The model's answer could not be read. Try again.",
                "partial": response.text, "generation": prepared.generation.pk}  # fmt: skip
    result, violations, _ = _apply_safety(prepared, result)
    result, flagged = _moderate(prepared, result)
    violations += flagged
    if prepared.options.type in {"hashtags", "comprehensive"}:
        result = _hashtag_rules(prepared, result)
    generation = _finish(prepared, response, result, violations)
    complete = {"event": "complete", "generation": generation.pk, "record": generation,
                "result": generation.result, "provider": response.provider, "model": response.model,
                "degraded": response.degraded, "cost_usd": str(response.cost_usd),
                "latency_ms": round(response.latency_ms, 1)}  # fmt: skip
    if render is not None:
        complete["html"] = render(generation)
    return complete


async def generation_stream(
    *,
    membership: Membership | None = None,
    creator: Creator | None = None,
    data: dict[str, Any] | None = None,
    prepared: Prepared | None = None,
    render: Callable[[Generation], str] | None = None,
) -> AsyncIterator[dict]:
    """Stream a generation: {"event": "content", "text"}…, then "complete" (with the generation's
    id, and the saved Generation itself as "record") or "error" (with the message and the text
    received so far, which stays saved). Closing the iterator cancels the upstream call and marks
    the generation cancelled.

    ``prepared``: the result of ``studio_prepare(..., save=False)`` when the caller already ran it
    (the websocket consumer does, in the same thread hop as its permission check). The upstream
    request is sent first and the generation row written while it is on its way, so the row's
    INSERT is not part of the time to the first token.

    ``render``: called with the saved generation in the completion's own thread hop (off the
    event loop); its answer is the "complete" event's "html"."""
    if prepared is None:
        try:
            prepared = await database_call(studio_prepare)(
                membership=membership, creator=creator, data=data, save=False
            )
        except ApplicationError as error:
            yield {"event": "error", "message": error.message, "field": error.field, "partial": ""}
            return
    from apps import safety

    parts: list[str] = []
    received = checked = 0
    stream = gateway.stream(prepared.request)
    # Started now, run once this task waits for the provider: the upstream request goes out
    # first, and the INSERT overlaps the time to the first token. Only the steps that update the
    # row wait for it (``_saved``); streamed text does not.
    saving = (
        asyncio.ensure_future(database_call(prepared.generation.save)()) if prepared.generation.pk is None else None
    )

    completing: asyncio.Future | None = None

    async def _saved() -> None:
        nonlocal saving
        if saving is not None:
            await asyncio.shield(saving)
            saving = None

    try:
        async for event in stream:
            if not isinstance(event, StreamChunk):
                await _saved()
            if isinstance(event, StreamChunk):
                parts.append(event.text)
                received += len(event.text)
                if received - checked >= LIVE_CHECK_CHARS:
                    # The member watches this text arrive: stop it as soon as it breaks a hard
                    # rule. Only the new text and an overlap are checked, so a long answer costs
                    # linear time; the finished answer is checked whole below.
                    parts[:] = ["".join(parts)]
                    start = max(0, checked - safety.STREAM_OVERLAP)
                    if start:
                        start = parts[0].find(" ", start) + 1  # from a whole word
                    checked = received
                    blocking = safety.stream_violations(parts[0][start:])
                    if blocking:
                        await stream.aclose()
                        await _saved()
                        await database_call(_fail)(
                            prepared.generation, blocking[0].message, status=Generation.Status.REFUSED
                        )
                        yield {"event": "error", "message": blocking[0].message, "partial": "",
                               "generation": prepared.generation.pk, "refused": True}  # fmt: skip
                        return
                yield {"event": "content", "text": event.text}
            elif isinstance(event, StreamError):
                text = event.partial_text or "".join(parts)
                await database_call(_fail)(prepared.generation, event.error.message, text=text)
                yield {
                    "event": "error",
                    "message": event.error.message,
                    "partial": text,
                    "generation": prepared.generation.pk,
                }
                return
            elif isinstance(event, StreamComplete):
                completing = asyncio.ensure_future(database_call(_complete_stream)(prepared, event.response, render))
                yield await asyncio.shield(completing)
                return
    except BaseException:  # cancelled (CancelledError), closed (GeneratorExit) or failed: keep the text
        await stream.aclose()
        failure: BaseException | None = None
        if completing is not None:
            # The whole answer arrived and is being saved in a thread, which a cancellation does
            # not stop: let it land (as done) rather than mark the row cancelled under it.
            await asyncio.wait([completing])
            if not completing.cancelled():
                failure = completing.exception()  # the completion itself failed: the row is marked failed below
        if saving is not None:
            await asyncio.wait([saving])  # the row is being written in a thread: let it land, then mark it
            if not saving.cancelled():
                saving.exception()  # retrieved here; a failed INSERT leaves nothing to mark
        if failure is not None and prepared.generation.pk is not None:
            # Its in-memory status may already say done (set before a save that failed): the row
            # is what counts.
            await asyncio.shield(
                database_call(_fail_if_running)(
                    prepared.generation, "The answer could not be saved. Try again.", text="".join(parts)
                )
            )
        elif prepared.generation.pk is not None and prepared.generation.status == Generation.Status.RUNNING:
            await asyncio.shield(
                database_call(_fail)(
                    prepared.generation, "Cancelled.", text="".join(parts), status=Generation.Status.CANCELLED
                )
            )
        raise


# --- Idea history -----------------------------------------------------------------------------


def idea_set_favourite(*, membership: Membership, idea: ContentIdea, favourite: bool) -> ContentIdea:
    require(membership, Perm.SEND_MESSAGES, idea.creator)
    idea.is_favourite = favourite
    idea.save(update_fields=["is_favourite"])
    return idea


def idea_mark_used(*, membership: Membership, idea: ContentIdea, outcome: str = "") -> ContentIdea:
    """Mark an idea used (the first time counts) and record its outcome. An empty outcome keeps
    the one already written: marking it used again must not erase what the member noted."""
    require(membership, Perm.SEND_MESSAGES, idea.creator)
    if len(outcome) > 2000:
        raise ApplicationError("Keep the outcome under 2,000 characters.", field="outcome")
    idea.used_at = idea.used_at or timezone.now()
    if outcome.strip():
        idea.outcome = outcome.strip()
    idea.save(update_fields=["used_at", "outcome"])
    return idea


def generation_save_to_library(*, membership: Membership, generation: Generation, saved: bool = True) -> Generation:
    require(membership, Perm.SEND_MESSAGES, generation.creator)
    generation.saved = saved
    generation.save(update_fields=["saved"])
    return generation
