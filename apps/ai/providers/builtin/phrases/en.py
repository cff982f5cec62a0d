"""The built-in writer's en phrases (see ``apps.ai.providers.builtin.phrases``)."""

from __future__ import annotations

from typing import Any

BANK: dict[str, Any] = {
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
