"""An in-process fake of the Telegram Bot API that the real python-telegram-bot talks to.

`FakeTelegram` serves the Bot API on 127.0.0.1 (a free port) with aiohttp. Tests play the users:
they send updates (`send_text`, `send_document`, `press_button`, ...), the bot receives them by
long polling or by webhook, and everything the bot calls is recorded (`calls`) and answered with
Telegram-shaped JSON. Messages the bot sends are stored per chat (`next_reply`, `replies`) and
edits update them in place, so a test always sees a message's latest text and keyboard.

python-telegram-bot sends every parameter as a form field (multipart when files are uploaded):
strings as they are, everything else JSON-encoded (`chat_id=1001`, `reply_markup={...}`).
`_decode_form_value` turns them back into Python values.

All methods must be awaited on the event loop that started the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import PurePosixPath
from typing import Any, Literal

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from telegram.ext import Application, ApplicationBuilder

JsonDict = dict[str, Any]

# Form fields whose values are plain strings even when they look like JSON ("123", "true").
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "inline_message_id", "url",
        "secret_token", "action", "file_id", "emoji", "title", "description", "language_code",
        "message_effect_id", "business_connection_id", "ip_address", "query_id", "question",
        "document", "photo", "audio", "voice", "video", "animation", "sticker", "video_note",
        "thumbnail",
    }
)  # fmt: skip

# Required fields of each media object besides file ids and size, as Telegram sends them.
_MEDIA_EXTRAS: dict[str, JsonDict] = {
    "document": {},
    "photo": {"width": 640, "height": 480},
    "audio": {"duration": 1},
    "voice": {"duration": 1},
    "video": {"width": 640, "height": 360, "duration": 1},
    "animation": {"width": 320, "height": 240, "duration": 1},
    "video_note": {"length": 240, "duration": 1},
    "sticker": {
        "width": 512, "height": 512, "is_animated": False, "is_video": False, "type": "regular",
    },
}  # fmt: skip

_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
     "code", "pre", "blockquote", "tg-emoji"}
)  # fmt: skip

_COMMAND_PATTERN = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,})?(?![\w@/])")
_BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
_WEBHOOK_RETRY_FIRST, _WEBHOOK_RETRY_MAX = 0.02, 0.5


class ApiError(Exception):
    """An error answer of the Bot API: the HTTP status doubles as Telegram's error_code."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def to_api(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(reason: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {reason}")


def _without_none(data: JsonDict) -> JsonDict:
    return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class FakeChat:
    """A chat as Telegram describes it; a private chat's id is its user's id."""

    id: int
    type: Literal["private", "group", "supergroup"]
    title: str | None = None
    first_name: str | None = None
    username: str | None = None

    def to_api(self) -> JsonDict:
        return _without_none(
            {"id": self.id, "type": self.type, "title": self.title,
             "first_name": self.first_name, "username": self.username}
        )  # fmt: skip


@dataclass(frozen=True)
class FakeUser:
    """A human Telegram user played by a test."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    @property
    def chat(self) -> FakeChat:
        """The user's private chat with the bot."""
        return FakeChat(self.id, "private", first_name=self.first_name, username=self.username)

    def to_api(self) -> JsonDict:
        return _without_none(
            {"id": self.id, "is_bot": False, "first_name": self.first_name,
             "last_name": self.last_name, "username": self.username,
             "language_code": self.language_code}
        )  # fmt: skip


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    filename: str | None
    content: bytes
    mime_type: str | None


@dataclass(frozen=True)
class FakeFile:
    """A file known to the server, downloadable by the bot at `file_path` after getFile."""

    file_id: str
    file_unique_id: str
    file_path: str
    filename: str | None
    content: bytes
    mime_type: str | None

    def to_api(self, kind: str) -> JsonDict | list[JsonDict]:
        """The media object of a message (`kind` is "document", "photo", "voice", ...)."""
        described = _without_none(
            {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
             "file_size": len(self.content), **_MEDIA_EXTRAS[kind]}
        )  # fmt: skip
        if kind == "photo":
            return [described]
        return {**described, **_without_none({"file_name": self.filename,
                                              "mime_type": self.mime_type})}  # fmt: skip


@dataclass
class Call:
    """One Bot API request the bot made, as the server understood and answered it."""

    method: str
    params: JsonDict
    files: dict[str, UploadedFile]
    time: float  # time.monotonic() on arrival
    token: str = field(repr=False)
    status: int = HTTPStatus.OK
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK


@dataclass
class BotMessage:
    """A message the bot sent; edits and deletion update it in place."""

    chat: FakeChat
    message_id: int
    method: str
    date: int
    text: str | None = None  # as the bot sent it, markup included
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: JsonDict | None = None  # any kind of keyboard, parsed
    reply_to_message_id: int | None = None
    files: dict[str, FakeFile] = field(default_factory=dict)  # by media kind
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def document(self) -> FakeFile | None:
        return self.files.get("document")

    @property
    def photo(self) -> bytes | None:
        photo = self.files.get("photo")
        return photo.content if photo else None

    @property
    def buttons(self) -> list[JsonDict]:
        """All buttons of the keyboard (inline or reply), row after row."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [button if isinstance(button, dict) else {"text": button}
                for row in rows for button in row]  # fmt: skip

    def find_button(self, *, callback_data: str | None = None, text: str | None = None) -> JsonDict:
        """The button with this callback data or this text; LookupError when there is none."""
        for button in self.buttons:
            if (callback_data is not None and button.get("callback_data") == callback_data) or (
                text is not None and button.get("text") == text
            ):
                return button
        wanted = callback_data if callback_data is not None else text
        raise LookupError(f"no button {wanted!r} on message {self.message_id}: {self.buttons}")

    def to_api(self, bot_user: JsonDict) -> JsonDict:
        message: JsonDict = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": self.chat.to_api(),
            "from": bot_user,
        }
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.text is not None:
            message["text"] = self.text
        if self.caption is not None:
            message["caption"] = self.caption
        for kind, stored in self.files.items():
            message[kind] = stored.to_api(kind)
        # Telegram echoes only inline keyboards back in Message objects.
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message


@dataclass(frozen=True)
class SentUpdate:
    """An update a test sent to the bot."""

    update_id: int
    payload: JsonDict  # the whole update as the bot receives it
    chat_id: int
    message_id: int | None = None
    callback_query_id: str | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the bot's webhook."""

    update_id: int
    status: int | None  # None when the connection failed
    error: str | None = None


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    remaining: int


@dataclass(frozen=True)
class _Webhook:
    url: str
    secret_token: str | None


def _decode_form_value(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _read_params(request: web.Request) -> tuple[JsonDict, dict[str, UploadedFile]]:
    """The request's parameters from its query, JSON, urlencoded or multipart body."""
    params: JsonDict = {name: _decode_form_value(name, value)
                        for name, value in request.query.items()}  # fmt: skip
    files: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
        return params, files
    for name, value in (await request.post()).items():
        if isinstance(value, web.FileField):
            files[name] = UploadedFile(value.filename, value.file.read(), value.content_type)
        else:
            params[name] = _decode_form_value(
                name, str(value, "utf-8") if isinstance(value, bytes | bytearray) else value
            )
    return params, files


class _TelegramHtml(HTMLParser):
    """Checks text the way Telegram parses parse_mode=HTML and collects its plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_tags: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags or self.open_tags[-1] != tag:
            raise _bad_request(f'can\'t parse entities: Unmatched end tag "{tag}"')
        self.open_tags.pop()

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def _plain_text(text: str, parse_mode: str | None) -> str:
    """The text a user would see; raises Telegram's error for malformed HTML."""
    if (parse_mode or "").upper() != "HTML":
        return text
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.open_tags:
        raise _bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.open_tags[-1]}"'
        )
    return "".join(parser.plain)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[JsonDict]:
    """bot_command entities like a Telegram client adds them (offsets in UTF-16 units)."""
    return [
        {"type": "bot_command", "offset": _utf16_length(text[: match.start()]),
         "length": _utf16_length(match.group())}
        for match in _COMMAND_PATTERN.finditer(text)
    ]  # fmt: skip


def _mention_entities(text: str) -> list[JsonDict]:
    """mention entities for @usernames, as Telegram adds them."""
    return [
        {"type": "mention", "offset": _utf16_length(text[: match.start()]),
         "length": _utf16_length(match.group())}
        for match in re.finditer(r"(?<!\w)@\w{5,32}", text)
    ]  # fmt: skip


def _check_reply_markup(markup: JsonDict | None) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


Handler = Callable[[JsonDict, dict[str, UploadedFile]], Awaitable[Any]]


class FakeTelegram:
    """The fake Bot API server; use `async with FakeTelegram(token=...) as tg:`."""

    def __init__(
        self, token: str, *, bot_username: str = "qabot_test_bot", bot_name: str = "QA Bot"
    ) -> None:
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user: JsonDict = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.calls: list[Call] = []
        self.downloads: list[str] = []  # file paths the bot downloaded
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._webhook_worker: asyncio.Task[None] | None = None
        self._closing = False
        self._ids = itertools.count(1)  # update, callback query and file numbers
        self._pending: list[JsonDict] = []  # updates not yet confirmed or delivered
        self._updates_changed = asyncio.Condition()
        self._webhook: _Webhook | None = None
        self._chats: dict[int, FakeChat] = {}
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._deleted: set[tuple[int, int]] = set()
        self._messages: dict[tuple[int, int], BotMessage] = {}
        self._reply_queues: defaultdict[int, asyncio.Queue[BotMessage]] = defaultdict(asyncio.Queue)
        self._files_by_id: dict[str, FakeFile] = {}
        self._files_by_path: dict[str, FakeFile] = {}
        self._open_callback_queries: set[str] = set()
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._member_status: dict[tuple[int, int], str] = {}  # (chat, user) → status
        self._faults: defaultdict[str, list[_Fault]] = defaultdict(list)
        self._call_waiters: list[tuple[Callable[[Call], bool], asyncio.Future[Call]]] = []
        self._handlers: dict[str, Handler] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "logout": self._accept,
            "close": self._accept,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "sendchataction": self._accept,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "deletemessage": self._delete_message,
            "getfile": self._get_file,
            "getchatmember": self._get_chat_member,
        }
        for kind in _MEDIA_EXTRAS:
            method = "send" + kind.replace("_", "")
            self._handlers[method] = self._media_sender(kind)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the fake Telegram server is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file_download)
        # No access log: request paths contain the token. A client that gives up on a long
        # poll cancels its handler, so no stale getUpdates lingers.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._session = ClientSession(timeout=ClientTimeout(total=60))
        self._webhook_worker = asyncio.create_task(self._deliver_to_webhook())

    async def stop(self) -> None:
        self._closing = True
        async with self._updates_changed:
            self._updates_changed.notify_all()  # long polls answer now
        if self._webhook_worker:
            self._webhook_worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_worker
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def application_builder(self) -> ApplicationBuilder:
        """An ApplicationBuilder whose bot talks to this server."""
        return (
            ApplicationBuilder()
            .token(self.token)
            .base_url(f"{self.url}/bot")
            .base_file_url(f"{self.url}/file/bot")
        )

    # -- the test plays users ----------------------------------------------------------------

    def user(
        self,
        id: int,  # Telegram's name for it
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> FakeUser:
        """A user whose private chat with the bot has the user's id."""
        user = FakeUser(id, first_name, last_name, username, language_code)
        self._chats[user.id] = user.chat
        return user

    def group(
        self,
        id: int,  # Telegram's name for it
        title: str = "Test group",
        *,
        type: Literal["group", "supergroup"] = "supergroup",
    ) -> FakeChat:
        """A group chat the bot is a member of; pass it as `chat=` when sending."""
        chat = FakeChat(id, type, title=title)
        self._chats[chat.id] = chat
        return chat

    def set_member_status(
        self,
        chat: FakeChat,
        user: FakeUser,
        status: Literal["creator", "administrator", "member", "left"],
    ) -> None:
        """What getChatMember says of the user in the group (default: "member")."""
        self._member_status[(chat.id, user.id)] = status

    async def send_text(
        self,
        user: FakeUser,
        text: str,
        *,
        chat: FakeChat | None = None,
        reply_to: BotMessage | None = None,
        formatting: Sequence[JsonDict] = (),
    ) -> SentUpdate:
        """A text message (optionally a reply to a bot message); commands and mentions in it
        get their entities as in Telegram's apps; `formatting`: more entities (bold, links,
        ...; offsets in UTF-16 units), as an app sends for formatted text."""
        content: JsonDict = {"text": text}
        if reply_to is not None:
            content["reply_to_message"] = reply_to.to_api(self.bot_user)
        if entities := _command_entities(text) + _mention_entities(text) + list(formatting):
            content["entities"] = entities
        return await self._send_user_message(user, chat, content)

    async def send_command(
        self, user: FakeUser, command: str, *, chat: FakeChat | None = None
    ) -> SentUpdate:
        """A command such as "/start" or "/teach q | a"."""
        if not _COMMAND_PATTERN.match(command):
            raise ValueError(f"not a bot command: {command!r}")
        return await self.send_text(user, command, chat=chat)

    async def send_document(
        self,
        user: FakeUser,
        filename: str,
        content: bytes,
        caption: str | None = None,
        *,
        mime_type: str | None = None,
        chat: FakeChat | None = None,
    ) -> SentUpdate:
        """A document the bot can download with getFile."""
        return await self._send_user_media(
            user, chat, "document", filename, content, mime_type, caption
        )

    async def send_photo(
        self,
        user: FakeUser,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        caption: str | None = None,
        *,
        chat: FakeChat | None = None,
    ) -> SentUpdate:
        return await self._send_user_media(user, chat, "photo", None, content, None, caption)

    async def send_voice(
        self, user: FakeUser, content: bytes = b"OggS fake voice", *, chat: FakeChat | None = None
    ) -> SentUpdate:
        return await self._send_user_media(user, chat, "voice", None, content, "audio/ogg", None)

    async def send_sticker(
        self, user: FakeUser, emoji: str = "👍", *, chat: FakeChat | None = None
    ) -> SentUpdate:
        stored = self._store_file("sticker", None, b"RIFF fake webp", "image/webp")
        media = stored.to_api("sticker")
        assert isinstance(media, dict)  # a list for photos only
        media = {**media, "emoji": emoji}
        return await self._send_user_message(user, chat, {"sticker": media})

    async def send_edited_text(self, user: FakeUser, original: SentUpdate, text: str) -> SentUpdate:
        """The user edits a text message sent earlier: an edited_message update."""
        if original.message_id is None:
            raise ValueError("only messages can be edited")
        message = {
            **original.payload["message"],
            "text": text,
            "edit_date": int(time.time()),
        }
        message.pop("entities", None)
        if entities := _command_entities(text):
            message["entities"] = entities
        return await self._push({"edited_message": message}, original.chat_id, original.message_id)

    async def press_button(
        self,
        user: FakeUser,
        message: BotMessage,
        callback_data: str | None = None,
        *,
        text: str | None = None,
    ) -> SentUpdate:
        """The user presses an inline button of the message's current keyboard.

        Pick the button by its callback data or by its text (with arbitrary callback data the
        test cannot know the data)."""
        if (callback_data is None) == (text is None):
            raise ValueError("give exactly one of callback_data and text")
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        button = message.find_button(callback_data=callback_data, text=text)
        query_id = str(next(self._ids))
        self._open_callback_queries.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": message.to_api(self.bot_user),
            "chat_instance": str(message.chat_id),
            "data": button["callback_data"],
        }
        return await self._push(
            {"callback_query": query}, message.chat_id, callback_query_id=query_id
        )

    async def send_update(self, update: JsonDict, chat_id: int = 0) -> SentUpdate:
        """Any other update (without update_id; the server numbers it)."""
        return await self._push(update, chat_id)

    async def post_to_webhook(self, update: JsonDict, secret_token: str | None) -> int | None:
        """POST an update to the registered webhook with this secret; the HTTP status."""
        if self._webhook is None:
            raise RuntimeError("no webhook is set")
        return (await self._post_update(self._webhook.url, update, secret_token)).status

    # -- the test inspects what the bot did --------------------------------------------------

    async def next_reply(
        self, target: FakeUser | FakeChat | int, timeout: float = 60
    ) -> BotMessage:
        """The next message the bot sends to this chat (any send* method), in order."""
        chat_id = target if isinstance(target, int) else target.id
        try:
            async with asyncio.timeout(timeout):
                return await self._reply_queues[chat_id].get()
        except TimeoutError:
            seen = [call.method for call in self.calls if call.params.get("chat_id") == chat_id]
            raise TimeoutError(
                f"the bot sent nothing new to chat {chat_id} within {timeout}s; "
                f"its calls for that chat: {seen}"
            ) from None

    def replies(self, target: FakeUser | FakeChat | int) -> list[BotMessage]:
        """Every message the bot sent to this chat, oldest first, in its latest state."""
        chat_id = target if isinstance(target, int) else target.id
        return [message for message in self._messages.values() if message.chat_id == chat_id]

    def message(self, target: FakeUser | FakeChat | int, message_id: int) -> BotMessage:
        chat_id = target if isinstance(target, int) else target.id
        return self._messages[(chat_id, message_id)]

    async def wait_for(
        self, predicate: Callable[[Call], bool], timeout: float = 60, *, since: int = 0
    ) -> Call:
        """The first call from index `since` of `calls` on that matches, waiting if needed."""
        for call in self.calls[since:]:
            if predicate(call):
                return call
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._call_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            methods = [call.method for call in self.calls[since:]]
            raise TimeoutError(
                f"no matching call within {timeout}s; calls since: {methods[-30:]}"
            ) from None
        finally:
            self._call_waiters.remove(waiter)

    @property
    def unknown_calls(self) -> list[Call]:
        """Calls of methods this fake does not implement (answered with `true`)."""
        return [call for call in self.calls if call.method.lower() not in self._handlers]

    def bot_commands(
        self, scope: JsonDict | None = None, language_code: str = ""
    ) -> list[JsonDict]:
        """The command list the bot set with setMyCommands for this scope and language."""
        return self._commands.get(self._commands_key(scope, language_code), [])

    @property
    def webhook_url(self) -> str | None:
        return self._webhook.url if self._webhook else None

    def fail(
        self,
        method: str,
        *,
        status: int = HTTPStatus.INTERNAL_SERVER_ERROR,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail; faults queue up in order.

        `fail("sendMessage", status=429, retry_after=1)` answers like Telegram's flood control.
        """
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == HTTPStatus.TOO_MANY_REQUESTS
                else f"{HTTPStatus(status).phrase}: injected fault"
            )
        self._faults[method.lower()].append(_Fault(status, description, retry_after, times))

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files, time.monotonic(), token=request.match_info["token"])
        try:
            if call.token != self.token:
                raise ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            self._raise_injected_fault(method)
            handler = self._handlers.get(method.lower(), self._accept)
            call.result = await handler(params, files)
            body: JsonDict = {"ok": True, "result": call.result}
        except ApiError as error:
            call.status, call.error = error.status, error.description
            body = error.to_api()
        self._record(call)
        return web.json_response(body, status=call.status)

    async def _handle_file_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").to_api(), status=401)
        file_path = request.match_info["file_path"]
        stored = self._files_by_path.get(file_path)
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").to_api(), status=404)
        self.downloads.append(file_path)
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    def _raise_injected_fault(self, method: str) -> None:
        faults = self._faults.get(method.lower())
        if not faults:
            return
        fault = faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            faults.pop(0)
        raise ApiError(fault.status, fault.description, fault.retry_after)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        for predicate, future in self._call_waiters:
            if future.done():
                continue
            try:
                if predicate(call):
                    future.set_result(call)
            except Exception as error:  # surfaced to the waiting test, not to the bot
                future.set_exception(error)

    # -- updates -----------------------------------------------------------------------------

    async def _push(
        self,
        payload: JsonDict,
        chat_id: int,
        message_id: int | None = None,
        callback_query_id: str | None = None,
    ) -> SentUpdate:
        update = {"update_id": next(self._ids), **payload}
        async with self._updates_changed:
            self._pending.append(update)
            self._updates_changed.notify_all()
        return SentUpdate(update["update_id"], update, chat_id, message_id, callback_query_id)

    async def _send_user_message(
        self, user: FakeUser, chat: FakeChat | None, content: JsonDict
    ) -> SentUpdate:
        chat = chat or user.chat
        self._chats.setdefault(chat.id, chat)
        message_id = self._new_message_id(chat.id)
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat.to_api(),
            "from": user.to_api(),
            **content,
        }
        return await self._push({"message": message}, chat.id, message_id)

    async def _send_user_media(
        self,
        user: FakeUser,
        chat: FakeChat | None,
        kind: str,
        filename: str | None,
        content: bytes,
        mime_type: str | None,
        caption: str | None,
    ) -> SentUpdate:
        stored = self._store_file(kind, filename, content, mime_type)
        message = _without_none({kind: stored.to_api(kind), "caption": caption})
        return await self._send_user_message(user, chat, message)

    def _new_message_id(self, chat_id: int) -> int:
        # Like Telegram's private chats: one sequence for both sides of a chat.
        self._last_message_id[chat_id] += 1
        return self._last_message_id[chat_id]

    def _store_file(
        self, kind: str, filename: str | None, content: bytes, mime_type: str | None
    ) -> FakeFile:
        number = next(self._ids)
        suffix = PurePosixPath(filename or "").suffix
        if not _SAFE_SUFFIX.fullmatch(suffix):
            suffix = ""  # file paths stay plain ASCII in URLs
        stored = FakeFile(
            file_id=f"fake-{kind}-{number}",
            file_unique_id=f"unique-{number}",
            file_path=f"{kind}s/file_{number}{suffix}",
            filename=filename,
            content=content,
            mime_type=mime_type,
        )
        self._files_by_id[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _confirm_updates(self, offset: int) -> None:
        """Forget updates before `offset` as getUpdates does (a negative offset counts back)."""
        if offset < 0:
            del self._pending[:offset]
        elif offset > 0:
            self._pending = [update for update in self._pending if update["update_id"] >= offset]

    async def _get_updates(self, params: JsonDict, files: dict[str, UploadedFile]) -> Any:
        if self._webhook is not None:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = float(params.get("timeout") or 0)
        async with self._updates_changed:
            self._confirm_updates(int(params.get("offset") or 0))
            if not self._pending and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._updates_changed.wait_for(
                            lambda: bool(self._pending) or self._closing
                        )
            return self._pending[:limit]

    # -- webhook -----------------------------------------------------------------------------

    async def _set_webhook(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        if not params.get("url"):
            return await self._delete_webhook(params, files)
        async with self._updates_changed:
            if params.get("drop_pending_updates"):
                self._pending.clear()
            self._webhook = _Webhook(params["url"], params.get("secret_token"))
            self._updates_changed.notify_all()
        return True

    async def _delete_webhook(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        async with self._updates_changed:
            if params.get("drop_pending_updates"):
                self._pending.clear()
            self._webhook = None
        return True

    async def _get_webhook_info(self, params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
        return {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _deliver_to_webhook(self) -> None:
        """POST pending updates to the webhook one at a time, retrying failures with backoff."""
        retry_delay = _WEBHOOK_RETRY_FIRST
        while True:
            async with self._updates_changed:
                await self._updates_changed.wait_for(
                    lambda: self._webhook is not None and bool(self._pending)
                )
                url, secret_token = self._webhook.url, self._webhook.secret_token
                update = self._pending[0]
            delivery = await self._post_update(url, update, secret_token)
            self.webhook_deliveries.append(delivery)
            if delivery.status is not None and 200 <= delivery.status < 300:
                retry_delay = _WEBHOOK_RETRY_FIRST
                with contextlib.suppress(ValueError):  # dropped meanwhile
                    self._pending.remove(update)
            else:
                # The bot's webhook server may not listen yet: setWebhook comes first.
                await asyncio.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, _WEBHOOK_RETRY_MAX)

    async def _post_update(
        self, url: str, update: JsonDict, secret_token: str | None
    ) -> WebhookDelivery:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        try:
            async with self._session.post(url, data=json.dumps(update), headers=headers) as answer:
                await answer.read()
                return WebhookDelivery(update["update_id"], answer.status)
        except (ClientError, TimeoutError) as error:
            return WebhookDelivery(update["update_id"], None, repr(error))

    # -- bot methods -------------------------------------------------------------------------

    async def _accept(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        return True

    async def _get_me(self, params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    @staticmethod
    def _commands_key(scope: JsonDict | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""

    async def _set_my_commands(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands") or []
        for command in commands:
            if not _BOT_COMMAND_NAME.fullmatch(command.get("command", "")):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = commands
        return True

    async def _get_my_commands(self, params: JsonDict, files: dict[str, UploadedFile]) -> Any:
        return self.bot_commands(params.get("scope"), params.get("language_code") or "")

    async def _delete_my_commands(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        self._commands.pop(
            self._commands_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    def _target_chat(self, params: JsonDict) -> FakeChat:
        chat_id: Any = params.get("chat_id")  # JSON: any type, or missing
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _new_bot_message(
        self, method: str, params: JsonDict, files: dict[str, FakeFile] | None = None
    ) -> JsonDict:
        """Validate, store and announce a message the bot sends; its API object."""
        chat = self._target_chat(params)
        caption, parse_mode = params.get("caption"), params.get("parse_mode")
        if caption is not None and len(_plain_text(caption, parse_mode)) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        _check_reply_markup(params.get("reply_markup"))
        reply_parameters = params.get("reply_parameters") or {}
        message = BotMessage(
            chat=chat,
            message_id=self._new_message_id(chat.id),
            method=method,
            date=int(time.time()),
            text=params.get("text"),
            caption=caption,
            parse_mode=parse_mode,
            reply_markup=params.get("reply_markup"),
            reply_to_message_id=reply_parameters.get(
                "message_id", params.get("reply_to_message_id")
            ),
            files=files or {},
        )
        self._messages[(chat.id, message.message_id)] = message
        self._reply_queues[chat.id].put_nowait(message)
        return message.to_api(self.bot_user)

    @staticmethod
    def _check_text(text: Any, parse_mode: str | None) -> None:
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        if len(_plain_text(text, parse_mode)) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")

    async def _send_message(self, params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
        self._check_text(params.get("text"), params.get("parse_mode"))
        return self._new_bot_message("sendMessage", params)

    def _media_sender(self, kind: str) -> Handler:
        method = "send" + "".join(part.title() for part in kind.split("_"))

        async def send_media(params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
            stored = self._resolve_input_file(kind, params.get(kind), files)
            return self._new_bot_message(method, params, {kind: stored})

        return send_media

    def _resolve_input_file(
        self, kind: str, value: Any, files: dict[str, UploadedFile]
    ) -> FakeFile:
        """The file a send* call refers to: an upload, an attach:// part, a file_id or a URL."""
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        else:
            upload = files.get(kind)
        if upload is not None:
            return self._store_file(kind, upload.filename, upload.content, upload.mime_type)
        if isinstance(value, str) and value in self._files_by_id:
            return self._files_by_id[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self._store_file(kind, value.rsplit("/", 1)[-1], b"", None)
        raise _bad_request(f"there is no {kind} in the request")

    def _bot_message_to_edit(self, params: JsonDict) -> BotMessage:
        chat = self._target_chat(params)
        message_id: Any = params.get("message_id")  # JSON: any type, or missing
        message = self._messages.get((chat.id, message_id))
        if message is None or message.deleted:
            raise _bad_request("message to edit not found")
        return message

    def _apply_edit(
        self, message: BotMessage, text: str | None, markup: JsonDict | None
    ) -> JsonDict:
        if text == message.text and markup == message.reply_markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.text, message.reply_markup = text, markup
        message.edits += 1
        message.edit_date = int(time.time())
        return message.to_api(self.bot_user)

    async def _edit_message_text(self, params: JsonDict, files: dict[str, UploadedFile]) -> Any:
        if "inline_message_id" in params:
            return True
        message = self._bot_message_to_edit(params)
        if message.text is None:
            raise _bad_request("there is no text in the message to edit")
        self._check_text(params.get("text"), params.get("parse_mode"))
        _check_reply_markup(params.get("reply_markup"))
        message.parse_mode = params.get("parse_mode")
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(message, params["text"], params.get("reply_markup"))

    async def _edit_message_reply_markup(
        self, params: JsonDict, files: dict[str, UploadedFile]
    ) -> Any:
        if "inline_message_id" in params:
            return True
        message = self._bot_message_to_edit(params)
        _check_reply_markup(params.get("reply_markup"))
        return self._apply_edit(message, message.text, params.get("reply_markup"))

    async def _answer_callback_query(
        self, params: JsonDict, files: dict[str, UploadedFile]
    ) -> bool:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_callback_queries:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self._open_callback_queries.discard(query_id)
        return True

    async def _delete_message(self, params: JsonDict, files: dict[str, UploadedFile]) -> bool:
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or not 0 < message_id <= self._last_message_id[chat.id]:
            raise _bad_request("message to delete not found")
        key = (chat.id, message_id)
        if key in self._deleted:
            raise _bad_request("message to delete not found")
        self._deleted.add(key)
        if key in self._messages:
            self._messages[key].deleted = True
        return True

    async def _get_chat_member(self, params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
        chat = self._target_chat(params)
        user_id: Any = params.get("user_id")  # JSON: any type, or missing
        status = self._member_status.get((chat.id, user_id), "member")
        user = {"id": user_id, "is_bot": False, "first_name": "Member"}
        if status == "administrator":  # the rights ChatMemberAdministrator requires
            rights = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                      "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                      "can_change_info", "can_invite_users", "can_post_stories",
                      "can_edit_stories", "can_delete_stories")  # fmt: skip
            return {"status": status, "user": user, **dict.fromkeys(rights, False)}
        if status == "creator":
            return {"status": status, "user": user, "is_anonymous": False}
        return {"status": status, "user": user}

    async def _get_file(self, params: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
        stored = self._files_by_id.get(params.get("file_id", ""))
        if stored is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }


@contextlib.asynccontextmanager
async def running_application(
    app: Application,
    tg: FakeTelegram,
    *,
    mode: Literal["polling", "webhook"] = "polling",
    poll_timeout: int = 10,
    secret_token: str | None = None,
    url_path: str = "telegram-webhook",
) -> AsyncIterator[Application]:
    """Initialize and start `app` against `tg`, fetching updates by polling or webhook;
    stop and shut it down on exit."""
    if not app.bot.base_url.startswith(tg.url):
        raise ValueError("the application's bot does not talk to this fake server")
    if app.updater is None:
        raise ValueError("the application needs an Updater")
    async with app:
        await app.start()
        try:
            if mode == "polling":
                await app.updater.start_polling(poll_interval=0, timeout=poll_timeout)
            else:
                port = free_port()
                await app.updater.start_webhook(
                    listen="127.0.0.1",
                    port=port,
                    url_path=url_path,
                    webhook_url=f"http://127.0.0.1:{port}/{url_path}",
                    secret_token=secret_token,
                )
            yield app
        finally:
            if app.updater.running:
                await app.updater.stop()
            await app.stop()
