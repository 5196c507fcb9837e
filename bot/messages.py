"""Everything the bot says on its own (not model answers), in English and Simplified Chinese."""

from __future__ import annotations

import re

from model import data_checks as checks
from model.figures import WORDS
from model.registry import NO_EARLIER_VERSION

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
    "console_banner": {
        "en": "qabot console chat. Ask a question; Ctrl-D quits.",
        "zh": "qabot 终端聊天。请提问；按 Ctrl-D 退出。",
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
    # -- /mydata and /forget
    "mydata_caption": {
        "en": "Everything I have stored about you. /forget deletes it.",
        "zh": "我保存的关于你的全部数据。发送 /forget 可以删除。",
    },
    "forget_ask": {
        "en": "Delete everything I have stored about you (your questions, my answers and your "
        "feedback)? This cannot be undone.",
        "zh": "要删除我保存的关于你的全部数据（你的问题、我的回答和你的反馈）吗？删除后无法恢复。",
    },
    "forget_yes": {"en": "Yes, delete it", "zh": "确定删除"},
    "forget_no": {"en": "Cancel", "zh": "取消"},
    "forgotten": {
        "en": "Done: I deleted {count} of your messages and everything linked to them.",
        "zh": "已删除：你的 {count} 条消息以及相关的全部数据。",
    },
    "kept": {"en": "Cancelled: nothing was deleted.", "zh": "已取消，没有删除任何数据。"},
    "not_yours": {"en": "This button is not for you.", "zh": "这个按钮不是给你的。"},
    "unavailable": {
        "en": "Sorry, my database is not reachable right now. Please try again in a few minutes.",
        "zh": "抱歉，数据库暂时无法访问，请过几分钟再试。",
    },
    # -- rate limit
    "slow_down": {
        "en": "You are sending messages too fast. Please wait a moment; I'll answer again then.",
        "zh": "你发消息太快了，请稍等片刻，我之后会继续回答。",
    },
    # -- 👍/👎 and suggestions
    "feedback_thanks": {"en": "Thanks for the feedback!", "zh": "谢谢你的反馈！"},
    "answer_unknown": {
        "en": "That answer is no longer known.",
        "zh": "这个回答已经不存在了。",
    },
    # The prompts that expect a reply carry the exchange id; the bot recognises a reply to
    # any language's wording (bot/telegram/learning.py), so keep "{id}" in each.
    "prompt_suggestion": {
        "en": "Sorry about that. If you know the right answer, reply to this message with it "
        "and an admin will review it. [suggestion for #{id}]",
        "zh": "抱歉。如果你知道正确答案，请回复这条消息告诉我，管理员会审核。[建议 #{id}]",
    },
    "prompt_answer": {
        "en": "Reply to this message with the answer. [answer for #{id}]",
        "zh": "请回复这条消息，写下答案。[答案 #{id}]",
    },
    "suggestion_placeholder": {"en": "The right answer", "zh": "正确答案"},
    "answer_placeholder": {"en": "The answer", "zh": "答案"},
    "suggestion_thanks": {
        "en": "Thank you! An admin will review your suggestion.",
        "zh": "谢谢！管理员会审核你的建议。",
    },
    # -- admins: /teach
    "teach_usage": {"en": "Usage: /teach question | answer", "zh": "用法：/teach 问题 | 答案"},
    "teach_empty_answer": {"en": "the answer is empty", "zh": "答案是空的"},
    "teach_question_without_key": {
        "en": "the question needs at least one letter, digit or symbol",
        "zh": "问题至少要有一个字母、数字或符号",
    },
    "teach_refused": {
        "en": "Not taught: {error}. Usage: /teach question | answer",
        "zh": "没有学习：{error}。用法：/teach 问题 | 答案",
    },
    "teach_learned": {
        "en": "Learned: {question} → {answer}",
        "zh": "学会了：{question} → {answer}",
    },
    "teach_known": {
        "en": "I already knew that: {question} → {answer}",
        "zh": "这个我已经会了：{question} → {answer}",
    },
    # -- admins: /retrain
    "retrain_not_installed": {
        "en": "This bot cannot retrain: training (TensorFlow) is not installed here. Install it "
        "with pip install 'qabot[train]', or retrain where it is installed and share the "
        "models folder. The live model keeps serving.",
        "zh": "这个机器人无法重新训练：这里没有安装训练组件（TensorFlow）。可以用 "
        "pip install 'qabot[train]' 安装，或者在已安装的地方训练后共享模型文件夹。"
        "当前模型继续服务。",
    },
    "retrain_busy_will_report": {
        "en": "A training run is already in progress; I'll report when it ends.",
        "zh": "已经有一次训练在进行中，结束时我会报告。",
    },
    "retrain_busy": {
        "en": "A training run is already in progress.",
        "zh": "已经有一次训练在进行中。",
    },
    "retrain_started": {
        "en": "Retraining started. I keep answering everyone meanwhile.",
        "zh": "开始重新训练。训练期间我会继续回答大家的问题。",
    },
    "training": {"en": "Training…", "zh": "训练中…"},
    "training_epoch": {
        "en": "Training… epoch {epoch}/{epochs}",
        "zh": "训练中… 第 {epoch}/{epochs} 轮",
    },
    "training_epoch_accuracy": {
        "en": "Training… epoch {epoch}/{epochs}, validation accuracy {accuracy}",
        "zh": "训练中… 第 {epoch}/{epochs} 轮，验证准确率 {accuracy}",
    },
    "training_refused_status": {"en": "Training refused.", "zh": "训练被拒绝。"},
    "training_refused": {
        "en": "Training refused: nothing was trained or promoted, the live model keeps serving.\n"
        "{report}\n/teach question | answer adds pairs; /pairs sends the training set.",
        "zh": "训练被拒绝：没有训练或启用任何模型，当前模型继续服务。\n"
        "{report}\n/teach 问题 | 答案 可以添加问答对；/pairs 发送训练集。",
    },
    "training_failed": {
        "en": "Training failed; the current model keeps serving. Reason: {error}",
        "zh": "训练失败，当前模型继续服务。原因：{error}",
    },
    "training_finished": {"en": "Training finished.", "zh": "训练完成。"},
    "gate_compared": {
        "en": "gate: candidate {candidate} vs live {live} right on the same {n} questions neither "
        "was trained on ({held_out} held out in cross-validation, {rated} rated by users); right "
        "only by the candidate {better}, only by the live model {worse}: {verdict} "
        "(exact paired test, p = {p_worse} that it is more than a point worse)",
        "zh": "把关：在两个模型都没训练过的同一批 {n} 个问题上（{held_out} 个为交叉验证保留的问题，"
        "{rated} 个为用户评价过的问题），候选模型答对 {candidate}，当前模型答对 {live}；"
        "只有候选模型答对 {better} 个，只有当前模型答对 {worse} 个：{verdict}"
        "（精确配对检验，候选模型差一个百分点以上的 p = {p_worse}）",
    },
    "gate_better": {"en": "significantly better", "zh": "明显更好"},
    "gate_same": {"en": "not significantly worse", "zh": "没有明显更差"},
    "gate_worse": {
        "en": "significantly worse (by more than a point)",
        "zh": "明显更差（差一个百分点以上）",
    },
    "gate_no_live_model": {
        "en": "gate: no live model to compare with",
        "zh": "把关：没有可比较的当前模型",
    },
    "gate_no_live_record": {
        "en": "gate: not compared (the live version kept no held-out answers: it was trained "
        "before the gate compared versions this way)",
        "zh": "把关：没有比较（当前版本没有保留的交叉验证答案：它是在这种比较方式之前训练的）",
    },
    "gate_nothing_in_common": {
        "en": "gate: not compared (no question that both versions held out or users rated: "
        "their training sets have none in common)",
        "zh": "把关：没有比较（没有两个版本都保留的问题或用户评价过的问题："
        "它们的训练集没有共同的问题）",
    },
    "gate_short": {
        "en": "gate: candidate {candidate} vs live {live} on {n} questions, {verdict}",
        "zh": "把关：候选 {candidate}，当前 {live}（{n} 个问题），{verdict}",
    },
    "retrain_promoted": {"en": "New model {version} is live.", "zh": "新模型 {version} 已上线。"},
    "retrain_promoted_forced": {
        "en": "New model {version} is live (forced).",
        "zh": "新模型 {version} 已上线（强制）。",
    },
    "retrain_not_promoted": {
        "en": "Model {version} was NOT promoted: it is significantly worse than the live model "
        "(by more than a point). "
        "The live model keeps serving; /retrain force promotes anyway.",
        "zh": "模型 {version} 没有上线：它明显比当前模型差（一个百分点以上）。当前模型继续服务；"
        "/retrain force 可以强制上线。",
    },
    "report_cut": {
        "en": "… (`qabot train` prints the whole report)",
        "zh": "…（`qabot train` 会打印完整报告）",
    },
    # -- admins: /models, /rollback
    "no_models": {"en": "No model has been trained yet.", "zh": "还没有训练过任何模型。"},
    "model_live": {"en": " (live)", "zh": "（当前）"},
    "rollback_failed": {"en": "Cannot roll back: {error}", "zh": "无法回滚：{error}"},
    "rollback_nothing_earlier": {"en": NO_EARLIER_VERSION, "zh": "没有可以回滚到的更早的模型版本"},
    "rolled_back": {
        "en": "Rolled back: model {version} is live again.",
        "zh": "已回滚：模型 {version} 重新上线。",
    },
    # -- admins: /export, /pairs, /stats
    "export_refused": {
        "en": "Cannot export: {error}.\nUsage: /export [{formats}] [7d | 24h | YYYY-MM-DD]",
        "zh": "无法导出：{error}。\n用法：/export [{formats}] [7d | 24h | YYYY-MM-DD]",
    },
    "export_unknown_word": {
        "en": "“{word}” is neither a format, a range (7d, 24h) nor a date (YYYY-MM-DD)",
        "zh": "“{word}”既不是格式，也不是时间范围（7d、24h）或日期（YYYY-MM-DD）",
    },
    "export_too_far_back": {
        "en": "{word} reaches back before the year 1",
        "zh": "{word} 早于公元 1 年",
    },
    "export_what_exchanges": {"en": "exchanges", "zh": "条对话"},
    "export_what_pairs": {"en": "Q&A pairs", "zh": "个问答对"},
    "export_too_large": {
        "en": "The {count} {what} make a {size_mb} MB file, too large for Telegram even "
        "compressed (bots may send {limit_mb} MB). Export a shorter range, e.g. /export 7d, "
        "or run `qabot export` on the server.",
        "zh": "这 {count} {what} 组成的文件有 {size_mb} MB，压缩后对 Telegram 来说仍然太大"
        "（机器人最多可发送 {limit_mb} MB）。请导出更短的时间范围，例如 /export 7d，"
        "或者在服务器上运行 `qabot export`。",
    },
    "export_caption": {"en": "{count} {what}", "zh": "{count} {what}"},
    "export_caption_compressed": {
        "en": "{count} {what} (gzip-compressed)",
        "zh": "{count} {what}（gzip 压缩）",
    },
    "exchanges_not_written_outage": {
        "en": "{count} exchanges not yet written; the database is unreachable",
        "zh": "还有 {count} 条对话没有写入：数据库无法访问",
    },
    "exchanges_not_written_slow": {
        "en": "{count} exchanges not yet written; the database is slow",
        "zh": "还有 {count} 条对话没有写入：数据库响应太慢",
    },
    "not_yet_written": {
        "en": "{error}. Try again once they are written.",
        "zh": "{error}。请等它们写入后再试。",
    },
    "and_more": {"en": " and {n} more", "zh": " 等另外 {n} 个"},
    "stats_questions": {
        "en": "Questions: {exchanges} from {users} users",
        "zh": "问题：{exchanges} 个，来自 {users} 位用户",
    },
    "stats_fallback_rate": {"en": "Fallback rate: {rate}", "zh": "未能回答的比例：{rate}"},
    "stats_model_ratings": {
        "en": "Model {version}: {up_sign} {up} / {down_sign} {down} ({positive} positive)",
        "zh": "模型 {version}：{up_sign} {up} / {down_sign} {down}（{positive} 好评）",
    },
    "stats_choices": {
        "en": "“Did you mean” presses: {answer} chose an answer, {none} none of these",
        "zh": "“你想问的是”按钮：{answer} 次选了答案，{none} 次选了都不是",
    },
    "stats_busiest": {"en": "Busiest unanswered:", "zh": "最常见的未回答问题："},
    # -- admins: /review
    "review_empty": {"en": "The review queue is empty. 🎉", "zh": "审核队列是空的。🎉"},
    "review_title": {
        "en": "Review (1 of {count}): {question}",
        "zh": "审核（共 {count} 个，第 1 个）：{question}",
    },
    "review_asked": {"en": "Asked {count}× — {reasons}", "zh": "被问了 {count} 次 — {reasons}"},
    "review_reason_person": {"en": "answered by a person", "zh": "已由人工回答"},
    "review_reason_thumbs_down": {"en": "👎", "zh": "👎"},
    "review_reason_chosen": {"en": "chosen by the asker", "zh": "提问者已选择"},
    "review_reason_none_of_these": {"en": "none of these", "zh": "提问者选了“都不是”"},
    "review_reason_fallback": {"en": "fallback", "zh": "未能回答"},
    "review_reason_low_confidence": {"en": "low confidence", "zh": "把握不大"},
    "review_reason_thumbs_up": {"en": "👍", "zh": "👍"},
    "review_also_asked": {"en": "Also asked as: {wordings}", "zh": "其他问法：{wordings}"},
    "review_suggested": {"en": "Users suggested: {answers}", "zh": "用户建议：{answers}"},
    "review_person_answered": {
        "en": "A person answered (support chat): {answers}",
        "zh": "工作人员的回答（客服群）：{answers}",
    },
    "review_chosen": {
        "en": "Askers chose (did you mean): {answers}",
        "zh": "提问者的选择（你想问的是）：{answers}",
    },
    "review_decide": {
        "en": "Map it to an answer, write a new one, mark it out of scope (the bot should not "
        "answer it), or ignore it:",
        "zh": "请把它对应到一个答案、写一个新答案、标记为超出范围（机器人不应回答），或者忽略：",
    },
    "review_confirmed_title": {
        "en": "Review (1 of {count}): users confirmed this answer with 👍 (wordings: {n}):\n"
        "{answer}",
        "zh": "审核（共 {count} 个，第 1 个）：用户用 👍 确认了这个答案（{n} 种问法）：\n{answer}",
    },
    "review_confirmed_questions": {
        "en": "Questions (asked {count}×): {questions}",
        "zh": "问题（被问了 {count} 次）：{questions}",
    },
    "review_confirmed_decide": {
        "en": "Approve them all with this answer (they join the training set), or ignore them:",
        "zh": "全部批准为这个答案（加入训练集），或者忽略：",
    },
    "review_approve_all_button": {"en": "✅ Approve all {n}", "zh": "✅ 全部批准（{n} 个）"},
    "review_confirmed_gone": {
        "en": "These questions are no longer waiting for approval (decided already, or someone "
        "rated them 👎 since). /review for the next one.",
        "zh": "这些问题已经不在等待批准了（已经处理过，或之后有人点了 👎）。"
        "发送 /review 查看下一个。",
    },
    "review_chosen_button": {"en": "👆 {answer} (chosen ×{n})", "zh": "👆 {answer}（被选 {n} 次）"},
    "review_write_button": {"en": "✍️ Write an answer", "zh": "✍️ 写一个答案"},
    "review_out_of_scope_button": {"en": "🙅 Out of scope", "zh": "🙅 超出范围"},
    "review_ignore_button": {"en": "🚫 Ignore", "zh": "🚫 忽略"},
    "review_ignored": {
        "en": "Ignored: {questions}. /review for the next one.",
        "zh": "已忽略：{questions}。发送 /review 查看下一个。",
    },
    "review_out_of_scope": {
        "en": "Out of scope: {questions}. They join the training set as questions I should not "
        "answer; /retrain teaches the model to fall back on them. /review for the next one.",
        "zh": "超出范围：{questions}。它们会作为我不应回答的问题加入训练集；/retrain "
        "会让模型对它们不作回答。发送 /review 查看下一个。",
    },
    "review_answer_unknown": {
        "en": "That answer is no longer known; /review again.",
        "zh": "这个答案已经不存在了，请重新发送 /review。",
    },
    "review_question_gone": {
        "en": "That question is no longer in the log.",
        "zh": "这个问题已经不在记录中了。",
    },
    "review_approved": {
        "en": "Approved: {questions} → {answer}. It is answered now and joins the training set; "
        "/retrain teaches the model. /review for the next one.",
        "zh": "已批准：{questions} → {answer}。现在就会这样回答，并加入训练集；/retrain "
        "会教给模型。发送 /review 查看下一个。",
    },
    "review_already_decided": {
        "en": "{questions} was already decided. /review for the next one.",
        "zh": "{questions} 已经处理过了。发送 /review 查看下一个。",
    },
    # -- the support chat
    "support_copy": {
        "en": "🙋 Question #{id} from {name}, language {language}:\n{question}\n\n"
        "Reply to this message to answer: your reply goes to them.",
        "zh": "🙋 问题 #{id}，来自 {name}，语言 {language}：\n{question}\n\n"
        "回复这条消息即可回答：你的回复会发给提问者。",
    },
    "support_unknown_language": {"en": "unknown", "zh": "未知"},
    "support_not_sent": {
        "en": "❌ Could not send it to them: {error}",
        "zh": "❌ 无法发送给提问者：{error}",
    },
    "support_sent": {"en": "✅ Sent to the asker of #{id}.", "zh": "✅ 已发送给 #{id} 的提问者。"},
    "support_none_open": {"en": "No open questions. 🎉", "zh": "没有待回答的问题。🎉"},
    "support_open": {
        "en": "Open questions ({count}), oldest first; reply to a question to answer:",
        "zh": "待回答的问题（{count} 个），最早的在前；回复某个问题即可回答：",
    },
    "support_open_line": {
        "en": "#{id} · {minutes} min · {question}",
        "zh": "#{id} · {minutes} 分钟 · {question}",
    },
}

# A model's figures (/models, /retrain): the English words are model.figures.WORDS, which
# `qabot models`, `qabot train` and `qabot eval` print.
_FIGURES_ZH = {
    "in_scope_accuracy": "范围内问题准确率 {value}",
    "oos_recall": "范围外问题识别率 {value}",
    "answered_or_suggested": "正确答案被直接给出或在建议中 {value}",
    "suggested_rate": "（{value} 的范围内问题给出了建议）",
    "on_given": "基于 {count} 个验证问题",
    "on_holdout": "基于 {count} 个留出问题",
    "on_refit": "基于 {count} 个留出问题，之后用全部问答对重新训练",
    "on_evaluation": "基于 {count} 个问题",
    "on_cross_validation": "基于 {count} 个问题的交叉验证",
    "on_other": "基于 {count} 个问题（{kind}）",
    "separator": "，",
    "none": "没有验证指标（训练时未做验证）",
}
TEXTS.update(
    {f"figures_{key}": {"en": english, "zh": _FIGURES_ZH[key]} for key, english in WORDS.items()}
)

# The data checks' report (/retrain): the English words are model.data_checks.WORDS, which
# `qabot train` prints. Chinese has no plural: both forms of a count read the same.
_ADVICE_ZH = "请添加问题，至少要有两个不同的答案（每个答案配几种问法），然后重新训练。"
_DATA_ZH = {
    "head": "数据：{questions}，{answers}，{out_of_scope}",
    "n_questions.one": "{n} 个问题",
    "n_questions.other": "{n} 个问题",
    "n_answers.one": "{n} 个答案",
    "n_answers.other": "{n} 个答案",
    "n_out_of_scope.one": "{n} 个超出范围的问题",
    "n_out_of_scope.other": "{n} 个超出范围的问题",
    checks.ERROR: "错误",
    checks.WARNING: "警告",
    "finding": "{severity}：{message}",
    "list_separator": "、",
    "and_more": "等另外 {n} 个",
    "alternatives_separator": " / ",
    f"{checks.TOO_FEW_ANSWERS}.no_questions": "数据里没有任何问题。" + _ADVICE_ZH,
    f"{checks.TOO_FEW_ANSWERS}.all_out_of_scope": "所有问题的答案都是空的（超出范围）："
    "没有可以回答的内容。" + _ADVICE_ZH,
    f"{checks.TOO_FEW_ANSWERS}.single_answer": "数据里只有一个答案：只会一个答案的机器人会用它"
    "回答所有问题。" + _ADVICE_ZH,
    checks.SINGLE_WORDING: "{total} 个答案中有 {count} 个只有一种问法（{questions}）："
    "机器人只能识别几乎逐字相同的提问。请为每个答案再补充两三种问法。",
    checks.CONFLICTING_QUESTION: "问题“{question}”对应 {count} 个不同的答案：机器人只能学会"
    "其中一个。请只保留正确的答案，或者改写这些问题，让它们有所区别。",
    f"{checks.CONFLICTING_QUESTION}.with_out_of_scope": "问题“{question}”对应 {count} 个"
    "不同的答案（其中一个标记为超出范围）：机器人只能学会其中一个。请只保留正确的答案，"
    "或者改写这些问题，让它们有所区别。",
    checks.NEAR_DUPLICATE_ANSWERS: "有 {count} 个答案的文字几乎相同（{texts}；对应的问题："
    "{questions}）：机器人会把这些问题分散到几个答案上，回答时拿不定主意。"
    "请让这些问题都使用同一个答案文本。",
    checks.SHORT_ENTRY: "有 {count_questions}少于 {limit} 个字母或数字（{questions}）："
    "内容太少，学不到东西。请按用户实际的问法来写。",
    f"{checks.LONG_ENTRY}.questions": "有 {count_questions}超过 {limit} 个字符（{questions}）："
    "关键的词会被其余内容淹没。只保留问题本身，把解释移到答案里。",
    f"{checks.LONG_ENTRY}.answers": "有 {count_answers}超过 {limit} 个字符（{answers}）："
    "机器人会在那里截断，因为 Telegram 不接受更长的消息。请缩短答案，或者改为附上网页链接。",
}
TEXTS.update(
    {f"data_{key}": {"en": english, "zh": _DATA_ZH[key]} for key, english in checks.WORDS.items()}
)


def text(key: str, lang: str = "en", **values: object) -> str:
    return TEXTS[key][lang].format(**values)


class CatalogError(Exception):
    """An error said in the catalog's words: in English as the exception's text (logs, `qabot`),
    in the reader's language where the bot shows it (in_language)."""

    def __init__(self, key: str, **values: object) -> None:
        self.key, self.values = key, values
        super().__init__(text(key, "en", **values))

    def in_language(self, lang: str) -> str:
        return text(self.key, lang, **self.values)


def figure_words(lang: str) -> dict[str, str]:
    """model.figures' words in this language (format_figures(metrics, figure_words(lang)))."""
    return {key: TEXTS[f"figures_{key}"][lang] for key in WORDS}


def data_words(lang: str) -> dict[str, str]:
    """model.data_checks' words in this language (report.lines(data_words(lang)))."""
    return {key: TEXTS[f"data_{key}"][lang] for key in checks.WORDS}
