"""The bodies and answers of the chat API (/api/chat). An answer declares its fields in the order
of the dict that service.py or format.py builds: the response model decides the order of the
JSON's keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from astegni.core.errors import BadRequest, Unprocessable
from astegni.core.models import BIGINT_MAX, INT_MAX, ApiModel, Text

MAX_CONTENT = 4000

Id = Annotated[int, Field(gt=0, le=INT_MAX)]
MessageId = Annotated[int, Field(gt=0, le=BIGINT_MAX)]

# ---------------------------------------------------------------------------- bodies


class ConversationIn(ApiModel):
    type: Literal["direct"] = "direct"
    # The other user; older clients also list the caller, who is ignored.
    participant_user_ids: Annotated[list[Id], Field(min_length=1, max_length=2)]

    def other_user_id(self, caller_id: int) -> int:
        others = set(self.participant_user_ids) - {caller_id}
        if not others:
            raise BadRequest("You cannot start a conversation with yourself", code="conversation_with_self")
        if len(others) > 1:
            raise Unprocessable("A direct conversation has exactly one other participant")
        return others.pop()


class ReadIn(ApiModel):
    last_read_message_id: MessageId


class MessageIn(ApiModel):
    conversation_id: Id
    content: Text(MAX_CONTENT, 1)
    # Clients send text only; session_request and system messages come from the server.
    message_type: Literal["text"] = "text"
    # The client's own id: a retried send with the same id returns the first message.
    client_message_id: Text(100, 1) | None = None
    reply_to_id: MessageId | None = None


class MessageEditIn(ApiModel):
    content: Text(MAX_CONTENT, 1)


class BlockIn(ApiModel):
    user_id: Id

    def blocked_user_id(self, caller_id: int) -> int:
        if self.user_id == caller_id:
            raise BadRequest("You cannot block yourself")
        return self.user_id


# ---------------------------------------------------------------------------- answers


class MessageOut(BaseModel):
    """A message as format.message_json renders it (and chat_message_json, its SQL twin)."""

    id: int
    conversation_id: int
    sender_user_id: int | None
    sender_name: str | None
    message_type: str
    content: str | None = Field(description="null once deleted")
    media_metadata: Any = Field(description="A JSON object (a session request's card) or null")
    reply_to_id: int | None
    client_message_id: str | None
    is_deleted: bool
    edited_at: datetime | None
    created_at: datetime


class MessagePageOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class MessageResultOut(BaseModel):
    message: MessageOut
    status: Literal["sent", "edited", "deleted"]


class LastMessageOut(BaseModel):
    id: int
    content: str | None
    message_type: str
    sender_user_id: int | None
    created_at: datetime
    is_deleted: bool


class OtherUserOut(BaseModel):
    id: int
    name: str


class ParticipantOut(BaseModel):
    user_id: int
    name: str
    role: str
    last_read_message_id: int | None
    # Built as JSON by PostgreSQL: its timestamp text, kept as it is.
    joined_at: str


class ConversationOut(BaseModel):
    id: int
    type: str
    name: str | None
    created_by_user_id: int | None
    created_at: datetime
    last_message_at: datetime | None
    last_message: LastMessageOut | None
    unread_count: int
    last_read_message_id: int | None
    other_user: OtherUserOut | None = Field(description="The other participant of a direct conversation")
    participants: list[ParticipantOut]


class ConversationPageOut(BaseModel):
    conversations: list[ConversationOut]
    next_cursor: str | None = Field(description="`before` of the next page; null on the last page")


class ReadMarkerOut(BaseModel):
    conversation_id: int
    user_id: int
    last_read_message_id: int
    unread_count: int


class ReadStatusEntryOut(BaseModel):
    user_id: int
    name: str
    last_read_message_id: int | None
    last_read_at: datetime | None


class ReadStatusOut(BaseModel):
    conversation_id: int
    participants: list[ReadStatusEntryOut]


class BlockOut(BaseModel):
    user_id: int
    name: str
    created_at: datetime | None


class BlockListOut(BaseModel):
    blocks: list[BlockOut]
