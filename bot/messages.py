"""Everything the bot says on its own (not model answers), in English and Simplified Chinese."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def language_of(text: str | None, language_code: str | None = None) -> str:
    """ "zh" when the text is written in Chinese (or, without text, the user's Telegram language
    is Chinese); "en" otherwise."""
    if text and _CJK.search(text):
        return "zh"
    if not text and language_code and language_code.lower().startswith("zh"):
        return "zh"
    return "en"


TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "en": "Hello{name}! I'm qabot, a question-answering bot. Ask me anything in English or "
        "Chinese; /help shows what I can do.",
        "zh": "你好{name}！我是 qabot，一个问答机器人。可以用中文或英文问我问题；"
        "发送 /help 查看我能做什么。",
    },
    "help": {
        "en": "Send me a question as text and I answer from what I have been taught. When I am "
        "not sure, I say so instead of guessing. Rate my answers with 👍/👎: after a 👎 you "
        "can suggest the right answer, and an admin reviews it.\n\n"
        "/start – greeting\n/help – this help\n"
        "/ask question – ask in a group (or mention me, or reply to me)\n"
        "/autoanswer on|off – group admins: answer confident questions unasked\n"
        "/mydata – everything stored about you\n/forget – delete it\n\n"
        "Admins: /teach question | answer, /review, /retrain [force], /models, /rollback, "
        "/stats, /export [csv|jsonl] [7d], /pairs",
        "zh": "用文字问我问题，我会根据学到的内容回答；没有把握时我会直说，而不是乱猜。"
        "可以用 👍/👎 评价回答：点 👎 后可以告诉我正确答案，由管理员审核。\n\n"
        "/start – 问候\n/help – 帮助\n/ask 问题 – 在群里提问（也可以提及我或回复我）\n"
        "/autoanswer on|off – 群管理员：有把握的问题自动回答\n"
        "/mydata – 查看关于你的全部数据\n/forget – 删除这些数据\n\n"
        "管理员：/teach 问题 | 答案、/review、/retrain [force]、/models、/rollback、"
        "/stats、/export [csv|jsonl] [7d]、/pairs",
    },
    "fallback": {
        "en": "Sorry, I don't know how to answer that yet. Try rephrasing it, or ask an admin "
        "to teach me.",
        "zh": "抱歉，这个问题我还不会回答。换个说法试试，或者请管理员教我。",
    },
    "did_you_mean": {
        "en": "I'm not sure I understood. Did you mean one of these?",
        "zh": "我不太确定你的意思。你想问的是下面哪一个？",
    },
    "none_of_these": {
        "en": "None of these",
        "zh": "都不是",
    },
    "choice_not_yours": {
        "en": "Only the person who asked can choose here.",
        "zh": "只有提问的人可以在这里选择。",
    },
    "choice_already_answered": {
        "en": "This question has already been answered.",
        "zh": "这个问题已经回答过了。",
    },
    "button_expired": {
        "en": "This button no longer works. Please ask again.",
        "zh": "这个按钮已经失效，请重新提问。",
    },
    "no_model": {
        "en": "I'm still learning and can't answer yet. Please try again in a minute.",
        "zh": "我还在学习中，暂时无法回答，请稍后再试。",
    },
    "empty": {
        "en": "Please send me your question as text.",
        "zh": "请用文字发送你的问题。",
    },
    "not_text": {
        "en": "I can only read text messages. Please type your question.",
        "zh": "我只能读懂文字消息，请把问题打出来。",
    },
    "error": {
        "en": "Sorry, something went wrong on my side. Please try again.",
        "zh": "抱歉，我这边出了点问题，请再试一次。",
    },
    "not_admin": {
        "en": "Sorry, only the bot's admins can use that command.",
        "zh": "抱歉，只有管理员可以使用这个命令。",
    },
    "private_only": {
        "en": "Please send me this command in a private chat.",
        "zh": "请在与我的私聊中发送这个命令。",
    },
    "admin_private_only": {
        "en": "This command shows users' data, so I answer it only in a private chat with me.",
        "zh": "这个命令会显示用户的数据，所以我只在与我的私聊中回答。",
    },
    "unknown_command": {
        "en": "I don't know that command. /help lists what I can do.",
        "zh": "我不认识这个命令。发送 /help 查看我能做什么。",
    },
    "ask_usage": {
        "en": "Put your question after the command: /ask how do I reset my password?",
        "zh": "请把问题写在命令后面，例如：/ask 怎么重置密码？",
    },
    "autoanswer_groups_only": {
        "en": "/autoanswer is a setting of a group: send it in the group.",
        "zh": "/autoanswer 是群组的设置，请在群组里发送。",
    },
    "autoanswer_usage": {
        "en": "Automatic answers are {state} in this group. A group admin can turn them on or "
        "off with /autoanswer on or /autoanswer off: when on, I also answer questions I am sure "
        "about without being mentioned, and stay silent otherwise.",
        "zh": "本群的自动回答目前{state}。群管理员可以用 /autoanswer on 或 /autoanswer off "
        "开启或关闭：开启后，我有把握的问题即使没有被提及也会回答，没有把握时保持沉默。",
    },
    "autoanswer_on_state": {"en": "on", "zh": "已开启"},
    "autoanswer_off_state": {"en": "off", "zh": "已关闭"},
    "autoanswer_not_admin": {
        "en": "Only an admin of this group can change automatic answers.",
        "zh": "只有本群的管理员可以更改自动回答设置。",
    },
    "autoanswer_on": {
        "en": "Automatic answers are on: I answer questions I am sure about without being "
        "mentioned, and stay silent otherwise.",
        "zh": "自动回答已开启：我有把握的问题会直接回答，没有把握时保持沉默。",
    },
    "autoanswer_off": {
        "en": "Automatic answers are off: I answer when mentioned, replied to, or asked with /ask.",
        "zh": "自动回答已关闭：只有在被提及、被回复或使用 /ask 时我才会回答。",
    },
    "ask_a_person": {"en": "🙋 Ask a person", "zh": "🙋 请真人回答"},
    "handoff_offer": {
        "en": "Or a person can answer your question:",
        "zh": "也可以请真人来回答你的问题：",
    },
    "handoff_sent": {
        "en": "I've passed your question on to a person; their answer will arrive here.",
        "zh": "我已经把你的问题转给了工作人员，他们的回答会发到这里。",
    },
    "handoff_already": {
        "en": "This question is already with a person.",
        "zh": "这个问题已经转给工作人员了。",
    },
    "handoff_failed": {
        "en": "Sorry, I couldn't reach a person right now. Please try again later.",
        "zh": "抱歉，现在联系不上工作人员，请稍后再试。",
    },
    "handoff_answer": {
        "en": "💬 A person answered your question:",
        "zh": "💬 工作人员回答了你的问题：",
    },
    "handoff_waiting": {
        "en": "Nobody has picked up your question yet, sorry. It stays open, and the answer "
        "will arrive here when someone does.",
        "zh": "抱歉，暂时还没有人接手你的问题。问题仍然保留，有人回答后会发到这里。",
    },
    "support_chat_only": {
        "en": "This command works in the support chat only.",
        "zh": "这个命令只能在客服群里使用。",
    },
}


def text(key: str, lang: str = "en", **values: object) -> str:
    return TEXTS[key][lang].format(**values)
