"""The queueing entry point every transport calls: one chat task per message, once.

Most networks' transports are built from Settings in any worker process, so their messages become
`chat_message` tasks (run by `omnizap serve`'s inline poller or `omnizap worker chat`). A live
network's transport is a session held by one process (WhatsApp Web's linked device, a console), so
its messages get their own task type, `chat_message_live:<network>`, that only that process claims.
"""

from __future__ import annotations

import hashlib

from omnizap.chat.messages import IncomingMessage
from omnizap.platform.db import Database
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import TASK_QUEUE

CHAT_MESSAGE = "chat_message"
CHAT_MESSAGE_LIVE_PREFIX = "chat_message_live:"
# Networks whose replies need the live connection of the process that received the message.
LIVE_NETWORKS = frozenset({"whatsapp_web", "console"})
CHAT_PRIORITY = 90  # people are waiting for the answer; background cycles can wait
CHAT_MAX_ATTEMPTS = 3  # a retry only happens after a crash: errors become replies inside the task
_KEY_MAX = 180


def idempotency_key(network: str, message_id: str) -> str:
    """`chat:<network>:<message id>`, hashed when that would not fit the queue's key column."""
    key = f"chat:{network}:{message_id}"
    if len(key) <= _KEY_MAX:
        return key
    return f"chat:{network[:32]}:sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


def task_type_for(network: str) -> str:
    """`chat_message`, or `chat_message_live:<network>` for a network in LIVE_NETWORKS."""
    return f"{CHAT_MESSAGE_LIVE_PREFIX}{network}" if network in LIVE_NETWORKS else CHAT_MESSAGE


def accept(database: Database, message: IncomingMessage) -> bool:
    """Enqueue the message for the worker; False when (network, message_id) was already accepted
    (a redelivered webhook), so it is processed once."""
    if not message.network or not message.message_id:
        raise ValueError("a chat message needs its network and message_id to be deduplicated")
    queue = Queue(database, TASK_QUEUE)
    return queue.enqueue(
        values={"task_type": task_type_for(message.network), "payload": message.to_payload()},
        idempotency_key=idempotency_key(message.network, message.message_id),
        priority=CHAT_PRIORITY,
        max_attempts=CHAT_MAX_ATTEMPTS,
    )
